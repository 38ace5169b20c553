"""Inputs of the ``generate`` builder: the labels table, the eligible corpus tracks and their clips.

The labels table (``track_id`` + the label column) decides which training tracks are
eligible and their class; the corpus mix artifact gives their duration, licence and
label fields (:func:`mgdata.labels.label_fields`), and the audio of the clips the plan
draws (:func:`load_clips`, cropped by :func:`crop_clip`, which ``regenerate`` shares).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from mgdata.audio import decode_audio
from mgdata.errors import InputError, ParamsError
from mgdata.generate.policy import ClipRef, TrackInfo
from mgdata.generate.records import SPLIT
from mgdata.labels.fields import label_fields
from mgdata.report import StageReport
from mgdata.store import decode_json, fingerprint, iter_samples, read_artifact_info, sha256_file

log = logging.getLogger("mgdata")


def _read_labels(labels: str | Path | pl.DataFrame, label_column: str) -> tuple[pl.DataFrame, str]:
    where = "labels frame"
    if isinstance(labels, pl.DataFrame):
        df = labels
    else:
        where = str(labels)
        if not Path(labels).exists():
            raise InputError(where, "labels file not found (run the relabel stage first)")
        df = pl.read_parquet(labels)
    if "track_id" not in df.columns:
        raise InputError(where, f"no track_id column (columns: {df.columns})")
    if label_column not in df.columns:
        raise ParamsError(
            "generate.label_column", f"{label_column!r} is not a column of {where} (columns: {df.columns})"
        )
    return df, where


def load_labels(labels: str | Path | pl.DataFrame, label_column: str) -> tuple[dict[str, str], str]:
    """Read ``track_id -> label`` from a labels parquet file or frame.

    Args:
        labels: Path of a parquet file, or a polars DataFrame, with columns
            ``track_id`` and ``label_column``.
        label_column: The label column (``generate.label_column``).

    Returns:
        ``(mapping, labels_hash)``; rows with a null/empty label are left out.
        ``labels_hash`` is the file's sha256 (or a hash of the frame's rows).

    Raises:
        InputError: Missing file, missing ``track_id`` column or conflicting
            labels for one track (names the file).
        ParamsError: ``label_column`` is not a column.
    """
    df, where = _read_labels(labels, label_column)
    df = df.select(pl.col("track_id").cast(pl.Utf8), pl.col(label_column).cast(pl.Utf8).alias("label"))
    mapping: dict[str, str] = {}
    for track_id, label in df.sort("track_id").iter_rows():
        if label is None or not label.strip() or track_id is None:
            continue
        if mapping.get(track_id, label) != label:
            raise InputError(where, f"track {track_id!r} has two labels: {mapping[track_id]!r} and {label!r}")
        mapping[track_id] = label
    labels_hash = fingerprint(sorted(mapping.items())) if isinstance(labels, pl.DataFrame) else sha256_file(labels)
    return mapping, labels_hash


def tracks_from_labels(
    labels: str | Path | pl.DataFrame, label_column: str, label_of: dict[str, str]
) -> list[TrackInfo]:
    """Eligible tracks from the labels table itself (its ``split`` and ``duration_s`` columns).

    Used in text mode without an audio artifact (e.g. MusicGen prompts per mood
    tag on MTG-Jamendo, whose ``jamendo_quadrants.parquet`` has these columns).
    """
    df, where = _read_labels(labels, label_column)
    missing = [c for c in ("split", "duration_s") if c not in df.columns]
    if missing:
        raise InputError(where, f"without a corpus artifact the labels need columns {missing}")
    rows = df.select(pl.col("track_id").cast(pl.Utf8), "split", pl.col("duration_s").cast(pl.Float64))
    return [
        TrackInfo(t, label_of[t], str(sp), float(d))
        for t, sp, d in rows.sort("track_id").iter_rows()
        if t in label_of and d is not None
    ]


def crop_clip(x: np.ndarray, sr: int, offset_s: float, duration_s: float) -> np.ndarray:
    """The samples ``[round(offset_s*sr), +round(duration_s*sr))`` of ``x``, zero-padded at the end.

    Shared by the builder and ``mgdata generate regenerate`` so both see the same clip.
    """
    start = int(round(offset_s * sr))
    n = int(round(duration_s * sr))
    clip = np.asarray(x[start : start + n], dtype=np.float32)
    if len(clip) < n:
        clip = np.pad(clip, (0, n - len(clip)))
    return clip


def scan_corpus(
    corpus_mix_dir: str | Path,
    label_of: dict[str, str],
    report: StageReport | None = None,
    *,
    track_labels: dict[str, dict[str, Any]] | None = None,
    quadrant_of: dict[str, str] | None = None,
) -> tuple[list[TrackInfo], dict[str, str]]:
    """Eligible training tracks of the corpus mix (metadata only) and their licences.

    Tracks without a label are counted (``tracks_unlabelled``) and not eligible.

    Args:
        corpus_mix_dir: The corpus mix artifact.
        label_of: ``track_id -> label`` (the labels table).
        report: Stage report for skips and counts.
        track_labels: If given, filled with ``track_id -> label fields`` (quadrant, mood,
            style, split, track_id; see :func:`mgdata.labels.label_fields`) of every
            eligible track, copied into the samples generated from it.
        quadrant_of: ``track_id -> quadrant`` of the relabel table, used when the corpus
            json has no ``quadrant`` of its own.
    """
    tracks, licences, unlabelled = [], {}, []
    for s in iter_samples(corpus_mix_dir, split=SPLIT):
        try:
            # A source mix json of any source (corpus TrackRecord, jamendo clip, test layout): only the
            # fields every source shares are read, so it stays a dict.
            meta = decode_json(s["json"])
            track_id = str(meta.get("track_id", s["__key__"]))
            split = str(meta.get("split", SPLIT))
            duration_s = float(meta["duration_s"])
        except (KeyError, ValueError, TypeError) as exc:
            if report is not None:
                report.skip(s["__key__"], f"bad corpus json: {exc}")
            continue
        if split != SPLIT:
            if report is not None:
                report.skip(track_id, f"split mismatch: json says {split!r}, shard split is {SPLIT!r}")
            continue
        label = label_of.get(track_id)
        if label is None:
            unlabelled.append(track_id)
            continue
        tracks.append(TrackInfo(track_id, label, split, duration_s))
        licences[track_id] = str((meta.get("provenance") or {}).get("licence", ""))
        if track_labels is not None:
            track_labels[track_id] = label_fields(
                {"track_id": track_id, **meta}, quadrant=(quadrant_of or {}).get(track_id)
            )
    if report is not None:
        report.count("tracks_train_labelled", len(tracks))
        report.count("tracks_unlabelled", len(unlabelled))
    if unlabelled:
        log.warning(
            "generate: %d training tracks have no label and are not eligible (e.g. %s)",
            len(unlabelled),
            ", ".join(unlabelled[:5]),
        )
    return tracks, licences


def load_clips(
    corpus_mix_dir: str | Path, clips: list[ClipRef], *, progress: bool = False
) -> dict[tuple[str, float], tuple[np.ndarray, int]]:
    """Decode the tracks holding ``clips`` (one pass over the mix) and crop each clip.

    ``progress`` shows a bar over the mix's training tracks (on stderr).
    """
    want: dict[str, list[ClipRef]] = {}
    for c in clips:
        want.setdefault(c.track_id, []).append(c)
    out: dict[tuple[str, float], tuple[np.ndarray, int]] = {}
    n_train = (read_artifact_info(corpus_mix_dir).get("splits", {}).get(SPLIT) or {}).get("samples")
    stream = tqdm(
        iter_samples(corpus_mix_dir, split=SPLIT),
        total=n_train,
        desc="generate: source clips",
        unit="track",
        disable=not progress,
        mininterval=1.0,
    )
    for s in stream:
        track_id = str(decode_json(s["json"]).get("track_id", s["__key__"]))
        if track_id not in want:
            continue
        x, sr = decode_audio(s["flac"])
        for c in want[track_id]:
            out[(c.track_id, c.offset_s)] = (crop_clip(x, sr, c.offset_s, c.duration_s), sr)
    missing = sorted(set(want) - {k[0] for k in out})
    if missing:
        raise InputError(str(corpus_mix_dir), f"source tracks not found in its train split: {missing[:5]}")
    return out


__all__ = ["crop_clip", "load_clips", "load_labels", "scan_corpus", "tracks_from_labels"]
