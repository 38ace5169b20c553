"""Track-level train/validation/test assignment.

Two rules live here:

* :func:`stable_split` (the corpus rule): a track's split is a **pure function of
  (track id, seed, fractions)**. ``u = sha256("mgdata-split/1", seed, track_id)``
  mapped to ``[0, 1)`` is cut by the cumulative shares of ``fractions`` (in the
  order the splits are listed). No other track enters the function, so growing
  the corpus (``n_tracks``), adding a repertoire or deleting a track never moves
  an existing track to another split, and results across params versions stay
  comparable without leakage. An explicit split file (:func:`read_split_file`)
  overrides the hash for the tracks it lists.
* :func:`assign_splits` (kept for small synthetic sets and the stem builder's
  own sources): ids sorted, permuted with ``seed`` and cut into exact counts. It
  balances counts exactly but is **not** stable: adding one id can move others.

Stratification trade-off. Exact stratification (e.g. exactly 10 % of each
quadrant in validation) needs to look at the other tracks of the stratum, which
is what makes a split move when the stratum grows; a per-track function cannot
do it. With independent per-track draws each split's composition is a
multinomial sample around the target shares (a stratum of ``n`` tracks puts
``Binomial(n, f)`` of them in a split of share ``f``); hashing "within strata"
would not change that distribution. What *can* be guaranteed is a fixed
outcome for a fixed world: the default ``corpus.split_seed`` (1914) was chosen (among
seeds 0.. in order, looking only at stratum counts, never at any result) as the
first one for which every quadrant and every style of the default corpus has
>= 3 tracks in validation and in test; ``tests/test_splits.py`` asserts it on
the default plan. Changing the corpus params may break that guarantee (a split
can then hold fewer tracks of a stratum); the corpus stage reports per-split
quadrant and style counts in its metrics so it is visible. Users needing exact
stratification can pass a split file.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path

import numpy as np

from mgdata.errors import InputError, ParamsError

DEFAULT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
#: Salt of the split hash: other per-track draws (tempo, arousal) use other salts, so they are independent.
SPLIT_SALT = "mgdata-split/1"


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
    """Assign each id to one split with exact counts (not stable under growth; see the module docstring).

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


def unit_hash(*parts: object) -> float:
    """A process-independent uniform number in ``[0, 1)`` from the parts' text (53 bits of sha256)."""
    text = "\x1f".join(str(p) for p in parts)
    return (int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 11) / float(1 << 53)


def _cuts(fractions: Mapping[str, float]) -> list[tuple[str, float]]:
    total = float(sum(fractions.values()))
    if not fractions or total <= 0 or any(f < 0 for f in fractions.values()):
        raise ValueError(f"fractions must be >= 0 with a positive sum, got {dict(fractions)}")
    cuts, acc = [], 0.0
    for name, share in fractions.items():
        acc += share / total
        cuts.append((name, acc))
    return cuts


def stable_split(track_id: str, *, seed: int, fractions: Mapping[str, float]) -> str:
    """The split of one track: a pure function of ``(track_id, seed, fractions)``.

    Args:
        track_id: The track's id (sample key).
        seed: Split seed (a params value).
        fractions: Split name -> share, in cut order (normalised; zero shares never receive a track).

    Returns:
        The split name.

    Raises:
        ValueError: Negative shares or a non-positive sum.
    """
    u = unit_hash(SPLIT_SALT, int(seed), str(track_id))
    cuts = _cuts(fractions)
    for name, upper in cuts:
        if u < upper:
            return name
    # u < 1 <= last cut up to float rounding: fall back to the last split with a positive share.
    return next(name for name, share in reversed(list(fractions.items())) if share > 0)


def stable_splits(
    ids: Iterable[str],
    *,
    seed: int,
    fractions: Mapping[str, float],
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """:func:`stable_split` of every id; ``overrides`` (e.g. a split file) win for the ids they list.

    Returns:
        id -> split name, in input order (duplicates collapsed).
    """
    overrides = overrides or {}
    return {
        i: overrides[i] if i in overrides else stable_split(i, seed=seed, fractions=fractions)
        for i in dict.fromkeys(ids)
    }


def read_split_file(path: str | Path, split_names: Iterable[str]) -> dict[str, str]:
    """Read an explicit split file: CSV with header ``track_id,split``, one track per line.

    Blank lines and lines starting with ``#`` are ignored.

    Args:
        path: The CSV file.
        split_names: Allowed split names (the keys of the fractions).

    Returns:
        track id -> split, in file order.

    Raises:
        InputError: Missing file, wrong header, a malformed line, an unknown split name or a
            duplicate track id; the message names ``file:line``.
    """
    path = Path(path)
    allowed = list(split_names)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read split file: {exc}") from None
    out: dict[str, str] = {}
    first_line: dict[str, int] = {}
    header_seen = False
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        where = f"{path}:{lineno}"
        if not header_seen:
            if cells != ["track_id", "split"]:
                raise InputError(where, f"expected the header 'track_id,split', got {','.join(cells)!r}")
            header_seen = True
            continue
        if len(cells) != 2 or not cells[0] or not cells[1]:
            raise InputError(where, f"expected 'track_id,split', got {','.join(cells)!r}")
        tid, split = cells
        if split not in allowed:
            raise InputError(where, f"unknown split {split!r} for {tid!r}; expected one of {', '.join(allowed)}")
        if tid in out:
            raise InputError(where, f"duplicate track id {tid!r} (first on line {first_line[tid]})")
        out[tid] = split
        first_line[tid] = lineno
    if not header_seen:
        raise InputError(str(path), "empty split file: expected the header 'track_id,split'")
    return out
