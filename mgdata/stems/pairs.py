"""Stem selection and ordered pair enumeration for the stem-pair artifact.

Per window, a stem takes part in pairs only if its type is not excluded by params
(drums, percussion, effects/fx by default: unpitched or non-musical material that
makes poor "accompaniment" targets) and it is not silent in that window. Every
ordered pair ``(A, B)`` of distinct remaining stems is emitted, so ``n`` active
stems give ``n * (n - 1)`` pairs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence


def normalise_stem_name(name: str) -> str:
    """Canonical form of a stem type for matching: lowercase, spaces/hyphens -> ``_``.

    MoisesDB writes ``other_keys`` in folder names but ``other keys`` in its
    taxonomy; both must match the same params entry.
    """
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def is_excluded(stem: str, excluded: Iterable[str]) -> bool:
    """True if ``stem`` matches one of ``excluded`` (case-insensitive, normalised)."""
    wanted = {normalise_stem_name(e) for e in excluded}
    return normalise_stem_name(stem) in wanted


def ordered_pairs(stems: Sequence[str]) -> list[tuple[str, str]]:
    """All ordered pairs of distinct stems, in a deterministic order.

    Args:
        stems: Active stem names in track order (must be unique).

    Returns:
        ``[(a, b), ...]`` with ``a != b``; ``len == n * (n - 1)``. Ordered by the
        position of ``a`` then ``b`` in ``stems``.
    """
    if len(set(stems)) != len(stems):
        raise ValueError(f"stem names must be unique, got {list(stems)}")
    return list(itertools.permutations(stems, 2))
