"""Experiment ``baseline``: real train -> real test, beside majority/chance references and permutation tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from mgdata.classify.config import ClassifyConfig
from mgdata.classify.data import TaskData
from mgdata.classify.fitting import (
    evaluate,
    fit_probe,
    permutation_trials,
    probe_meta,
    reference_baselines,
    track_confusion,
)
from mgdata.classify.stats import trial_summary


def run_baseline(
    td: TaskData, cfg: ClassifyConfig, *, embedder: dict | None = None, probe: str | None = None
) -> dict[str, Any]:
    """Real train -> real test over ``cfg.trials`` seeds; references and permutation p-value beside.

    Returns:
        ``{"summary": {...}, "trials": [...], "models": [ProbeModel...], "per_class": ..., "references": ...,
        "permutation": ..., "test_confusion": [(track, actual, predicted)...], "counts": ...}`` (``models`` is
        not JSON: the caller saves them; ``permutation`` holds one test per seed).
    """
    pcfg = cfg.probes[probe or cfg.probe]
    models, trials = [], []
    for t in range(cfg.trials):
        m = fit_probe(
            td.train,
            td.val,
            td.classes,
            td.multilabel,
            pcfg,
            cfg.seed + t,
            threshold_default=cfg.threshold_default,
            meta=probe_meta(td, embedder, {"experiment": "baseline"}),
        )
        models.append(m)
        trials.append(evaluate(m, td.test)["metrics"])
    return {
        "summary": trial_summary(trials),
        "trials": trials,
        "models": models,
        "per_class": evaluate(models[0], td.test, per_class=True)["per_class"],
        "references": reference_baselines(td.train, td.test, td.multilabel, cfg.seed),
        "permutation": permutation_trials(models, td.test, cfg.permutations, cfg.seed),
        # trial 0 (seed classify.seed, the saved baseline/model): DVC draws one matrix, not a mean of several
        "test_confusion": track_confusion(models[0], td.test),
        "counts": {
            "train_rows": len(td.train),
            "validation_rows": len(td.val),
            "test_rows": len(td.test),
            "test_tracks": int(np.unique(td.test.tracks.astype(str)).size),
            "dropped_rows": td.train.dropped + td.val.dropped + td.test.dropped,
        },
    }


__all__ = ["run_baseline"]
