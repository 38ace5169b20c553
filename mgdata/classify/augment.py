"""Experiment ``augmented``: real train + generated samples of training source tracks; deltas vs the baseline."""

from __future__ import annotations

from typing import Any

import numpy as np

from mgdata.classify.config import ClassifyConfig
from mgdata.classify.data import Data, TaskData, concat_data, generated_data
from mgdata.classify.fitting import evaluate, fit_probe, probe_meta
from mgdata.classify.metrics import METRIC_KEYS
from mgdata.classify.stats import paired_std, trial_summary
from mgdata.classify.tables import EmbTable
from mgdata.errors import InputError


def draw_augmentation(
    gen: Data, n_train_rows: int, n_classes: int, fraction: float, seed: int
) -> tuple[np.ndarray, dict[str, int]]:
    """Indices of generated rows to add: ``fraction * n_train_rows`` rows, equal per class, seeded.

    Only rows whose source track is in the training split are eligible (a reconstruction of a
    validation/test track would leak it). Returns the indices and counts (wanted, drawn, short).
    """
    per_class = max(1, int(round(fraction * n_train_rows / n_classes)))
    rng = np.random.default_rng(seed)
    eligible = gen.splits == "train"
    chosen: list[int] = []
    taken = np.zeros(len(gen), dtype=bool)
    short = 0
    for j in range(n_classes):
        pool = np.flatnonzero(eligible & (gen.y[:, j] == 1) & ~taken)
        pick = rng.permutation(pool)[:per_class]
        short += per_class - pick.size
        taken[pick] = True
        chosen.extend(pick.tolist())
    idx = np.sort(np.asarray(chosen, dtype=np.int64))
    return idx, {"wanted": per_class * n_classes, "drawn": int(idx.size), "short": int(short)}


def _delta(
    base: dict[str, float],
    new: dict[str, float],
    highlight_rel: float,
    base_trials: list[dict[str, float]],
    new_trials: list[dict[str, float]],
) -> dict[str, float]:
    """Change of the means, the seed-paired std of the change, and how many seeds improved."""
    out = {}
    for k in METRIC_KEYS:
        b, n = base[f"{k}_mean"], new[f"{k}_mean"]
        out[f"{k}_abs"] = n - b
        out[f"{k}_rel"] = (n - b) / b if b else float("nan")
        out[f"{k}_abs_std"] = paired_std(base_trials, new_trials, k, rel=False)
        out[f"{k}_rel_std"] = paired_std(base_trials, new_trials, k, rel=True)
        out[f"{k}_trials_better"] = float(sum(nt[k] > bt[k] for bt, nt in zip(base_trials, new_trials)))
        out[f"{k}_flag"] = float(b > 0 and (n - b) / b >= highlight_rel)
    return out


def run_augmented(
    td: TaskData, gen_table: EmbTable, baseline: dict[str, Any], cfg: ClassifyConfig, *, embedder: dict | None = None
) -> dict[str, Any]:
    """Real train + generated samples (drawn per trial) -> real test; deltas vs ``baseline``."""
    gen = generated_data(gen_table, td, cfg)
    pcfg = cfg.probes[cfg.probe]
    trials, counts = [], {}
    per_class = None
    for t in range(cfg.trials):
        idx, counts = draw_augmentation(gen, len(td.train), len(td.classes), cfg.augment_fraction, cfg.seed + t)
        if idx.size == 0:
            raise InputError(
                gen_table.where,
                f"task {td.task!r}: no generated sample of a training source track "
                "has a label among the task's classes",
            )
        m = fit_probe(
            concat_data(td.train, gen.take(idx)),
            td.val,
            td.classes,
            td.multilabel,
            pcfg,
            cfg.seed + t,
            threshold_default=cfg.threshold_default,
            meta=probe_meta(td, embedder, {"experiment": "augmented"}),
        )
        ev = evaluate(m, td.test, per_class=t == 0)
        trials.append(ev["metrics"])
        per_class = per_class or ev.get("per_class")
    summary = trial_summary(trials)
    pc_delta = {
        c: {k: per_class[c][k] - baseline["per_class"][c][k] for k in ("f1", "roc_auc", "pr_auc")} for c in td.classes
    }
    return {
        "summary": summary,
        "trials": trials,
        "delta": _delta(baseline["summary"], summary, cfg.highlight_rel, baseline["trials"], trials),
        "per_class": per_class,
        "per_class_delta": pc_delta,
        "counts": {**counts, "generated_rows": len(gen), "generated_dropped": gen.dropped},
    }


__all__ = ["draw_augmentation", "run_augmented"]
