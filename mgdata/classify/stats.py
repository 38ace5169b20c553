"""Statistics over seeds and tracks: mean/std over trials, seed-paired deltas, seed agreement, rank AUC.

Every experiment that trains runs ``trials`` seeds (``seed``, ``seed + 1``, ...) and reports mean and sample
std over them; a significance test runs once per seed (over tracks) and its block counts the seeds with
p < :data:`ALPHA`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Level at which a seed's test counts as significant in the seed-agreement counts (the conventional 5 %; the
#: p-values themselves are reported too, so a reader can apply another level).
ALPHA = 0.05


def trial_summary(trials: list[dict[str, float]]) -> dict[str, float]:
    """``{metric_mean, metric_std}`` over trials (sample std, 0 for one trial)."""
    out = {}
    for k in trials[0]:
        v = np.array([t[k] for t in trials], dtype=np.float64)
        out[f"{k}_mean"] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
        out[f"{k}_std"] = float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else 0.0
    return out


def paired_std(base: list[dict[str, float]], new: list[dict[str, float]], key: str, rel: bool) -> float:
    """Sample std over seeds of the per-seed change ``new - base`` (relative to ``base`` when ``rel``).

    Trial ``t`` of every experiment uses seed ``seed + t``, so seed-paired differences measure how much a
    delta moves with the seed (the noise a comparison of two versions must exceed); 0 for one trial.
    """
    d = []
    for b, n in zip(base, new):
        v = n[key] - b[key]
        if rel:
            v = v / b[key] if b[key] else float("nan")
        d.append(v)
    d = np.asarray(d, dtype=np.float64)
    return float(np.nanstd(d, ddof=1)) if np.isfinite(d).sum() > 1 else 0.0


def seed_agreement(per_seed: dict[str, dict[str, float]], alpha: float = ALPHA) -> dict[str, Any]:
    """A per-seed significance test summarised: how many seeds reject at ``alpha``, and the p-value range.

    Args:
        per_seed: ``{seed: {"p_value": ..., ...}}`` (one test over tracks per seed).
        alpha: Significance level of the count.
    """
    p = np.array([d["p_value"] for d in per_seed.values()], dtype=np.float64)
    ok = np.isfinite(p)
    return {
        "per_seed": per_seed,
        "n_trials": int(p.size),
        "n_significant": int((p[ok] < alpha).sum()),
        "alpha": alpha,
        "p_value_max": float(p[ok].max()) if ok.any() else float("nan"),
        "p_value_min": float(p[ok].min()) if ok.any() else float("nan"),
    }


def macro_auc_permutations(
    y: np.ndarray, scores: np.ndarray, n_permutations: int, seed: int
) -> tuple[float, np.ndarray]:
    """Macro ROC-AUC of ``scores`` for labels ``y`` [n, c], and for ``n_permutations`` row permutations of ``y``.

    AUC by ranks (Mann-Whitney: ``(rank sum of positives - P(P+1)/2) / (P N)``, ties at average rank), which
    equals scikit-learn's ``roc_auc_score`` to rounding; the ranks of the fixed scores are computed once, so
    1000 permutations cost milliseconds instead of 1000 x c scikit-learn calls (half of a classify stage).
    Classes with no positive or no negative rows are left out of the mean, as in :func:`mediaeval_metrics`.

    Returns:
        ``(observed, null)``: the macro AUC of ``y`` (NaN if no class qualifies) and the permuted values.
    """
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    n = y.shape[0]
    pos = y.sum(0)
    ok = (pos > 0) & (pos < n)
    ranks = rankdata(np.asarray(scores, dtype=np.float64), axis=0)[:, ok]
    p = pos[ok].astype(np.float64)

    def macro(yy: np.ndarray) -> float:
        if not ok.any():
            return float("nan")
        rank_sum = (ranks * yy[:, ok]).sum(0)  # half-integers: exact in float64
        return float(np.mean((rank_sum - p * (p + 1) / 2) / (p * (n - p))))

    rng = np.random.default_rng(seed)
    null = np.array([macro(y[rng.permutation(n)]) for _ in range(n_permutations)])
    return macro(y), null


__all__ = ["ALPHA", "macro_auc_permutations", "paired_std", "seed_agreement", "trial_summary"]
