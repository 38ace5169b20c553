"""One task's rows: 0/1 targets from a label column, the real splits, generated rows, track-level aggregation.

Track-level metrics average the clip scores of each track (:func:`track_level`): statistics are over tracks,
never clips of one track counted as independent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mgdata.classify.config import ClassifyConfig, task_column, task_vocabulary
from mgdata.classify.tables import EmbTable
from mgdata.errors import InputError

LABEL_COLUMNS = ("quadrant", "mood", "style")


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


@dataclass
class TaskData:
    """A task's real splits (train/validation/test) and its class list (from train)."""

    task: str
    classes: list[str]
    multilabel: bool
    train: Data
    val: Data
    test: Data


def _row_labels(table: EmbTable, task: str, multilabel: bool) -> list[list[str]]:
    """Labels of each row of ``task`` as strings (``[]`` for a missing label; one item unless multi-label).

    A task with a fixed vocabulary (``moodtheme``) keeps only the labels in it.
    """
    column = task_column(task)
    if column not in table.meta.columns:
        raise InputError(
            table.where,
            f"task {task!r}: column {column!r} missing from the embedding table "
            f"(columns: {', '.join(table.meta.columns)})",
        )
    vocabulary = task_vocabulary(task)
    out = []
    for v in table.meta[column].to_list():
        if v is None:
            out.append([])
        elif multilabel:
            out.append([str(t) for t in v] if isinstance(v, (list, tuple)) else [str(v)])
        else:
            out.append([str(v)])
    if vocabulary is not None:
        out = [[c for c in row if c in vocabulary] for row in out]
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


def class_coverage(td: TaskData) -> dict[str, object]:
    """Which classes the metrics cover: the task's vocabulary (if fixed), train classes, test positives.

    Metrics are computed over the classes with test positives (macro ROC-AUC is undefined for the others); on a
    small split that is fewer than the task's vocabulary, and this says which.
    """
    vocabulary = task_vocabulary(td.task)
    positives = td.test.y.sum(axis=0) if len(td.test) else np.zeros(len(td.classes), dtype=np.int64)
    with_pos = [c for c, n in zip(td.classes, positives) if n > 0]
    out: dict[str, object] = {
        "vocabulary": len(vocabulary) if vocabulary is not None else len(td.classes),
        "train_classes": len(td.classes),
        "test_classes_with_positives": len(with_pos),
        "classes": list(td.classes),
        "classes_with_test_positives": with_pos,
    }
    if vocabulary is not None:
        out["vocabulary_not_in_train"] = sorted(vocabulary - set(td.classes))
    return out


def generated_data(gen: EmbTable, td: TaskData, cfg: ClassifyConfig) -> Data:
    """Generated rows with an inherited label among the task's classes (others dropped and counted)."""
    if len(gen) == 0:
        raise InputError(gen.where, "generated artifact is empty")
    return task_data(gen, td.task, td.classes, td.multilabel, missing_class="skip")


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


def sourceless(data: Data) -> np.ndarray:
    """Mask of rows made from no source track (a composer's new piece: ``track_id`` null in the table)."""
    return np.isin(data.tracks.astype(str), ["None", ""])


def split_rows(data: Data, name: str) -> Data:
    """The rows of ``data`` whose ``split`` column is ``name`` (e.g. generated rows by source split)."""
    return data.take(np.flatnonzero(data.splits == name))


def concat_data(a: Data, b: Data) -> Data:
    """Rows of ``a`` then ``b`` (dropped counts reset: the result is a training set, not a read)."""
    return Data(
        np.concatenate([a.x, b.x]),
        np.concatenate([a.y, b.y]),
        np.concatenate([a.tracks, b.tracks]),
        np.concatenate([a.keys, b.keys]),
        np.concatenate([a.splits, b.splits]),
    )


__all__ = [
    "Data",
    "LABEL_COLUMNS",
    "TaskData",
    "class_coverage",
    "concat_data",
    "generated_data",
    "prepare_task",
    "sourceless",
    "split_rows",
    "task_classes",
    "task_data",
    "track_level",
]
