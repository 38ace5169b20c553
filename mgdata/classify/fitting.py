"""Train and score one probe: fit (validation thresholds), track-level metrics, references, permutation tests.

Thresholds of multi-label tasks are chosen on validation (track level) and applied to test.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from mgdata.classify.config import ProbeConfig
from mgdata.classify.data import Data, TaskData, track_level
from mgdata.classify.metrics import (
    choose_thresholds,
    decisions_from_scores,
    mediaeval_metrics,
    per_class_metrics,
)
from mgdata.classify.probe import ProbeModel, train_probe
from mgdata.classify.stats import macro_auc_permutations, seed_agreement

log = logging.getLogger(__name__)


def probe_meta(td: TaskData, embedder: dict | None, extra: dict | None = None) -> dict:
    """What a probe saves about its origin: task, embedder description and the experiment (``extra``)."""
    return {"task": td.task, "embedder": embedder or {}, **(extra or {})}


def fit_probe(
    train: Data,
    val: Data,
    classes: Sequence[str],
    multilabel: bool,
    probe: ProbeConfig,
    seed: int,
    *,
    threshold_default: float = 0.5,
    meta: dict | None = None,
) -> ProbeModel:
    """Train a probe; a multi-label probe gets per-class thresholds from validation (track level)."""
    model = train_probe(
        train.x, train.y, val.x, val.y, labels=classes, multilabel=multilabel, cfg=probe, seed=seed, meta=meta
    )
    if multilabel:
        _, yv, pv = track_level(val.tracks, val.y, model.predict_proba(val.x))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.thresholds = choose_thresholds(yv, pv, class_names=classes, default=threshold_default)
        for w in caught:
            log.warning("%s", w.message)
    return model


def evaluate(model: ProbeModel, test: Data, *, per_class: bool = False) -> dict[str, Any]:
    """Track-level MediaEval metrics of ``model`` on ``test`` (plus per-class figures when asked)."""
    _, yt, pt = track_level(test.tracks, test.y, model.predict_proba(test.x))
    dt = model.decide(pt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = mediaeval_metrics(yt, pt, dt, class_names=model.labels)
    for w in caught:
        log.warning("%s", w.message)
    out: dict[str, Any] = {"metrics": m, "n_tracks": int(yt.shape[0])}
    if per_class:
        out["per_class"] = per_class_metrics(yt, pt, dt, model.labels)
    return out


def reference_baselines(train: Data, test: Data, multilabel: bool, seed: int) -> dict[str, dict[str, float]]:
    """Majority (training prior as constant scores) and chance (seeded uniform scores) figures at track level."""
    _, yt, _ = track_level(test.tracks, test.y, np.zeros(test.y.shape))
    prior = train.y.mean(axis=0)
    const = np.tile(prior, (yt.shape[0], 1))
    rng = np.random.default_rng(seed)
    rand = rng.random(yt.shape)
    if multilabel:
        d_major = (const >= 0.5).astype(np.int64)
        d_rand = (rng.random(yt.shape) < prior).astype(np.int64)
    else:
        d_major = decisions_from_scores(const)
        d_rand = decisions_from_scores(rand)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"majority": mediaeval_metrics(yt, const, d_major), "chance": mediaeval_metrics(yt, rand, d_rand)}


def permutation_pvalue(model: ProbeModel, test: Data, n_permutations: int, seed: int) -> dict[str, float]:
    """P-value of the macro ROC-AUC: test-track labels permuted, model (and its scores) fixed.

    ``p = (1 + #{permuted >= observed}) / (1 + n)``; the unit permuted is the track.
    """
    _, yt, pt = track_level(test.tracks, test.y, model.predict_proba(test.x))
    observed, null = macro_auc_permutations(yt, pt, n_permutations, seed)
    p = float((1 + np.sum(null >= observed)) / (1 + n_permutations)) if n_permutations else float("nan")
    return {
        "roc_auc_macro": observed,
        "p_value": p,
        "n_permutations": int(n_permutations),
        "null_mean": float(null.mean()) if n_permutations else float("nan"),
    }


def permutation_trials(models: Sequence[ProbeModel], test: Data, n_permutations: int, seed: int) -> dict[str, Any]:
    """:func:`permutation_pvalue` of each trial's model (trial ``t``: permutation seed ``seed + t``), with the
    count of seeds with p < :data:`ALPHA` (:func:`seed_agreement`)."""
    per_seed = {str(seed + t): permutation_pvalue(m, test, n_permutations, seed + t) for t, m in enumerate(models)}
    return {**seed_agreement(per_seed), "n_permutations": int(n_permutations)}


def track_confusion(model: ProbeModel, test: Data) -> list[tuple[str, str, str]]:
    """One ``(track, actual, predicted)`` row per test track, clip scores averaged per track.

    Single-label: the class and the argmax class. Multi-label (mood): there is no primary tag to set
    against an argmax (a track's tags are an unordered set, and an argmax would ignore the validation
    thresholds every mood F1 uses), so both sides are tag *sets*: the true set and the set the thresholded
    probe outputs, ``+``-joined in class order (``none`` when no tag passes); the diagonal is exact-set match.
    """
    ids, yt, pt = track_level(test.tracks, test.y, model.predict_proba(test.x))
    dt = model.decide(pt)
    labels = list(model.labels)

    def name(row: np.ndarray) -> str:
        if not model.multilabel:
            return labels[int(np.argmax(row))]
        return "+".join(labels[j] for j in np.flatnonzero(row)) or "none"

    return [(str(i), name(a), name(p)) for i, a, p in zip(ids, yt, dt)]


__all__ = [
    "evaluate",
    "fit_probe",
    "permutation_pvalue",
    "permutation_trials",
    "probe_meta",
    "reference_baselines",
    "track_confusion",
]
