"""MediaEval 2019 "Emotion and Theme recognition" metrics, exactly as the task defined them.

* ROC-AUC and PR-AUC from the scores: scikit-learn ``roc_auc_score`` and
  ``average_precision_score``; macro = unweighted mean of the per-class values,
  micro = one curve over all (track, class) cells.
* Precision, recall and F1 from 0/1 decisions: ``precision_recall_fscore_support``
  per class (macro = their unweighted mean) and with ``average="micro"``; zero_division = 0.

Decisions come from per-class thresholds (``score >= threshold``; multi-label tasks,
thresholds chosen on the VALIDATION split by :func:`choose_thresholds`) or, for
single-label tasks, from the argmax of each row.

A class without positives (or, for ROC-AUC, without negatives) in the ground truth is
handled as scikit-learn does per class (ROC-AUC undefined -> NaN, average precision 0)
with a warning naming the class; the macro ROC-AUC is the mean over the classes where
it is defined, so one empty class never turns the whole figure into NaN.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mgdata.errors import InputError

log = logging.getLogger(__name__)

#: The keys of :func:`mediaeval_metrics`, in the order the task reports them.
METRIC_KEYS: tuple[str, ...] = (
    "roc_auc_macro",
    "roc_auc_micro",
    "pr_auc_macro",
    "pr_auc_micro",
    "precision_macro",
    "precision_micro",
    "recall_macro",
    "recall_micro",
    "f1_macro",
    "f1_micro",
)


class MetricWarning(UserWarning):
    """A metric is undefined for a class (no positives or no negatives in the ground truth)."""


def _names(n: int, class_names: Sequence[str] | None) -> list[str]:
    if class_names is None:
        return [f"class {i}" for i in range(n)]
    if len(class_names) != n:
        raise InputError("class_names", f"{len(class_names)} names for {n} classes")
    return [str(c) for c in class_names]


def _check(groundtruth: np.ndarray, scores: np.ndarray, where: str = "predictions") -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(groundtruth)
    p = np.asarray(scores, dtype=np.float64)
    if g.ndim == 1:
        g = g[:, None]
    if p.ndim == 1:
        p = p[:, None]
    if g.shape != p.shape:
        raise InputError(where, f"shape {p.shape} does not match the ground truth {g.shape}")
    if g.shape[0] == 0:
        raise InputError(where, "no rows")
    if not np.isin(g, (0, 1)).all():
        raise InputError("groundtruth", "expected a 0/1 matrix")
    if not np.isfinite(p).all():
        raise InputError(where, "scores contain NaN or infinite values")
    return g.astype(np.int64), p


def decisions_from_scores(scores: np.ndarray, thresholds: np.ndarray | Sequence[float] | None = None) -> np.ndarray:
    """0/1 decisions: ``score >= threshold`` per class, or the argmax of each row without thresholds.

    Args:
        scores: ``[n, c]`` scores.
        thresholds: ``[c]`` per-class thresholds (multi-label); ``None`` = argmax (single-label).

    Returns:
        int64 ``[n, c]`` decisions.
    """
    p = np.asarray(scores, dtype=np.float64)
    if thresholds is None:
        d = np.zeros(p.shape, dtype=np.int64)
        d[np.arange(p.shape[0]), np.argmax(p, axis=1)] = 1  # ties -> lowest class index (numpy argmax)
        return d
    t = np.asarray(thresholds, dtype=np.float64)
    if t.shape != (p.shape[1],):
        raise InputError("thresholds", f"{t.size} thresholds for {p.shape[1]} classes")
    return (p >= t[None, :]).astype(np.int64)


def per_class_auc(
    groundtruth: np.ndarray, scores: np.ndarray, class_names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class ROC-AUC (NaN where undefined) and average precision (0 without positives), warning per class."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    g, p = _check(groundtruth, scores)
    names = _names(g.shape[1], class_names)
    roc = np.full(g.shape[1], np.nan)
    ap = np.zeros(g.shape[1])
    for j in range(g.shape[1]):
        pos = int(g[:, j].sum())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # replaced by one warning naming the class below
            if 0 < pos < g.shape[0]:
                roc[j] = roc_auc_score(g[:, j], p[:, j])
            if pos > 0:
                ap[j] = average_precision_score(g[:, j], p[:, j])
        if pos == 0:
            warnings.warn(
                f"class {names[j]!r} has no positives: ROC-AUC undefined (excluded from the macro mean), "
                "average precision 0, precision/recall/F1 0",
                MetricWarning,
                stacklevel=2,
            )
        elif pos == g.shape[0]:
            warnings.warn(
                f"class {names[j]!r} has no negatives: ROC-AUC undefined (excluded from the macro mean)",
                MetricWarning,
                stacklevel=2,
            )
    return roc, ap


def mediaeval_metrics(
    groundtruth: np.ndarray,
    scores: np.ndarray,
    decisions: np.ndarray | None = None,
    *,
    thresholds: np.ndarray | Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, float]:
    """The ten MediaEval 2019 figures.

    Args:
        groundtruth: 0/1 ``[n, c]``.
        scores: ``[n, c]`` scores (probabilities or any monotone score).
        decisions: 0/1 ``[n, c]``; ``None`` = from ``thresholds``, else argmax per row.
        thresholds: Per-class thresholds (used only when ``decisions`` is ``None``).
        class_names: Names used in warnings.

    Returns:
        ``{key: float}`` with exactly the keys of :data:`METRIC_KEYS`.

    Raises:
        InputError: Shapes disagree, non-0/1 ground truth or decisions, non-finite scores.
    """
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

    g, p = _check(groundtruth, scores)
    if decisions is None:
        d = decisions_from_scores(p, thresholds)
    else:
        d = np.asarray(decisions)
        d = d[:, None] if d.ndim == 1 else d
        if d.shape != g.shape:
            raise InputError("decisions", f"shape {d.shape} does not match the ground truth {g.shape}")
        if not np.isin(d, (0, 1)).all():
            raise InputError("decisions", "expected a 0/1 matrix")
        d = d.astype(np.int64)
    roc, ap = per_class_auc(g, p, class_names)
    out: dict[str, float] = {}
    out["roc_auc_macro"] = float(np.nanmean(roc)) if np.isfinite(roc).any() else float("nan")
    cells_pos = int(g.sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["roc_auc_micro"] = float(roc_auc_score(g.ravel(), p.ravel())) if 0 < cells_pos < g.size else float("nan")
        out["pr_auc_macro"] = float(ap.mean())
        out["pr_auc_micro"] = float(average_precision_score(g.ravel(), p.ravel())) if cells_pos else 0.0
        prec, rec, f1, _ = precision_recall_fscore_support(g, d, average=None, zero_division=0)
        pm, rm, fm, _ = precision_recall_fscore_support(g, d, average="micro", zero_division=0)
    out["precision_macro"] = float(np.mean(prec))
    out["precision_micro"] = float(pm)
    out["recall_macro"] = float(np.mean(rec))
    out["recall_micro"] = float(rm)
    out["f1_macro"] = float(np.mean(f1))
    out["f1_micro"] = float(fm)
    return {k: out[k] for k in METRIC_KEYS}


def per_class_metrics(
    groundtruth: np.ndarray, scores: np.ndarray, decisions: np.ndarray, class_names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """``{class: {roc_auc, pr_auc, precision, recall, f1, support}}`` (for per-class deltas)."""
    from sklearn.metrics import precision_recall_fscore_support

    g, p = _check(groundtruth, scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        roc, ap = per_class_auc(g, p, class_names)
        prec, rec, f1, sup = precision_recall_fscore_support(g, np.asarray(decisions), average=None, zero_division=0)
    return {
        str(c): {
            "roc_auc": float(roc[j]),
            "pr_auc": float(ap[j]),
            "precision": float(prec[j]),
            "recall": float(rec[j]),
            "f1": float(f1[j]),
            "support": int(sup[j]),
        }
        for j, c in enumerate(class_names)
    }


def choose_thresholds(
    y_val: np.ndarray,
    p_val: np.ndarray,
    *,
    class_names: Sequence[str] | None = None,
    default: float = 0.5,
) -> np.ndarray:
    """Per-class thresholds maximising F1 on the precision-recall curve of the VALIDATION split.

    Never call this with test data: the thresholds are then applied to test.

    Args:
        y_val: 0/1 ``[n, c]`` validation ground truth.
        p_val: ``[n, c]`` validation scores.
        class_names: Names used in warnings.
        default: Threshold of a class without validation positives (F1 is 0 whatever
            the threshold there), with a warning naming the class.

    Returns:
        float64 ``[c]``; a tie in F1 keeps the highest threshold (fewest positives).
    """
    from sklearn.metrics import precision_recall_curve

    g, p = _check(y_val, p_val, "validation scores")
    names = _names(g.shape[1], class_names)
    out = np.full(g.shape[1], float(default))
    for j in range(g.shape[1]):
        if g[:, j].sum() == 0:
            warnings.warn(
                f"class {names[j]!r} has no positives in validation: threshold {default}", MetricWarning, stacklevel=2
            )
            continue
        prec, rec, thr = precision_recall_curve(g[:, j], p[:, j])
        prec, rec = prec[:-1], rec[:-1]  # the last point (recall 0) has no threshold
        denom = prec + rec
        f1 = np.divide(2 * prec * rec, denom, out=np.zeros_like(denom), where=denom > 0)
        best = np.flatnonzero(f1 == f1.max())
        out[j] = float(thr[best].max())
    return out


def read_thresholds(path: str | Path, n_classes: int | None = None) -> tuple[list[str], np.ndarray]:
    """Read ``tag<TAB>threshold`` lines (one per class, in column order)."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "thresholds file not found")
    names, values = [], []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rstrip("\n").split("\t")
        try:
            if len(parts) != 2:
                raise ValueError
            names.append(parts[0])
            values.append(float(parts[1]))
        except ValueError:
            raise InputError(f"{path}:{i}", f"expected 'tag<TAB>threshold', got {line!r}") from None
    if n_classes is not None and len(values) != n_classes:
        raise InputError(str(path), f"{len(values)} thresholds for {n_classes} classes")
    return names, np.asarray(values, dtype=np.float64)


def write_thresholds(path: str | Path, class_names: Sequence[str], thresholds: Sequence[float]) -> None:
    """Write ``tag<TAB>threshold`` lines (``repr`` of the float: read back exactly)."""
    lines = [f"{c}\t{float(t)!r}" for c, t in zip(class_names, thresholds)]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_matrix(path: str | Path, name: str) -> np.ndarray:
    """Load a 2-D ``.npy`` matrix, naming ``name`` and the file in errors."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), f"{name} file not found")
    try:
        m = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(str(path), f"not a .npy array ({exc})") from None
    if m.ndim == 1:
        m = m[:, None]
    if m.ndim != 2:
        raise InputError(str(path), f"expected an (n, c) matrix, got shape {m.shape}")
    return m


__all__ = [
    "METRIC_KEYS",
    "MetricWarning",
    "choose_thresholds",
    "decisions_from_scores",
    "load_matrix",
    "mediaeval_metrics",
    "per_class_auc",
    "per_class_metrics",
    "read_thresholds",
    "write_thresholds",
]
