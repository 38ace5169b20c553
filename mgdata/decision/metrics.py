"""Sequence metrics of the decision task (pure numpy): TPP, LCP, entropy, codebook usage.

Definitions follow the paired-tracks seed paper:

* **True Positive Percentage** (TPP): the share of ground-truth positions ``i < len(gt)``
  where ``pred[i] == gt[i]``, times 100. A prediction shorter than the ground truth
  counts its missing positions as wrong; extra predicted tokens are ignored.
* **Longest Common Prefix** (LCP) per position: ``LCP_i`` is the largest ``l`` with
  ``i + l <= n`` and ``pred[i + k] == gt[i + k]`` for every ``k < l`` (``n = len(gt)``),
  i.e. the length of the run of correct predictions starting at ``i``.
* LCP **excluding silence**: the silence token is trivially easy to copy (both stems
  rest together), so positions whose ground truth is silence are left out of the list
  and also end a run (a match on silence earns no credit).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def _as_1d(x: Sequence[int] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D token sequence, got shape {arr.shape}")
    return arr.astype(np.int64, copy=False)


def _matches(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Boolean per ground-truth position: the prediction exists there and equals it."""
    n = len(gt)
    m = min(len(pred), n)
    hit = np.zeros(n, dtype=bool)
    hit[:m] = pred[:m] == gt[:m]
    return hit


def true_positive_percentage(pred: Sequence[int] | np.ndarray, gt: Sequence[int] | np.ndarray) -> float:
    """Percentage of ground-truth positions predicted exactly (0..100).

    Args:
        pred: Predicted tokens (any length).
        gt: Ground-truth tokens; must not be empty.

    Raises:
        ValueError: ``gt`` is empty or not 1-D.
    """
    p, g = _as_1d(pred, "pred"), _as_1d(gt, "gt")
    if len(g) == 0:
        raise ValueError("gt: empty ground-truth sequence")
    return float(_matches(p, g).mean() * 100.0)


def _runs_from(hit: np.ndarray) -> np.ndarray:
    """Length of the run of True starting at each position (0 where hit is False)."""
    out = np.zeros(len(hit), dtype=np.int64)
    run = 0
    for i in range(len(hit) - 1, -1, -1):
        run = run + 1 if hit[i] else 0
        out[i] = run
    return out


def longest_common_prefix(pred: Sequence[int] | np.ndarray, gt: Sequence[int] | np.ndarray) -> list[int]:
    """``LCP_i`` for every ground-truth position ``i`` (see the module docstring)."""
    p, g = _as_1d(pred, "pred"), _as_1d(gt, "gt")
    return [int(v) for v in _runs_from(_matches(p, g))]


def longest_common_prefix_nonsilent(
    pred: Sequence[int] | np.ndarray, gt: Sequence[int] | np.ndarray, silence: int | None
) -> list[int]:
    """LCP at the positions whose ground truth is not ``silence``; silent positions end runs.

    With ``silence=None`` (no silence token in the codebook) this equals :func:`longest_common_prefix`.
    """
    p, g = _as_1d(pred, "pred"), _as_1d(gt, "gt")
    if silence is None:
        return longest_common_prefix(p, g)
    loud = g != silence
    runs = _runs_from(_matches(p, g) & loud)
    return [int(v) for v in runs[loud]]


def lcp_curve(lcps: Iterable[Sequence[int]]) -> dict[str, list[float]]:
    """Mean, std and max of ``LCP_i`` per position ``i`` over sequences of varying length.

    Returns:
        ``{"position", "mean", "std", "max", "count"}``, one entry per position up to the
        longest sequence; position ``i`` aggregates the sequences that reach it.
    """
    rows = [np.asarray(x, dtype=np.float64) for x in lcps]
    n = max((len(r) for r in rows), default=0)
    mean, std, mx, count = [], [], [], []
    for i in range(n):
        vals = np.array([r[i] for r in rows if len(r) > i])
        mean.append(float(vals.mean()))
        std.append(float(vals.std()))
        mx.append(float(vals.max()))
        count.append(float(len(vals)))
    return {"position": [float(i) for i in range(n)], "mean": mean, "std": std, "max": mx, "count": count}


def token_counts(seqs: Iterable[Sequence[int] | np.ndarray], k: int) -> np.ndarray:
    """Histogram of the tokens of all sequences over ``0..k-1``.

    Raises:
        ValueError: A token lies outside ``0..k-1``.
    """
    counts = np.zeros(k, dtype=np.int64)
    for s in seqs:
        a = _as_1d(s, "sequence")
        if len(a) and (a.min() < 0 or a.max() >= k):
            raise ValueError(f"sequence: token outside 0..{k - 1}")
        counts += np.bincount(a, minlength=k)
    return counts


def entropy_bits(seqs: Iterable[Sequence[int] | np.ndarray], k: int) -> float:
    """Shannon entropy (bits) of the pooled token distribution of ``seqs`` (0 when empty)."""
    counts = token_counts(seqs, k).astype(np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum() + 0.0)


def codebook_usage(seqs: Iterable[Sequence[int] | np.ndarray], k: int) -> float:
    """Share of the ``k`` codebook symbols that occur at least once in ``seqs`` (0..1)."""
    return float((token_counts(seqs, k) > 0).sum() / k)


def silence_token(codebook: np.ndarray, *, tol: float = 1e-6) -> int | None:
    """The codebook row standing for silence: the one with (near-)zero norm, else None.

    The chroma encoder maps frames below its silence gate to all-zero vectors, so rests
    condense into a zero centroid; other encoders have no such row and get None.
    """
    cb = np.asarray(codebook, dtype=np.float64)
    norms = np.linalg.norm(cb.reshape(len(cb), -1), axis=1)
    i = int(np.argmin(norms))
    scale = max(float(norms.max()), 1.0)
    return i if norms[i] <= tol * scale else None


__all__ = [
    "codebook_usage",
    "entropy_bits",
    "lcp_curve",
    "longest_common_prefix",
    "longest_common_prefix_nonsilent",
    "silence_token",
    "token_counts",
    "true_positive_percentage",
]
