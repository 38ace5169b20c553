"""Experiment ``synthetic_only``: a probe trained on generated samples only, tested on real test tracks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from mgdata.classify.config import ClassifyConfig
from mgdata.classify.data import Data, TaskData, generated_data, sourceless, split_rows
from mgdata.classify.fitting import evaluate, fit_probe, permutation_trials, probe_meta
from mgdata.classify.stats import trial_summary
from mgdata.classify.tables import EmbTable
from mgdata.errors import InputError


def _synthetic_splits(gen: Data, td: TaskData, cfg: ClassifyConfig, where: str) -> tuple[Data, Data]:
    """Generated training rows and early-stopping rows (validation sources, else a seeded held-out share).

    Raises:
        InputError: Either side is empty.
    """
    train, val = split_rows(gen, "train"), split_rows(gen, "validation")
    if len(val) == 0 and len(train):
        # Hold out whole source tracks; a clip made from no track (a composer's new piece) is its own unit.
        tracks = train.tracks.astype(str)
        units = np.where(sourceless(train), train.keys.astype(str), tracks)
        src = np.unique(units)
        rng = np.random.default_rng(cfg.seed)
        n_val = max(1, int(round(cfg.synthetic_val_fraction * src.size)))
        held = np.isin(units, rng.permutation(src)[:n_val])
        train, val = train.take(np.flatnonzero(~held)), train.take(np.flatnonzero(held))
    if len(train) == 0 or len(val) == 0:
        raise InputError(
            where,
            f"task {td.task!r}: synthetic-only needs generated samples for training and early stopping "
            f"(have {len(train)} and {len(val)})",
        )
    return train, val


def _class_columns(train: Data, td: TaskData, cfg: ClassifyConfig, where: str) -> tuple[list[str], np.ndarray, list]:
    """The task's classes that have generated training rows, their target columns, and the classes skipped.

    Raises:
        InputError: A class has no generated training rows and ``missing_class`` is ``error``.
    """
    missing = [c for j, c in enumerate(td.classes) if train.y[:, j].sum() == 0]
    classes, cols = td.classes, np.arange(len(td.classes))
    if missing:
        if cfg.missing_class == "error":
            raise InputError(where, f"task {td.task!r}: class {missing[0]!r} has no generated training examples")
        cols = np.array([j for j, c in enumerate(td.classes) if c not in missing])
        classes = [td.classes[j] for j in cols]
    return classes, cols, missing


def run_synthetic_only(
    td: TaskData, gen_table: EmbTable, cfg: ClassifyConfig, *, embedder: dict | None = None
) -> dict[str, Any]:
    """Train on generated samples only (one dense layer of ``synthetic_hidden`` ReLU + softmax) -> real test.

    Training rows: generated samples of training source tracks; early stopping on generated samples of
    validation source tracks, or (generated audio is usually made from training tracks only) of a seeded
    ``synthetic_val_fraction`` of the generated samples' source tracks held out of training. No real
    audio enters training or model selection.
    """
    train, val = _synthetic_splits(generated_data(gen_table, td, cfg), td, cfg, gen_table.where)
    classes, cols, missing = _class_columns(train, td, cfg, gen_table.where)
    sub = lambda d: Data(d.x, d.y[:, cols], d.tracks, d.keys, d.splits)  # noqa: E731
    train, val, test = sub(train), sub(val), sub(td.test)
    test = test.take(np.flatnonzero(test.y.sum(axis=1) > 0))
    pcfg = replace(cfg.probes[cfg.probe], hidden=list(cfg.synthetic_hidden))
    trials, models = [], []
    for t in range(cfg.trials):
        m = fit_probe(
            train,
            val.take(np.flatnonzero(val.y.sum(axis=1) > 0)),
            classes,
            td.multilabel,
            pcfg,
            cfg.seed + t,
            threshold_default=cfg.threshold_default,
            meta=probe_meta(td, embedder, {"experiment": "synthetic_only"}),
        )
        models.append(m)
        trials.append(evaluate(m, test)["metrics"])
    return {
        "summary": trial_summary(trials),
        "trials": trials,
        # is a model that never heard real audio above chance on real tracks? one test per seed (ranks: cheap)
        "permutation": permutation_trials(models, test, cfg.permutations, cfg.seed),
        "counts": {
            "train_rows": len(train),
            "validation_rows": len(val),
            "skipped_classes": len(missing),
            "test_tracks": int(np.unique(test.tracks.astype(str)).size),
        },
    }


__all__ = ["run_synthetic_only"]
