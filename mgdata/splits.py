"""Deterministic track-level train/validation/test assignment."""

from __future__ import annotations

from typing import Hashable, Iterable, Mapping

import numpy as np

from mgdata.errors import ParamsError

DEFAULT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Exact per-split counts for ``n`` items (largest remainder; each split >= 1 when n allows)."""
    names = list(fractions)
    total = sum(fractions.values())
    if total <= 0 or any(f < 0 for f in fractions.values()):
        raise ParamsError("splits", f"fractions must be >= 0 and sum > 0, got {dict(fractions)}")
    raw = [n * fractions[k] / total for k in names]
    counts = [int(np.floor(r)) for r in raw]
    order = sorted(range(len(names)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    # Give every split with a positive fraction at least one item, taken from the largest.
    for i, name in enumerate(names):
        if fractions[name] > 0 and counts[i] == 0 and n >= len(names):
            j = max(range(len(names)), key=lambda k: counts[k])
            counts[j] -= 1
            counts[i] += 1
    return dict(zip(names, counts))


def assign_splits(
    ids: Iterable[Hashable],
    *,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int,
) -> dict[Hashable, str]:
    """Assign each id to one split, deterministically.

    Ids are sorted, permuted with ``seed`` and cut into exact counts, so the same
    ids, fractions and seed always give the same assignment, and no id is in two
    splits.

    Args:
        ids: Track ids (duplicates are collapsed).
        fractions: Split name -> share (normalised to sum to 1).
        seed: Permutation seed (a params value).

    Returns:
        id -> split name.
    """
    unique = sorted(set(ids), key=str)
    counts = split_counts(len(unique), fractions)
    order = np.random.default_rng(seed).permutation(len(unique))
    out: dict[Hashable, str] = {}
    pos = 0
    for name, c in counts.items():
        for i in order[pos : pos + c]:
            out[unique[i]] = name
        pos += c
    return out
