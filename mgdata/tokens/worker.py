"""The tokens worker: segment vectors of every stem-window of one track (runs on the executor).

**Each stem is encoded once per track**: a stem's consecutive windows are exact cuts of one
signal (same samples, same FLAC quantisation), so :func:`encode_track` stitches each run of
overlapping/abutting windows back into the stem's signal, encodes it once (frames at the
encoder's rate) and cuts every window's frames out of it in frame space (window start x
frame rate), then averages them per segment (:func:`~mgdata.tokens.condense.condense`).
A run breaks where a stem-window is absent (silent, or unpaired).

Everything here is picklable and module-level, so the process and Ray backends can run it;
a bad window becomes a skip reason in :attr:`TrackOut.failures`, never an exception.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mgdata.audio import decode_audio
from mgdata.errors import InputError
from mgdata.stems.records import StemWindowRecord
from mgdata.tokens.condense import condense
from mgdata.tokens.config import TokensConfig
from mgdata.tokens.frames import FrameCache, encode_audio, make_encoder


@dataclass
class StemWindow:
    """One stem-window as read from the stems artifact (picklable task item).

    Attributes:
        record: Its json.
        shard_split: The split of the shard it was read from.
        flac: Its audio (emptied in the parent once the task is sent).
    """

    record: StemWindowRecord
    shard_split: str
    flac: bytes


@dataclass
class TrackTask:
    """The stem-windows of one track and how to encode them.

    Attributes:
        track_id: The track.
        windows: Its stem-windows, in input order.
        cfg: Section ``tokens``.
        encoder_name: Encoder name.
        segment_s: Seconds per token.
        encode: The frame-encoding call (module-level, so it pickles); the builder passes its
            own reference so a wrapper installed on :mod:`mgdata.tokens.build` sees the work.
    """

    track_id: str
    windows: list[StemWindow]
    cfg: TokensConfig
    encoder_name: str
    segment_s: float
    encode: Callable[..., np.ndarray] = encode_audio


@dataclass
class TrackOut:
    """What one track task returns.

    Attributes:
        vectors: Stem-window key -> segment vectors ``[n_segments, dim]``.
        failures: Stem-window key -> skip reason.
        runs_encoded: Runs encoded in this task.
        runs_cached: Runs read from the frame cache.
    """

    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    runs_encoded: int = 0
    runs_cached: int = 0


_Item = tuple[StemWindow, np.ndarray, int]  # window, decoded audio, start sample in the stem
_ENCODERS: dict[str, Any] = {}


def _encoder(cfg: TokensConfig, name: str):
    """The encoder of a worker, built once per process and configuration (filterbanks, models)."""
    ident = json.dumps([name, cfg.settings()], sort_keys=True, default=str)
    if ident not in _ENCODERS:
        _ENCODERS[ident] = make_encoder(cfg, name)
    return _ENCODERS[ident]


def clean_reason(text: str) -> str:
    """``text`` with object addresses replaced, so skip reasons (and so the reports) stay deterministic."""
    return re.sub(r"<[^>]* at 0x[0-9a-fA-F]+>", "audio bytes", text)


def encode_track(task: TrackTask) -> TrackOut:
    """Segment vectors of every stem-window of one track (each stem encoded once per run of windows)."""
    out = TrackOut()
    enc = _encoder(task.cfg, task.encoder_name)
    cache = FrameCache(task.cfg.frames_cache, enc.describe()) if task.cfg.frames_cache else None
    by_stem = _decode(task.windows, out)
    for stem_index in sorted(by_stem):
        for run in _runs(by_stem[stem_index]):
            _encode_run(run, enc, cache, task, out)
    return out


def _decode(windows: list[StemWindow], out: TrackOut) -> dict[int, list[_Item]]:
    """Decoded windows per stem index; an undecodable window or a rate mismatch becomes a failure."""
    by_stem: dict[int, list[_Item]] = {}
    for w in windows:
        rec = w.record
        try:
            audio, sr = decode_audio(w.flac)
        except Exception as exc:  # noqa: BLE001 - libsndfile raises several types on bad bytes
            out.failures[rec.key] = f"bad stem audio: {rec.key}: undecodable audio ({clean_reason(str(exc))})"
            continue
        if sr != rec.sample_rate:
            out.failures[rec.key] = (
                f"bad stem audio: {rec.key}: sample rate mismatch: json declares "
                f"{rec.sample_rate} Hz, the flac is {sr} Hz"
            )
            continue
        start = int(round(rec.start_s * sr))
        by_stem.setdefault(rec.stem_index, []).append((w, audio, start))
    return by_stem


def _runs(items: list[_Item]) -> list[list[_Item]]:
    """One stem's windows in time order, grouped into runs of overlapping or abutting windows."""
    runs: list[list[_Item]] = []
    end = -1
    for it in sorted(items, key=lambda it: it[2]):
        if runs and it[2] <= end:
            runs[-1].append(it)
        else:
            runs.append([it])
        end = max(end, it[2] + len(it[1]))
    return runs


def _encode_run(run: list[_Item], enc, cache: FrameCache | None, task: TrackTask, out: TrackOut) -> None:
    """Stitch one run of windows, encode it once and condense every window's frames."""
    sr = run[0][0].record.sample_rate
    run_start = run[0][2]
    frames = _run_frames(run, enc, cache, task.encode, out)
    if frames is None:
        return
    rate = enc.frame_rate
    for w, audio, start in run:
        rec = w.record
        f0 = int(round((start - run_start) / sr * rate))
        duration_s = len(audio) / sr
        f1 = f0 + int(np.ceil(duration_s * rate - 1e-9))
        try:
            vecs = condense(
                frames[f0:f1], rate, task.segment_s, keep_partial=task.cfg.keep_partial, duration_s=duration_s
            )
        except ValueError as exc:
            out.failures[rec.key] = f"bad stem audio: {rec.key}: bad encoder frames: {exc}"
            continue
        if len(vecs) == 0:
            out.failures[rec.key] = f"too short: {rec.key}: {duration_s:.3f} s < one segment of {task.segment_s} s"
            continue
        out.vectors[rec.key] = vecs


def _run_frames(
    run: list[_Item], enc, cache: FrameCache | None, encode: Callable[..., np.ndarray], out: TrackOut
) -> np.ndarray | None:
    """The encoder frames of one run (from the cache when there), or ``None`` after recording its failures."""
    sr = run[0][0].record.sample_rate
    run_start = run[0][2]
    n = max(start + len(audio) for _, audio, start in run) - run_start
    signal = np.zeros(n, dtype=np.float32)
    for _, audio, start in run:
        # Overlaps hold identical samples (exact cuts of one signal), so the order of writes does not matter.
        signal[start - run_start : start - run_start + len(audio)] = audio
    keys = [w.record.key for w, _, _ in run]
    where = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"
    ident = b""
    if cache is not None:
        ident = b"".join(
            w.record.key.encode() + b"\0" + str(start).encode() + b"\0" + hashlib.sha256(w.flac).digest()
            for w, _, start in run
        )
        frames = cache.get(ident)
        if frames is not None:
            out.runs_cached += 1
            return frames
    try:
        frames = encode(enc, signal, sr, where=where)
    except InputError as exc:
        for key in keys:
            out.failures[key] = f"bad stem audio: {exc.where}: {exc.message}"
        return None
    out.runs_encoded += 1
    if cache is not None:
        cache.put(ident, frames)
    return frames


__all__ = ["StemWindow", "TrackOut", "TrackTask", "clean_reason", "encode_track"]
