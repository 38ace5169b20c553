"""Experiment ``robustness``: probes trained on clean embeddings, evaluated on each deformation scenario's test."""

from __future__ import annotations

from typing import Any

from mgdata.classify.config import ClassifyConfig
from mgdata.classify.data import TaskData, task_data
from mgdata.classify.fitting import evaluate, fit_probe, probe_meta
from mgdata.classify.metrics import METRIC_KEYS
from mgdata.classify.stats import paired_std, trial_summary
from mgdata.classify.tables import EmbTable


def run_robustness(
    td: TaskData,
    scenarios: dict[str, EmbTable],
    cfg: ClassifyConfig,
    *,
    baseline: dict[str, Any] | None = None,
    embedder: dict | None = None,
) -> dict[str, Any]:
    """Every probe of ``cfg.probes`` trained on clean train, evaluated on clean test and each scenario's test.

    Returns ``{probe: {scenario: {metric_mean, metric_std, metric_drop, metric_drop_std}}}`` (drop = clean -
    scenario; its std is over seeds, each seed's model on both sides).
    """
    out: dict[str, Any] = {}
    for name in sorted(cfg.probes):
        if baseline is not None and name == cfg.probe:
            models = baseline["models"]
        else:
            models = [
                fit_probe(
                    td.train,
                    td.val,
                    td.classes,
                    td.multilabel,
                    cfg.probes[name],
                    cfg.seed + t,
                    threshold_default=cfg.threshold_default,
                    meta=probe_meta(td, embedder, {"experiment": "robustness", "probe": name}),
                )
                for t in range(cfg.trials)
            ]
        clean_trials = [evaluate(m, td.test)["metrics"] for m in models]
        clean = trial_summary(clean_trials)
        res = {"clean": clean}
        for sc in sorted(scenarios):
            data = task_data(scenarios[sc], td.task, td.classes, td.multilabel, missing_class="skip")
            sc_trials = [evaluate(m, data)["metrics"] for m in models]
            s = trial_summary(sc_trials)
            s.update({f"{k}_drop": clean[f"{k}_mean"] - s[f"{k}_mean"] for k in METRIC_KEYS})
            # the same model per seed on both sides: the std of the paired drop is the seed noise of the drop
            s.update({f"{k}_drop_std": paired_std(sc_trials, clean_trials, k, rel=False) for k in METRIC_KEYS})
            res[sc] = s
        out[name] = res
    return out


__all__ = ["run_robustness"]
