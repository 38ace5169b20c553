"""Paired tests of a gain over the same test tracks: permutation p, bootstrap interval, detectable effect.

The unit is the test track (clip scores averaged per track, as every classify figure): trials are seeds of the
same comparison, so a statistic is the mean over trials of (augmented - baseline), and a permutation swaps the
two models' scores of a random set of tracks in every trial at once.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, rankdata

ALPHA = 0.05
POWER = 0.8


def auc_macro(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Macro ROC-AUC by ranks over the last two axes (``[..., tracks, classes]``); classes without positives or
    negatives in a batch element are left out of its mean (NaN if none qualifies)."""
    y = np.broadcast_to(np.asarray(y, dtype=bool), p.shape)
    n = p.shape[-2]
    pos = y.sum(-2).astype(np.float64)
    ranks = rankdata(p, axis=-2)
    auc = ((ranks * y).sum(-2) - pos * (pos + 1) / 2) / np.where((pos > 0) & (pos < n), pos * (n - pos), np.nan)
    with np.errstate(invalid="ignore"):
        return np.nanmean(auc, axis=-1) if auc.size else auc


def f1_macro(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Macro F1 of the argmax decision (single-label) over the last two axes; a class never predicted nor
    present scores 0, as scikit-learn's ``zero_division=0``."""
    y = np.broadcast_to(np.asarray(y, dtype=bool), p.shape)
    pred = np.eye(p.shape[-1], dtype=bool)[np.argmax(p, axis=-1)]
    tp = (pred & y).sum(-2)
    denom = 2 * tp + (pred & ~y).sum(-2) + (~pred & y).sum(-2)
    return np.mean(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0), axis=-1)


METRICS = {"roc_auc_macro": auc_macro, "f1_macro": f1_macro}


def _gain(metric, y: np.ndarray, base: np.ndarray, aug: np.ndarray) -> np.ndarray:
    """Mean over trials (axis -3) of metric(aug) - metric(base), batched over leading axes."""
    return np.nanmean(metric(y, aug) - metric(y, base), axis=-1)


def paired_gain(
    y: np.ndarray, base: np.ndarray, aug: np.ndarray, *, permutations: int, bootstrap: int, seed: int
) -> dict[str, float]:
    """Gain of ``aug`` over ``base`` (score arrays ``[trials, tracks, classes]``) in each metric of
    :data:`METRICS`, with a one-sided paired permutation p, a 95 % bootstrap interval and the minimum
    detectable effect.

    * p: sign-flip over tracks: for each permutation a random set of tracks has its baseline and augmented
      scores swapped (in every trial); ``p = (1 + #{null >= observed}) / (1 + permutations)``.
    * interval: tracks resampled with replacement (the same draw for both models and every trial).
    * ``mde``: ``(z_{1-alpha} + z_{power}) * SE`` at alpha 0.05 and power 0.8, SE the bootstrap standard error
      of the gain: the smallest true gain this many test tracks and seeds would detect four times in five.
    """
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    swap = rng.random((permutations, 1, n, 1)) < 0.5
    perm_base = np.where(swap, aug[None], base[None])
    perm_aug = np.where(swap, base[None], aug[None])
    boot = rng.integers(0, n, size=(bootstrap, n))
    out: dict[str, float] = {}
    z = norm.ppf(1 - ALPHA) + norm.ppf(POWER)
    for name, metric in METRICS.items():
        observed = float(_gain(metric, y, base, aug))
        null = _gain(metric, y, perm_base, perm_aug)
        yb = y[boot][:, None]  # [bootstrap, 1, tracks, classes]
        resampled = _gain(metric, yb, base[:, boot].transpose(1, 0, 2, 3), aug[:, boot].transpose(1, 0, 2, 3))
        lo, hi = np.nanpercentile(resampled, [2.5, 97.5])
        per_trial = metric(y, aug) - metric(y, base)
        out |= {
            f"gain_{name}": observed,
            f"gain_{name}_std": float(np.std(per_trial, ddof=1)) if per_trial.size > 1 else float("nan"),
            f"p_{name}": float((1 + np.sum(null >= observed - 1e-12)) / (1 + permutations)),
            f"ci_low_{name}": float(lo),
            f"ci_high_{name}": float(hi),
            f"mde_{name}": float(z * np.nanstd(resampled)),
        }
    return out


__all__ = ["ALPHA", "METRICS", "POWER", "auc_macro", "f1_macro", "paired_gain"]
