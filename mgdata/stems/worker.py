"""The per-track task of the stems builder: one multitrack track -> its stem-windows and ordered pairs.

:func:`cut_track` runs on the executor (a worker process or the parent) and is a pure
function of its :class:`TrackTask`: resample, reject non-finite audio, scale down a track
that peaks above full scale, plan windows, drop excluded and silent stems, pair the rest
except near-duplicates, and encode every paired stem-window to FLAC. The parent writes the
returned :class:`TrackOut` in input order (:mod:`mgdata.stems.build`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mgdata.audio import encode_flac, rms_db
from mgdata.labels.fields import TrackLabels
from mgdata.sources.multitrack import MultitrackTrack
from mgdata.stems.config import StemsConfig
from mgdata.stems.pairs import is_excluded, normalise_stem_name, ordered_pairs
from mgdata.stems.records import PairRecord, StemWindowRecord, pair_key, stem_window_key
from mgdata.stems.windows import Window, cut_window, plan_windows

# Headroom left when a track peaking above full scale is scaled down.
PEAK_TARGET = 0.99
# Chroma frame hop of the near-duplicate test (s): 10 frames/s is plenty to compare two parts' pitch classes.
DUP_HOP_S = 0.1


@dataclass
class TrackTask:
    """One track's work item (picklable)."""

    track: MultitrackTrack
    split: str
    labels: TrackLabels
    cfg: StemsConfig
    sample_prov: dict[str, Any]


@dataclass
class TrackOut:
    """What a worker returns for one track."""

    track_id: str
    split: str
    skip_reason: str | None = None
    skip_counter: str | None = None
    windows: int = 0
    rescaled: bool = False
    excluded: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    near_duplicate: int = 0
    unpaired: int = 0
    windows_without_pairs: int = 0
    stem_windows: list[tuple[StemWindowRecord, bytes]] = field(default_factory=list)
    pairs: list[PairRecord] = field(default_factory=list)

    def skip(self, reason: str, counter: str) -> TrackOut:
        """Mark the track skipped (``counter`` names the report count) and return self."""
        self.skip_reason, self.skip_counter = reason, counter
        return self


@functools.lru_cache(maxsize=8)
def _dup_encoder(sample_rate: int):
    # Imported here: the token encoders pull in librosa/scipy.
    from mgdata.tokens.frames import StftChromaEncoder

    n_fft = 4096 if sample_rate > 12000 else 2048
    n_oct = 7 if 32.70319566257483 * 2**7 < sample_rate / 2 else 6
    return StftChromaEncoder(
        sample_rate=sample_rate,
        hop_length=max(1, int(round(DUP_HOP_S * sample_rate))),
        n_fft=n_fft,
        n_octaves=n_oct,
        silence_db=-60.0,
        gate_length=n_fft,
    )


def chroma_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean frame-wise Pearson correlation of two chroma sequences over frames where both sound.

    Args:
        a: ``[n, 12]`` chroma frames (silent frames all zero).
        b: ``[n, 12]`` chroma frames of the other stem, same frame times.

    Returns:
        The mean correlation over frames where both vectors vary (a silent or flat
        frame has none); ``nan`` when there is no such frame.
    """
    n = min(len(a), len(b))
    a = np.asarray(a[:n], dtype=np.float64)
    b = np.asarray(b[:n], dtype=np.float64)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ok = (na > 1e-9) & (nb > 1e-9)
    if not ok.any():
        return float("nan")
    r = (a[ok] * b[ok]).sum(axis=1) / (na[ok] * nb[ok])
    return float(r.mean())


def _excluded(name: str, instrument: str, exclude: Sequence[str]) -> bool:
    return is_excluded(name, exclude) or is_excluded(instrument, exclude)


def cut_track(task: TrackTask) -> TrackOut:
    """Windows, silence, pairs and FLAC of one track (runs in a worker; deterministic)."""
    out = TrackOut(task.track.track_id, task.split)
    prepared = _prepare(task, out)
    if prepared is None:
        return out
    track, windows, kept, gain = prepared
    enc = _dup_encoder(track.sample_rate) if task.cfg.duplicate_corr < 1.0 else None
    for w in windows:
        segments = _audible_segments(track, kept, w, gain, task.cfg.silence_db, out)
        pairs = _window_pairs(segments, w, enc, task.cfg.duplicate_corr, out)
        _emit(task, track, w, segments, pairs, out)
    return out


def _prepare(task: TrackTask, out: TrackOut) -> tuple[MultitrackTrack, list[Window], list[str], float] | None:
    """The resampled track, its windows, the stems kept for pairing and the gain; ``None`` if skipped."""
    cfg = task.cfg
    for name, x in task.track.stems.items():
        if not np.all(np.isfinite(x)):
            out.skip(f"bad audio: stem {name!r} has NaN or inf samples", "tracks_bad_audio")
            return None
    track = task.track.resampled(cfg.sample_rate)
    windows = plan_windows(
        track.n_samples,
        track.sample_rate,
        window_s=cfg.window_s,
        overlap_s=cfg.overlap_s,
        keep_partial=cfg.keep_partial,
    )
    if not windows:
        out.skip(f"shorter than one window: {track.duration_s:.3f} s < {cfg.window_s} s", "tracks_too_short")
        return None
    kept = []
    for name in track.stems:
        if _excluded(name, track.instruments[name], cfg.exclude_stems):
            out.excluded.append(normalise_stem_name(name))
        else:
            kept.append(name)
    if len(kept) < 2:
        reason = f"too few stems to pair: {len(kept)} left after excluding unpitched/excluded types"
        out.skip(reason, "tracks_too_few_stems")
        return None
    peak = max(float(np.max(np.abs(track.stems[n]))) for n in kept)
    gain = PEAK_TARGET / peak if peak > 1.0 else 1.0
    out.rescaled = gain != 1.0
    out.windows = len(windows)
    return track, windows, kept, gain


def _audible_segments(
    track: MultitrackTrack, kept: list[str], w: Window, gain: float, silence_db: float, out: TrackOut
) -> dict[str, np.ndarray]:
    """The window's audio of every kept stem that is not silent (silent ones counted in ``out``)."""
    segments: dict[str, np.ndarray] = {}
    for name in kept:
        seg = cut_window(track.stems[name], w)
        if gain != 1.0:
            seg = (seg * np.float32(gain)).astype(np.float32)
        # Silence is judged on real audio only, not on the zero padding.
        if rms_db(seg[: w.valid]) < silence_db:
            out.silent.append(normalise_stem_name(name))
            continue
        segments[name] = seg
    return segments


def _window_pairs(
    segments: dict[str, np.ndarray], w: Window, enc: Any, duplicate_corr: float, out: TrackOut
) -> list[tuple[str, str]]:
    """Ordered pairs of the audible stems of one window, minus near-duplicates (counted in ``out``)."""
    active = list(segments)
    dup: set[frozenset[str]] = set()
    if enc is not None and len(active) >= 2:
        chroma = {n: enc.frames(segments[n][: w.valid]) for n in active}
        for i, a in enumerate(active):
            for b in active[i + 1 :]:
                r = chroma_correlation(chroma[a], chroma[b])
                if r == r and r > duplicate_corr:
                    dup.add(frozenset((a, b)))
    pairs = [(a, b) for a, b in ordered_pairs(active) if frozenset((a, b)) not in dup]
    out.near_duplicate += 2 * len(dup)
    if not pairs:
        out.windows_without_pairs += 1
    used = {n for p in pairs for n in p}
    out.unpaired += len(active) - len(used)
    return pairs


def _emit(
    task: TrackTask,
    track: MultitrackTrack,
    w: Window,
    segments: dict[str, np.ndarray],
    pairs: list[tuple[str, str]],
    out: TrackOut,
) -> None:
    """Append the records and FLAC of the window's paired stem-windows, and its pair rows, to ``out``."""
    sr, order, labels = track.sample_rate, list(track.stems), task.labels.to_dict()
    used = {n for p in pairs for n in p}
    keys: dict[str, str] = {}
    for name in segments:
        if name not in used:
            continue
        s_idx = order.index(name)
        keys[name] = stem_window_key(track.track_id, w.index, s_idx)
        rec = StemWindowRecord(
            key=keys[name],
            track_id=track.track_id,
            window_index=w.index,
            start_s=w.start_s(sr),
            length_s=w.length_s(sr),
            stem_index=s_idx,
            stem=name,
            instrument=track.instruments[name],
            split=task.split,
            **labels,
            source=track.source,
            sample_rate=sr,
            provenance={**task.sample_prov, "licence": track.licence},
        )
        out.stem_windows.append((rec, encode_flac(segments[name], sr)))
    for a, b in pairs:
        out.pairs.append(
            PairRecord(
                pair_key=pair_key(keys[a], keys[b], track.track_id, w.index, order.index(a), order.index(b)),
                a_key=keys[a],
                b_key=keys[b],
                track_id=track.track_id,
                window_index=w.index,
                stem_a=a,
                stem_b=b,
                split=task.split,
            )
        )


__all__ = ["DUP_HOP_S", "PEAK_TARGET", "TrackOut", "TrackTask", "chroma_correlation", "cut_track"]
