"""Classify audio files with a saved probe folder, without the pipeline.

Each file is decoded (any format libsndfile reads: wav, flac, mp3, ogg/vorbis, ogg/opus;
any rate and channel count: downmixed to mono, resampled by :func:`mgdata.embed.base.embed_clip`
to the embedder's rate), cut into the clips and windows the model's embeddings were computed with,
embedded (one mean vector per clip, as the embed stage's ``aggregation: mean``) and classified; a
file's scores are the mean of its clips' scores. A file
that cannot be decoded is reported by name and skipped; the others still get predictions.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.classify.probe import ProbeModel
from mgdata.errors import InputError, MgdataError

log = logging.getLogger(__name__)

#: Windowing used when a model folder does not record its own (the ``embed`` defaults).
DEFAULT_WINDOWING = {"window_s": 2.0, "hop_s": 1.0, "aggregation": "mean", "short_clip": "pad"}


def embedder_for(model: ProbeModel, *, where: str = "model"):
    """The embedder the model's training embeddings came from (id + settings in ``probe.json``).

    Raises:
        InputError: No embedder recorded, or its dimension differs from the model's input (embedder mismatch).
    """
    from mgdata.config import from_dict
    from mgdata.embed.base import get_embedder

    desc = model.meta.get("embedder") or {}
    name = desc.get("id")
    if not name:
        raise InputError(where, "probe.json records no embedder id: cannot embed audio for this model")
    settings = dict(desc.get("settings") or {})
    if name == "musicfeat":  # its settings are not (yet) a field of EmbedConfig
        from mgdata.embed.musicfeat import MusicFeatConfig, MusicFeatEmbedder

        emb = MusicFeatEmbedder(from_dict(MusicFeatConfig, settings, "musicfeat"))
    else:
        if name == "hf":
            settings["device"] = "cpu"
        emb = get_embedder(name, settings)
    if int(emb.dim) != model.dim:
        raise InputError(where, f"embedder mismatch: {name} gives dim {emb.dim}, the model expects {model.dim}")
    return emb


def embed_file(emb, path: str | Path, windowing: dict[str, Any]) -> np.ndarray:
    """Clip vectors ``[n_clips, dim]`` of an audio file, cut as the model's training rows were.

    ``windowing`` is the embed stage's (recorded in the model folder): with ``clip_s`` the file
    is cut into clips of that length (:func:`mgdata.embed.base.clip_spans`), else it is one clip.
    """
    from mgdata.audio import read_audio
    from mgdata.embed.base import embed_clips

    x, sr = read_audio(path, mono=True)
    clips = embed_clips(
        emb,
        x,
        sr,
        clip_s=float(windowing.get("clip_s") or 0.0),
        clip_hop_s=windowing.get("clip_hop_s"),
        window_s=float(windowing["window_s"]),
        hop_s=float(windowing["hop_s"]),
        short_clip="pad",
        key=str(path),
    )
    return clips.vectors


def read_labels(path: str | Path) -> dict[str, str]:
    """``file,label`` CSV (header optional) -> {file: label}."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "labels file not found")
    out = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.reader(fh), 1):
            if not row or (i == 1 and [c.strip().lower() for c in row[:2]] == ["file", "label"]):
                continue
            if len(row) < 2:
                raise InputError(f"{path}:{i}", f"expected 'file,label', got {row!r}")
            out[row[0].strip()] = row[1].strip()
    return out


def predict_files(
    model_dir: str | Path, paths: Sequence[str | Path], *, labels_csv: str | Path | None = None
) -> dict[str, Any]:
    """Predict every decodable file.

    Returns:
        ``{"labels", "rows": [{path, predicted, scores}], "skipped": [(path, reason)], "n_files"}``, plus
        ``accuracy``, ``n_labelled`` and ``confusion`` (rows = given label) with ``labels_csv``.
    """
    model = ProbeModel.load(model_dir)
    emb = embedder_for(model, where=str(model_dir))
    windowing = {**DEFAULT_WINDOWING, **(model.meta.get("windowing") or {})}
    vectors, names, skipped = [], [], []
    for p in paths:
        try:
            vectors.append(embed_file(emb, p, windowing))
            names.append(str(p))
        except MgdataError as exc:
            reason = exc.message if isinstance(exc, InputError) else str(exc)
            log.warning("skipped %s: %s", p, reason)
            skipped.append((str(p), reason))
    rows = []
    if vectors:
        # A file's score is the mean of its clips' scores (the track-level rule of the experiments).
        scores = np.stack([model.predict_proba(v).mean(axis=0) for v in vectors])
        decisions = model.decide(scores)
        for name, s, d in zip(names, scores, decisions):
            pred = (
                ";".join(c for c, v in zip(model.labels, d) if v)
                if model.multilabel
                else model.labels[int(np.argmax(s))]
            )
            rows.append({"path": name, "predicted": pred, "scores": {c: float(v) for c, v in zip(model.labels, s)}})
    result: dict[str, Any] = {"labels": model.labels, "rows": rows, "skipped": skipped, "n_files": len(paths)}
    if labels_csv is not None:
        given = read_labels(labels_csv)
        pairs = []
        for r in rows:
            label = given.get(r["path"], given.get(Path(r["path"]).name))
            if label is not None:
                pairs.append((label, r["predicted"]))
        result["n_labelled"] = len(pairs)
        result["accuracy"] = float(np.mean([a == b for a, b in pairs])) if pairs else float("nan")
        classes = sorted(set(model.labels) | {a for a, _ in pairs})
        m = np.zeros((len(classes), len(classes)), dtype=np.int64)
        for a, b in pairs:
            if b in classes:
                m[classes.index(a), classes.index(b)] += 1
        result["confusion"] = {"classes": classes, "counts": m.tolist()}
    return result


def write_predictions(result: dict[str, Any], out: str | Path) -> Path:
    """CSV: path, predicted, one score column per class."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["path", "predicted", *result["labels"]])
        for r in result["rows"]:
            w.writerow([r["path"], r["predicted"], *(f"{r['scores'][c]:.6f}" for c in result["labels"])])
    return out


__all__ = ["DEFAULT_WINDOWING", "embed_file", "embedder_for", "predict_files", "read_labels", "write_predictions"]
