"""Token-sequence statistics: how well an alphabet is used and how repetitive sequences are.

The seed experiments noted class imbalance (a few symbols dominate) and long
repetitions (a held note becomes a run of one symbol). These metrics put numbers
on both for each (segment_s, K) configuration:

* ``usage``: share of the K symbols that occur at least once;
* ``entropy_bits``: Shannon entropy of the symbol distribution (``log2 K`` when
  uniform), and ``entropy_norm`` = entropy / log2 K;
* ``top_share``: share of tokens taken by the most frequent symbol;
* ``mean_run_length``: mean length of runs of a repeated symbol (runs never
  cross from one sequence into the next), i.e. tokens / runs;
* ``pair_mi``: the mutual information ``I(a_t; b_t)`` of the held-out (A, B) stem pairs
  against pairs whose B comes from another track (does the alphabet still relate the parts?).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mgdata.stems.records import PairRecord


@dataclass(frozen=True)
class TokenStats:
    """Statistics of a set of token sequences over an alphabet of ``k`` symbols.

    Attributes:
        k: Alphabet size.
        n_sequences: Number of sequences.
        n_tokens: Number of tokens in all sequences.
        n_runs: Number of runs of a repeated symbol.
        n_used: Number of distinct symbols that occur.
        usage: ``n_used / k``.
        entropy_bits: Entropy of the symbol distribution in bits.
        entropy_norm: ``entropy_bits / log2(k)`` (1.0 = uniform).
        top_share: Share of the most frequent symbol.
        top_symbol: The most frequent symbol (smallest on ties; -1 if no tokens).
        mean_run_length: ``n_tokens / n_runs`` (0.0 if no tokens).
    """

    k: int
    n_sequences: int
    n_tokens: int
    n_runs: int
    n_used: int
    usage: float
    entropy_bits: float
    entropy_norm: float
    top_share: float
    top_symbol: int
    mean_run_length: float

    def __post_init__(self):
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if not 0 <= self.n_used <= self.k:
            raise ValueError(f"n_used must be in [0, {self.k}], got {self.n_used}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenStats:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy in bits of a histogram (zero counts ignored)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def run_lengths(seq: np.ndarray) -> np.ndarray:
    """Lengths of the runs of repeated symbols in one sequence (``[1,1,1,2,2]`` -> ``[3, 2]``)."""
    seq = np.asarray(seq).ravel()
    if seq.size == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], seq[1:] != seq[:-1])))
    return np.diff(np.concatenate((starts, [seq.size])))


def token_stats(sequences: Iterable[np.ndarray], k: int) -> TokenStats:
    """Statistics of token sequences over the alphabet ``[0, k)``.

    Args:
        sequences: Token sequences (any integer dtype), one per encoded stem.
        k: Alphabet size.

    Returns:
        A :class:`TokenStats`.

    Raises:
        ValueError: A token is outside ``[0, k)``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    counts = np.zeros(k, dtype=np.int64)
    n_seq = n_runs = 0
    for seq in sequences:
        seq = np.asarray(seq).ravel()
        n_seq += 1
        if seq.size == 0:
            continue
        if seq.min() < 0 or seq.max() >= k:
            raise ValueError(f"tokens must be in [0, {k}), got range [{seq.min()}, {seq.max()}]")
        counts += np.bincount(seq.astype(np.int64), minlength=k)
        n_runs += len(run_lengths(seq))
    n_tokens = int(counts.sum())
    h = entropy_bits(counts)
    top = int(np.argmax(counts)) if n_tokens else -1
    return TokenStats(
        k=k,
        n_sequences=n_seq,
        n_tokens=n_tokens,
        n_runs=n_runs,
        n_used=int((counts > 0).sum()),
        usage=float((counts > 0).sum() / k),
        entropy_bits=h,
        entropy_norm=float(h / np.log2(k)) if k > 1 else 0.0,
        top_share=float(counts[top] / n_tokens) if n_tokens else 0.0,
        top_symbol=top,
        mean_run_length=float(n_tokens / n_runs) if n_runs else 0.0,
    )


def pair_mutual_information(pairs: list[tuple[np.ndarray, np.ndarray]], k: int) -> float:
    """Plug-in mutual information ``I(a_t; b_t)`` in bits over the aligned tokens of pairs.

    Args:
        pairs: ``(a_tokens, b_tokens)`` per pair (aligned in time; the shorter length is used).
        k: Alphabet size.

    Returns:
        The MI of the joint histogram of (a_t, b_t) over all pairs and times (0.0 without tokens).
    """
    joint = np.zeros((k, k), dtype=np.float64)
    for a, b in pairs:
        n = min(len(a), len(b))
        if n:
            np.add.at(joint, (np.asarray(a[:n], np.int64), np.asarray(b[:n], np.int64)), 1.0)
    total = joint.sum()
    if total == 0:
        return 0.0
    p = joint / total
    pa, pb = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log2(p[nz] / (pa @ pb)[nz])).sum())


def held_out_pair_mi(
    pairs: list[PairRecord], tokens: dict[str, np.ndarray], k: int, fit_split: str
) -> dict[str, float]:
    """MI of held-out pairs vs the same A tokens against a B of another track (rotated by half the list)."""
    held = [p for p in pairs if p.split != fit_split]
    if not held:
        return {"mi_bits": 0.0, "mi_shuffled_bits": 0.0, "mi_pairs": 0}
    real = [(tokens[p.a_key], tokens[p.b_key]) for p in held]
    shift = len(held) // 2
    shuffled = []
    for i, p in enumerate(held):
        # First partner at least half the list away whose track differs (deterministic, no RNG).
        for j in range(len(held)):
            q = held[(i + shift + j) % len(held)]
            if q.track_id != p.track_id:
                shuffled.append((tokens[p.a_key], tokens[q.b_key]))
                break
    return {
        "mi_bits": pair_mutual_information(real, k),
        "mi_shuffled_bits": pair_mutual_information(shuffled, k),
        "mi_pairs": len(held),
    }
