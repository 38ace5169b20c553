"""Experiment ``generated_classified``: real-data classifiers label generated samples (inherited label = truth).

Two variants: the baseline model of each trial (the source track was in its training data), and a model
trained without a held-out draw of those source tracks (source unseen).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from mgdata.classify.config import ClassifyConfig
from mgdata.classify.data import Data, TaskData, generated_data, sourceless
from mgdata.classify.fitting import fit_probe, probe_meta
from mgdata.classify.metrics import mediaeval_metrics
from mgdata.classify.probe import ProbeModel
from mgdata.classify.stats import trial_summary
from mgdata.classify.tables import EmbTable
from mgdata.errors import InputError


def _confusion(y: np.ndarray, d: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Row-normalised confusion (rows = inherited label, single-label) and accuracy."""
    t, p = y.argmax(axis=1), d.argmax(axis=1)
    c = len(classes)
    counts = np.zeros((c, c), dtype=np.int64)
    np.add.at(counts, (t, p), 1)
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros((c, c)), where=rows > 0)
    return {
        "classes": list(classes),
        "counts": counts.tolist(),
        "normalized": norm.tolist(),
        "accuracy": float((t == p).mean()) if t.size else float("nan"),
        "n": int(t.size),
        "pairs": [(classes[a], classes[b]) for a, b in zip(t, p)],
    }


def _classify_generated(model: ProbeModel, gen: Data, td: TaskData) -> dict[str, Any]:
    """``model`` on generated rows: the confusion (single-label) or the MediaEval metrics (multi-label)."""
    if len(gen) == 0:
        return {"n": 0}
    p = model.predict_proba(gen.x)
    d = model.decide(p)
    if td.multilabel:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {"n": len(gen), "metrics": mediaeval_metrics(gen.y, p, d, class_names=td.classes)}
    return _confusion(gen.y, d, td.classes)


def _generated_figures(r: dict[str, Any]) -> dict[str, float]:
    """The figures of one trial's generated-classified result that are averaged over seeds."""
    return {"accuracy": r["accuracy"]} if "accuracy" in r else dict(r.get("metrics", {}))


def _heldout_sources(src: np.ndarray, fraction: float, seed: int, train: Data) -> set[str]:
    """A seeded draw of ``fraction`` of the source tracks ``src`` to hold out of training.

    Tracks are taken in a seeded permuted order; a track whose removal would leave a class without training
    rows (the last carrier of a rare tag, as on a small multi-label split) is passed over for the next one, so
    fewer than ``fraction`` may be held out (``counts.heldout_tracks`` says how many). When no track is passed
    over this is the first ``fraction`` of the permutation.
    """
    order = np.random.default_rng(seed).permutation(src)
    wanted = int(round(fraction * src.size))
    tracks = train.tracks.astype(str)
    remaining = train.y.sum(axis=0)
    held: list[str] = []
    for track in order.tolist():
        if len(held) == wanted:
            break
        positives = train.y[tracks == track].sum(axis=0)
        if np.any((remaining > 0) & (remaining - positives <= 0)):
            continue
        held.append(track)
        remaining = remaining - positives
    return set(held)


def _source_unseen_probe(
    td: TaskData, held: set[str], cfg: ClassifyConfig, seed: int, embedder: dict | None, where: str
) -> tuple[Data, ProbeModel]:
    """The real training rows without the ``held`` source tracks, and the probe trained on them (``seed``).

    Raises:
        InputError: Holding the tracks out leaves a class without training rows.
    """
    keep = np.flatnonzero(~np.isin(td.train.tracks.astype(str), list(held)))
    train_wo = td.train.take(keep)
    missing = [c for j, c in enumerate(td.classes) if train_wo.y[:, j].sum() == 0]
    if missing:
        raise InputError(
            where,
            f"task {td.task!r}: holding out source tracks (seed {seed}) leaves class "
            f"{missing[0]!r} without training examples (lower classify.heldout_source_fraction)",
        )
    m_wo = fit_probe(
        train_wo,
        td.val,
        td.classes,
        td.multilabel,
        cfg.probes[cfg.probe],
        seed,
        threshold_default=cfg.threshold_default,
        meta=probe_meta(td, embedder, {"experiment": "generated_classified_source_unseen"}),
    )
    return train_wo, m_wo


def run_generated_classified(
    td: TaskData, gen_table: EmbTable, baseline: dict[str, Any], cfg: ClassifyConfig, *, embedder: dict | None = None
) -> dict[str, Any]:
    """Real-data classifiers label the generated samples (sample level; true = inherited label), per seed.

    * ``source_in_training``: the baseline model of each trial on generated samples whose source is a
      training track.
    * ``source_unseen``: per trial ``t``, a model (seed ``seed + t``) trained without a held-out draw (seed
      ``seed + t``) of ``heldout_source_fraction`` of those source tracks, on the generated samples of the
      held-out tracks and of validation/test tracks.

    Each variant is trial 0's full result (confusion matrices, written by the stage) plus ``summary``: mean
    and std over trials of its accuracy (single-label) or metrics (multi-label).
    """
    gen = generated_data(gen_table, td, cfg)
    in_train = gen.take(np.flatnonzero(gen.splits == "train"))
    # A clip made from no track (a composer's new piece) has no source to hold out: it is always "unseen".
    no_source = sourceless(gen)
    src = np.unique(in_train.tracks.astype(str)[~sourceless(in_train)])
    first: dict[str, Any] = {}
    figures: dict[str, list[dict[str, float]]] = {"source_in_training": [], "source_unseen": []}
    for t in range(cfg.trials):
        held = _heldout_sources(src, cfg.heldout_source_fraction, cfg.seed + t, td.train)
        train_wo, m_wo = _source_unseen_probe(td, held, cfg, cfg.seed + t, embedder, gen_table.where)
        unseen = gen.take(
            np.flatnonzero(np.isin(gen.tracks.astype(str), list(held)) | (gen.splits != "train") | no_source)
        )
        res = {
            "source_in_training": _classify_generated(baseline["models"][t], in_train, td),
            "source_unseen": _classify_generated(m_wo, unseen, td),
        }
        for variant, r in res.items():
            if r["n"]:
                figures[variant].append(_generated_figures(r))
        if t == 0:
            first = res | {"heldout_tracks": len(held), "train_rows_without_heldout": len(train_wo)}
    for variant in figures:
        first[variant]["summary"] = trial_summary(figures[variant]) if figures[variant] else {}
    return {
        "source_in_training": first["source_in_training"],
        "source_unseen": first["source_unseen"],
        "counts": {
            "generated_rows": len(gen),
            "generated_dropped": gen.dropped,
            "heldout_tracks": first["heldout_tracks"],
            "train_rows_without_heldout": first["train_rows_without_heldout"],
        },
    }


__all__ = ["run_generated_classified"]
