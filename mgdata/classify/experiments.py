"""Classifier experiments on embedding tables (the seed papers' protocols).

Inputs are the consolidated tables of an embed artifact, ``{split}.npy`` (``[rows, dim]``)
beside ``{split}.parquet`` (columns ``key``, ``split``, ``track_id``, ``quadrant``, ``mood``,
``style``; a generated sample carries its source track's id, split and labels). One row is a
clip; track-level metrics average the clip scores of each track (:func:`track_level`).

Experiments (each returns a JSON-safe dict; ``summary`` holds numbers only):

* :func:`run_baseline` -- real train -> real test, ``trials`` seeds, mean/std of every metric,
  beside a majority and a chance baseline and a permutation p-value (labels permuted over
  test tracks, model fixed).
* :func:`run_augmented` -- real train + generated samples of train source tracks
  (``augment_fraction`` of the training rows, equal per class); deltas vs the baseline.
* :func:`run_generated_classified` -- a real-data classifier labels generated samples;
  normalised confusion (rows = inherited label) with the source track in training, and
  with a classifier that never saw the source tracks.
* :func:`run_synthetic_only` -- trained on generated samples only (one dense layer of 128 ReLU),
  tested on real test.
* :func:`run_robustness` -- probes trained on clean embeddings, evaluated per deformation scenario.
* :func:`run_fad` -- Frechet distance between generated and real-train embeddings.

Thresholds of multi-label tasks are chosen on validation (track level) and applied to test.
Statistics are over tracks, never clips of one track counted as independent. Every experiment that trains runs
``trials`` seeds (``seed``, ``seed + 1``, ...) and reports mean and sample std over them; a significance test runs
once per seed (over tracks) and its block counts the seeds with p < :data:`ALPHA`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.classify.config import ClassifyConfig, ProbeConfig
from mgdata.classify.metrics import (
    METRIC_KEYS,
    choose_thresholds,
    decisions_from_scores,
    mediaeval_metrics,
    per_class_metrics,
)
from mgdata.classify.probe import ProbeModel, train_probe
from mgdata.errors import InputError

log = logging.getLogger(__name__)

LABEL_COLUMNS = ("quadrant", "mood", "style")
#: Level at which a seed's test counts as significant in the seed-agreement counts (the conventional 5 %; the
#: p-values themselves are reported too, so a reader can apply another level).
ALPHA = 0.05


# ----------------------------------------------------------------------------------------------- tables


@dataclass
class EmbTable:
    """One split of an embedding artifact: the matrix and its row table (polars)."""

    x: np.ndarray
    meta: Any
    where: str

    def __len__(self) -> int:
        return int(self.x.shape[0])


def load_table(artifact_dir: str | Path, split: str) -> EmbTable:
    """Read ``{split}.npy`` + ``{split}.parquet`` of an embed artifact.

    Raises:
        InputError: A file is missing or the row counts disagree (names the file).
    """
    import polars as pl

    d = Path(artifact_dir)
    npy, pq = d / f"{split}.npy", d / f"{split}.parquet"
    for f in (npy, pq):
        if not f.exists():
            raise InputError(str(f), "embedding table not found (run the embed stage)")
    x = np.load(npy)
    meta = pl.read_parquet(pq)
    if x.ndim != 2 or x.shape[0] != meta.height:
        raise InputError(str(npy), f"matrix {x.shape} does not match {meta.height} parquet rows")
    return EmbTable(x=x, meta=meta, where=str(pq))


def load_artifact(artifact_dir: str | Path, splits: Sequence[str] = ("train", "validation", "test")) -> dict:
    """``{split: EmbTable}`` for the splits present in ``artifact_dir`` (the first missing one of ``splits`` raises
    only when none is present)."""
    d = Path(artifact_dir)
    out = {s: load_table(d, s) for s in splits if (d / f"{s}.npy").exists()}
    if not out:
        raise InputError(str(d), f"no embedding tables ({', '.join(f'{s}.npy' for s in splits)})")
    return out


def concat_tables(tables: Sequence[EmbTable]) -> EmbTable:
    """Rows of several tables (e.g. every split of a generated artifact)."""
    import polars as pl

    tables = [t for t in tables if len(t)]
    if not tables:
        raise InputError("tables", "no rows")
    return EmbTable(
        x=np.concatenate([t.x for t in tables]),
        meta=pl.concat([t.meta for t in tables], how="diagonal_relaxed"),
        where=",".join(t.where for t in tables),
    )


@dataclass
class Data:
    """Rows of one task: features, 0/1 targets, track ids, sample keys, and the dropped-row count."""

    x: np.ndarray
    y: np.ndarray
    tracks: np.ndarray
    keys: np.ndarray
    splits: np.ndarray
    dropped: int = 0

    def take(self, idx: np.ndarray) -> Data:
        return Data(self.x[idx], self.y[idx], self.tracks[idx], self.keys[idx], self.splits[idx], 0)

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _row_labels(table: EmbTable, task: str, multilabel: bool) -> list[list[str]]:
    if task not in table.meta.columns:
        raise InputError(
            table.where,
            f"task {task!r}: column {task!r} missing from the embedding table "
            f"(columns: {', '.join(table.meta.columns)})",
        )
    out = []
    for v in table.meta[task].to_list():
        if v is None:
            out.append([])
        elif multilabel:
            out.append([str(t) for t in v] if isinstance(v, (list, tuple)) else [str(v)])
        else:
            out.append([str(v)])
    return out


def task_classes(table: EmbTable, task: str, multilabel: bool) -> list[str]:
    """Sorted labels of ``task`` present in ``table`` (the training split)."""
    return sorted({c for row in _row_labels(table, task, multilabel) for c in row})


def task_data(
    table: EmbTable, task: str, classes: Sequence[str], multilabel: bool, *, missing_class: str = "error"
) -> Data:
    """The rows of ``table`` that have a ``task`` label among ``classes``.

    Rows without a label are dropped (counted). A row whose label is not in ``classes``
    (a class without training examples) raises, or with ``missing_class="skip"`` is
    dropped and counted. NaN embedding rows raise InputError naming the table.
    """
    index = {c: j for j, c in enumerate(classes)}
    labels = _row_labels(table, task, multilabel)
    y = np.zeros((len(table), len(classes)), dtype=np.int64)
    keep = np.zeros(len(table), dtype=bool)
    for i, row in enumerate(labels):
        unknown = [c for c in row if c not in index]
        if unknown and missing_class == "error":
            raise InputError(
                table.where,
                f"task {task!r}: class {unknown[0]!r} has no training examples "
                "(set classify.missing_class: skip to drop its rows)",
            )
        known = [index[c] for c in row if c in index]
        if known and not (unknown and not multilabel):
            y[i, known] = 1
            keep[i] = True
    bad = ~np.isfinite(table.x).all(axis=1)
    if bad.any():
        raise InputError(table.where, f"{int(bad.sum())} embedding rows contain NaN or infinite values")
    meta = table.meta
    n = len(table)
    tracks = np.asarray(
        meta["track_id"].cast(str).to_list() if "track_id" in meta.columns else meta["key"].to_list(), dtype=object
    )
    keys = np.asarray(meta["key"].to_list() if "key" in meta.columns else [str(i) for i in range(n)], dtype=object)
    splits = np.asarray(meta["split"].to_list() if "split" in meta.columns else [""] * n, dtype=object)
    idx = np.flatnonzero(keep)
    return Data(
        x=table.x[idx].astype(np.float32),
        y=y[idx],
        tracks=tracks[idx],
        keys=keys[idx],
        splits=splits[idx],
        dropped=int(n - idx.size),
    )


def track_level(tracks: np.ndarray, y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aggregate clip rows to tracks: ``(track ids sorted, targets of each track, mean clip score)``."""
    uniq, inv = np.unique(np.asarray(tracks, dtype=str), return_inverse=True)
    counts = np.bincount(inv, minlength=uniq.size).astype(np.float64)
    pt = np.zeros((uniq.size, p.shape[1]))
    np.add.at(pt, inv, p)
    pt /= counts[:, None]
    yt = np.zeros((uniq.size, y.shape[1]), dtype=np.int64)
    yt[inv] = y  # labels are track-level: every clip of a track has the same
    return uniq, yt, pt


# ----------------------------------------------------------------------------------------------- helpers


def _summary(trials: list[dict[str, float]]) -> dict[str, float]:
    """``{metric_mean, metric_std}`` over trials (sample std, 0 for one trial)."""
    out = {}
    for k in trials[0]:
        v = np.array([t[k] for t in trials], dtype=np.float64)
        out[f"{k}_mean"] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
        out[f"{k}_std"] = float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else 0.0
    return out


def _paired_std(base: list[dict[str, float]], new: list[dict[str, float]], key: str, rel: bool) -> float:
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


def _split(data: Data, name: str) -> Data:
    return data.take(np.flatnonzero(data.splits == name))


# ----------------------------------------------------------------------------------------------- experiments


@dataclass
class TaskData:
    """A task's real splits (train/validation/test) and its class list (from train)."""

    task: str
    classes: list[str]
    multilabel: bool
    train: Data
    val: Data
    test: Data


def prepare_task(real: dict[str, EmbTable], task: str, cfg: ClassifyConfig) -> TaskData:
    """Classes from the training split; rows of each split with a label."""
    for s in ("train", "validation", "test"):
        if s not in real:
            raise InputError(s, f"task {task!r}: the real artifact has no {s!r} split")
    ml = cfg.multilabel(task)
    classes = task_classes(real["train"], task, ml)
    if len(classes) < 2:
        raise InputError(real["train"].where, f"task {task!r}: {len(classes)} class(es) in train, need >= 2")
    d = {
        s: task_data(real[s], task, classes, ml, missing_class=cfg.missing_class)
        for s in ("train", "validation", "test")
    }
    return TaskData(task, classes, ml, d["train"], d["validation"], d["test"])


def _meta(td: TaskData, embedder: dict | None, extra: dict | None = None) -> dict:
    return {"task": td.task, "embedder": embedder or {}, **(extra or {})}


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
            meta=_meta(td, embedder, {"experiment": "baseline"}),
        )
        models.append(m)
        trials.append(evaluate(m, td.test)["metrics"])
    return {
        "summary": _summary(trials),
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


def generated_data(gen: EmbTable, td: TaskData, cfg: ClassifyConfig) -> Data:
    """Generated rows with an inherited label among the task's classes (others dropped and counted)."""
    if len(gen) == 0:
        raise InputError(gen.where, "generated artifact is empty")
    return task_data(gen, td.task, td.classes, td.multilabel, missing_class="skip")


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


def _concat(a: Data, b: Data) -> Data:
    return Data(
        np.concatenate([a.x, b.x]),
        np.concatenate([a.y, b.y]),
        np.concatenate([a.tracks, b.tracks]),
        np.concatenate([a.keys, b.keys]),
        np.concatenate([a.splits, b.splits]),
    )


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
        out[f"{k}_abs_std"] = _paired_std(base_trials, new_trials, k, rel=False)
        out[f"{k}_rel_std"] = _paired_std(base_trials, new_trials, k, rel=True)
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
            _concat(td.train, gen.take(idx)),
            td.val,
            td.classes,
            td.multilabel,
            pcfg,
            cfg.seed + t,
            threshold_default=cfg.threshold_default,
            meta=_meta(td, embedder, {"experiment": "augmented"}),
        )
        ev = evaluate(m, td.test, per_class=t == 0)
        trials.append(ev["metrics"])
        per_class = per_class or ev.get("per_class")
    summary = _summary(trials)
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


def _heldout_sources(src: np.ndarray, fraction: float, seed: int) -> set[str]:
    rng = np.random.default_rng(seed)
    return set(rng.permutation(src)[: int(round(fraction * src.size))].tolist())


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
    src = np.unique(in_train.tracks.astype(str))
    first: dict[str, Any] = {}
    figures: dict[str, list[dict[str, float]]] = {"source_in_training": [], "source_unseen": []}
    for t in range(cfg.trials):
        held = _heldout_sources(src, cfg.heldout_source_fraction, cfg.seed + t)
        keep = np.flatnonzero(~np.isin(td.train.tracks.astype(str), list(held)))
        train_wo = td.train.take(keep)
        missing = [c for j, c in enumerate(td.classes) if train_wo.y[:, j].sum() == 0]
        if missing:
            raise InputError(
                gen_table.where,
                f"task {td.task!r}: holding out source tracks (seed {cfg.seed + t}) leaves class "
                f"{missing[0]!r} without training examples (lower classify.heldout_source_fraction)",
            )
        m_wo = fit_probe(
            train_wo,
            td.val,
            td.classes,
            td.multilabel,
            cfg.probes[cfg.probe],
            cfg.seed + t,
            threshold_default=cfg.threshold_default,
            meta=_meta(td, embedder, {"experiment": "generated_classified_source_unseen"}),
        )
        unseen = gen.take(np.flatnonzero(np.isin(gen.tracks.astype(str), list(held)) | (gen.splits != "train")))
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
        first[variant]["summary"] = _summary(figures[variant]) if figures[variant] else {}
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


def run_synthetic_only(
    td: TaskData, gen_table: EmbTable, cfg: ClassifyConfig, *, embedder: dict | None = None
) -> dict[str, Any]:
    """Train on generated samples only (one dense layer of ``synthetic_hidden`` ReLU + softmax) -> real test.

    Training rows: generated samples of training source tracks; early stopping on generated samples of
    validation source tracks, or (generated audio is usually made from training tracks only) of a seeded
    ``synthetic_val_fraction`` of the generated samples' source tracks held out of training. No real
    audio enters training or model selection.
    """
    gen = generated_data(gen_table, td, cfg)
    train, val = _split(gen, "train"), _split(gen, "validation")
    if len(val) == 0 and len(train):
        src = np.unique(train.tracks.astype(str))
        rng = np.random.default_rng(cfg.seed)
        n_val = max(1, int(round(cfg.synthetic_val_fraction * src.size)))
        held = np.isin(train.tracks.astype(str), rng.permutation(src)[:n_val])
        train, val = train.take(np.flatnonzero(~held)), train.take(np.flatnonzero(held))
    if len(train) == 0 or len(val) == 0:
        raise InputError(
            gen_table.where,
            f"task {td.task!r}: synthetic-only needs generated samples for training and early stopping "
            f"(have {len(train)} and {len(val)})",
        )
    missing = [c for j, c in enumerate(td.classes) if train.y[:, j].sum() == 0]
    classes, cols = td.classes, np.arange(len(td.classes))
    if missing:
        if cfg.missing_class == "error":
            raise InputError(
                gen_table.where, f"task {td.task!r}: class {missing[0]!r} has no generated training examples"
            )
        cols = np.array([j for j, c in enumerate(td.classes) if c not in missing])
        classes = [td.classes[j] for j in cols]
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
            meta=_meta(td, embedder, {"experiment": "synthetic_only"}),
        )
        models.append(m)
        trials.append(evaluate(m, test)["metrics"])
    return {
        "summary": _summary(trials),
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
                    meta=_meta(td, embedder, {"experiment": "robustness", "probe": name}),
                )
                for t in range(cfg.trials)
            ]
        clean_trials = [evaluate(m, td.test)["metrics"] for m in models]
        clean = _summary(clean_trials)
        res = {"clean": clean}
        for sc in sorted(scenarios):
            data = task_data(scenarios[sc], td.task, td.classes, td.multilabel, missing_class="skip")
            sc_trials = [evaluate(m, data)["metrics"] for m in models]
            s = _summary(sc_trials)
            s.update({f"{k}_drop": clean[f"{k}_mean"] - s[f"{k}_mean"] for k in METRIC_KEYS})
            # the same model per seed on both sides: the std of the paired drop is the seed noise of the drop
            s.update({f"{k}_drop_std": _paired_std(sc_trials, clean_trials, k, rel=False) for k in METRIC_KEYS})
            res[sc] = s
        out[name] = res
    return out


# ----------------------------------------------------------------------------------------------- FAD


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to rows of ``a`` and ``b``:
    ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` (scipy ``sqrtm``, real part).

    Raises:
        InputError: Fewer than 2 rows on a side or different dims.
    """
    from scipy.linalg import sqrtm

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InputError("fad", f"embedding shapes {a.shape} and {b.shape} are not comparable")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise InputError("fad", f"need >= 2 rows per side, have {a.shape[0]} and {b.shape[0]}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = sqrtm(s_a @ s_b)
    if not np.isfinite(covmean).all():  # singular product: regularise both covariances slightly
        eps = np.eye(s_a.shape[0]) * 1e-6
        covmean = sqrtm((s_a + eps) @ (s_b + eps))
    covmean = np.real(covmean)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2.0 * np.trace(covmean))


def run_fad(td: TaskData, gen_table: EmbTable, cfg: ClassifyConfig) -> dict[str, Any]:
    """Frechet distance of generated vs real-train embeddings, overall and per class, with n per side.

    FAD proper is this distance on a standard pretrained embedder (VGGish); on ``logmel`` or
    ``musicfeat`` it is a Frechet distance in that feature space. It is biased upward for
    small n (the covariance estimate is noisy): compare figures at similar n only.
    """
    gen = generated_data(gen_table, td, cfg)
    out: dict[str, Any] = {
        "overall": {"fd": frechet_distance(gen.x, td.train.x), "n_generated": len(gen), "n_real": len(td.train)},
        "per_class": {},
    }
    for j, c in enumerate(td.classes):
        g, r = gen.x[gen.y[:, j] == 1], td.train.x[td.train.y[:, j] == 1]
        entry: dict[str, Any] = {"n_generated": int(g.shape[0]), "n_real": int(r.shape[0])}
        entry["fd"] = frechet_distance(g, r) if g.shape[0] >= 2 and r.shape[0] >= 2 else float("nan")
        out["per_class"][c] = entry
    return out


__all__ = [
    "ALPHA",
    "Data",
    "EmbTable",
    "LABEL_COLUMNS",
    "TaskData",
    "concat_tables",
    "draw_augmentation",
    "evaluate",
    "fit_probe",
    "frechet_distance",
    "generated_data",
    "load_artifact",
    "load_table",
    "macro_auc_permutations",
    "permutation_pvalue",
    "permutation_trials",
    "prepare_task",
    "reference_baselines",
    "run_augmented",
    "run_baseline",
    "run_fad",
    "run_generated_classified",
    "run_robustness",
    "run_synthetic_only",
    "seed_agreement",
    "task_classes",
    "task_data",
    "track_confusion",
    "track_level",
]
