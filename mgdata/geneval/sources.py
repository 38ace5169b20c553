"""What the curves train on: the oracle pool, nested real subsets, and the rows each source adds.

The pool and the subsets are drawn once per task from ``seed`` (stratified by class, whole tracks), so every
trial and every source is compared on the same real data; the rows a source adds are drawn per trial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mgdata.classify.data import Data, sourceless


def track_class(data: Data) -> dict[str, int]:
    """Track id -> class index (single-label: every clip of a track has the track's class)."""
    return {str(t): int(np.argmax(y)) for t, y in zip(data.tracks, data.y)}


@dataclass(frozen=True)
class CurveSplit:
    """The training tracks of the curves.

    Attributes:
        pool: Oracle pool tracks (held out of every subset).
        subsets: Fraction -> the real training tracks at that fraction (nested: a smaller one is a prefix).
    """

    pool: frozenset[str]
    subsets: dict[float, frozenset[str]]


def carve(train: Data, fractions: list[float], pool_fraction: float, seed: int) -> CurveSplit:
    """Per class: a seeded order of its training tracks; the first ``pool_fraction`` are the oracle pool, and
    fraction f takes the first ``ceil(f * n)`` of the rest (at least one track per class)."""
    by_class: dict[int, list[str]] = {}
    for track, c in sorted(track_class(train).items()):
        by_class.setdefault(c, []).append(track)
    rng = np.random.default_rng(seed)
    pool: set[str] = set()
    rest: dict[int, list[str]] = {}
    for c in sorted(by_class):
        order = [by_class[c][i] for i in rng.permutation(len(by_class[c]))]
        n_pool = min(len(order) - 1, max(1, round(pool_fraction * len(order))))
        pool.update(order[:n_pool])
        rest[c] = order[n_pool:]
    subsets = {
        f: frozenset(t for c in sorted(rest) for t in rest[c][: max(1, math.ceil(f * len(rest[c])))]) for f in fractions
    }
    return CurveSplit(frozenset(pool), subsets)


def rows_of(data: Data, tracks: frozenset[str]) -> Data:
    """The rows of ``data`` whose track is in ``tracks``."""
    return data.take(np.flatnonzero(np.isin(data.tracks.astype(str), sorted(tracks))))


def shuffled_labels(pool: Data, seed: int) -> Data:
    """The pool's clips with track labels permuted among the pool's tracks (real music, no label information)."""
    tracks = np.unique(pool.tracks.astype(str))
    labels = {t: pool.y[np.flatnonzero(pool.tracks.astype(str) == t)[0]] for t in tracks}
    perm = np.random.default_rng(seed).permutation(tracks.size)
    moved = {t: labels[tracks[j]] for t, j in zip(tracks, perm)}
    y = np.stack([moved[str(t)] for t in pool.tracks]) if len(pool) else pool.y
    return Data(pool.x, y, pool.tracks, pool.keys, pool.splits)


def draw_rows(source: Data, n_rows: int, n_classes: int, seed: int) -> tuple[Data, dict[str, int]]:
    """``n_rows`` rows of ``source``, equal per class (as the seed protocol draws), seeded; fewer if short."""
    per_class = max(1, round(n_rows / n_classes))
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for j in range(n_classes):
        rows = np.flatnonzero(source.y[:, j] == 1)
        chosen.extend(rng.permutation(rows)[:per_class].tolist())
    idx = np.sort(np.asarray(chosen, dtype=np.int64))
    return source.take(idx), {"wanted": per_class * n_classes, "drawn": int(idx.size)}


def unseen_source(gen: Data, pool: frozenset[str]) -> Data:
    """Generated rows no curve probe saw the source of: made from pool tracks, or from no track (a new piece)."""
    tracks = gen.tracks.astype(str)
    return gen.take(np.flatnonzero(np.isin(tracks, sorted(pool)) | sourceless(gen)))


def eligible_generated(gen: Data, pool: frozenset[str]) -> Data:
    """Generated rows the augmentation may add: made from training tracks outside the oracle pool (a copy of a
    pool track would be the oracle again), or from no track at all (a composer's new piece)."""
    tracks = gen.tracks.astype(str)
    ok = (gen.splits == "train") & ~np.isin(tracks, sorted(pool))
    return gen.take(np.flatnonzero(ok))


__all__ = [
    "CurveSplit",
    "carve",
    "draw_rows",
    "eligible_generated",
    "rows_of",
    "shuffled_labels",
    "track_class",
    "unseen_source",
]
