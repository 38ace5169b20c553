"""The embedder interface, its registry, and windowing/aggregation shared by all embedders.

An embedder turns mono float32 audio at its own ``sample_rate`` into frame-level
features ``[n_frames, dim]``. :func:`embed_clip` cuts a clip into fixed windows
(``window_s``, ``hop_s``), embeds all windows (batched when the embedder has
``frames_batch``) and returns every frame with its time; :func:`aggregate`
reduces that to one vector per clip (``mean``) or keeps the frames (``none``).
The token builder reuses :func:`get_embedder` + :func:`embed_clip` for its encoder
frames.

Registry entries are ``"module:Class"`` strings imported on first use, so a
``logmel`` run never imports torch/transformers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from mgdata.embed.config import EmbedConfig
from mgdata.embed.registry import EMBEDDERS
from mgdata.errors import InputError, ParamsError


@runtime_checkable
class Embedder(Protocol):
    """What every embedder provides.

    Attributes:
        sample_rate: The rate ``frames`` expects its input at (Hz).
        dim: Feature dimension of a frame.
        frame_rate: Frames per second of ``frames`` output when frames are evenly
            spaced in time (wav2vec2-like encoders, raw log-mel); ``None`` when a call
            yields one vector per input (log-mel statistics, pooled outputs) or
            tokens that are not time frames (AST/CLAP patches).
    """

    sample_rate: int
    dim: int
    frame_rate: float | None

    # Optional: ``native_window_s`` (float) marks an embedder that cuts a clip into its own native
    # patches (``musicnn``: 3 s); :func:`embed_clip` then hands it the whole clip as one window
    # (zero-padded to ``native_window_s`` when shorter) instead of ``window_s``/``hop_s`` windows, and
    # takes each frame's time from its ``frame_times(n_samples)`` (seconds) when it has one.

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """Frame-level features of mono float32 audio ``[n]``: float32 ``[n_frames, dim]``."""

    def describe(self) -> dict[str, Any]:
        """JSON-safe ``{"id", "settings", "versions", "dim", "sample_rate", ...}`` (fingerprinted)."""


def get_embedder(name: str, cfg: EmbedConfig | Mapping[str, Any] | None = None) -> Embedder:
    """Build the embedder registered as ``name``.

    Args:
        name: A key of :data:`EMBEDDERS`.
        cfg: The ``embed`` section (each embedder reads its own sub-section), or a
            plain mapping of that embedder's own settings (the keys of
            ``embed.logmel`` / ``embed.hf``, e.g. ``{"model": "...", "layers": [6]}``,
            plus optional ``device``), as other stages pass them; ``None`` = defaults.

    Raises:
        ParamsError: Unknown name, or a bad key/value in a settings mapping.
        DependencyError: The embedder's model or package is missing (``hf``).
    """
    from mgdata.config import from_dict

    EMBEDDERS.check(name)
    if cfg is None:
        cfg = EmbedConfig()
    elif not isinstance(cfg, EmbedConfig):
        settings = dict(cfg)
        section: dict[str, Any] = {name: settings}
        if "device" in settings:
            section["device"] = settings.pop("device")
        cfg = from_dict(EmbedConfig, section, "embedder_params")
    return EMBEDDERS.load(name).from_config(cfg)


class ShortClipError(InputError):
    """A clip is shorter than one analysis window and ``short_clip`` is ``skip``."""


@dataclass
class ClipFrames:
    """Frames of one clip.

    Attributes:
        frames: float32 ``[n_frames, dim]``, windows in time order.
        times_s: Centre of each frame in seconds from the clip start, ``[n_frames]``.
        window_index: Window each frame came from, ``[n_frames]``.
        n_windows: Number of analysis windows.
        padded: The clip was shorter than a window and was zero-padded.
    """

    frames: np.ndarray
    times_s: np.ndarray
    window_index: np.ndarray
    n_windows: int
    padded: bool = False


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Start offsets of fixed-length windows covering ``n_samples``.

    Windows start every ``hop`` samples; when the last regular window stops short
    of the end, one more window is aligned to the clip end so every sample is
    covered and all windows have the same length (which keeps them batchable).
    Returns ``[]`` when the clip is shorter than one window.
    """
    if window <= 0 or hop <= 0:
        raise ValueError("window and hop must be positive")
    if n_samples < window:
        return []
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def check_finite(audio: np.ndarray, key: str) -> None:
    """Raise InputError naming ``key`` if ``audio`` has NaN or infinite samples."""
    finite = np.isfinite(audio)
    if not finite.all():
        bad = int(audio.size - np.count_nonzero(finite))
        raise InputError(key, f"audio contains {bad} NaN or infinite samples")


def embed_clip(
    embedder: Embedder,
    audio: np.ndarray,
    sample_rate: int,
    *,
    window_s: float,
    hop_s: float,
    short_clip: Literal["pad", "skip"] = "pad",
    key: str = "<audio>",
) -> ClipFrames:
    """Window a clip and embed every window.

    Args:
        embedder: Any :class:`Embedder`.
        audio: Mono float audio ``[n]`` at ``sample_rate``.
        sample_rate: Rate of ``audio`` (resampled to ``embedder.sample_rate`` with soxr).
        window_s: Window length in seconds (an embedder with ``native_window_s`` gets the
            whole clip as one window instead, padded to ``native_window_s`` when shorter).
        hop_s: Hop in seconds (unused with ``native_window_s``).
        short_clip: ``pad`` zero-pads a clip shorter than one window; ``skip`` raises
            :class:`ShortClipError`.
        key: Sample key or file named in errors.

    Returns:
        The clip's frames, their times and window indices.

    Raises:
        InputError: NaN/inf audio, empty audio, or not mono (names ``key``).
        ShortClipError: Shorter than one window with ``short_clip="skip"``.
    """
    from mgdata.audio import resample

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise InputError(key, f"expected mono audio [n], got shape {audio.shape}")
    if audio.size == 0:
        raise InputError(key, "audio is empty")
    check_finite(audio, key)
    sr = embedder.sample_rate
    x = resample(audio, sample_rate, sr) if sample_rate != sr else audio
    native = getattr(embedder, "native_window_s", None)
    if native:  # the embedder patches the whole clip itself
        window_s = float(native)
    window = max(1, int(round(window_s * sr)))
    hop = max(1, int(round(hop_s * sr)))
    padded = False
    if x.size < window:
        if short_clip == "skip":
            raise ShortClipError(key, f"clip is {x.size / sr:.3f} s, shorter than one {window_s} s window")
        x = np.pad(x, (0, window - x.size))
        padded = True
    if native:
        window = x.size
    starts = [0] if native else window_starts(x.size, window, hop)
    windows = np.stack([x[s : s + window] for s in starts])
    batch = getattr(embedder, "frames_batch", None)
    per_window = batch(windows) if batch is not None else [embedder.frames(w) for w in windows]
    frames, times, index = [], [], []
    for w, (start, f) in enumerate(zip(starts, per_window)):
        f = np.asarray(f, dtype=np.float32)
        if f.ndim != 2 or f.shape[0] == 0:
            raise InputError(key, f"embedder returned frames of shape {f.shape} for window {w}")
        n = f.shape[0]
        frames.append(f)
        times.append(_frame_times(embedder, start, window, n, sr))
        index.append(np.full(n, w, dtype=np.int32))
    return ClipFrames(
        frames=np.concatenate(frames).astype(np.float32, copy=False),
        times_s=np.concatenate(times),
        window_index=np.concatenate(index),
        n_windows=len(starts),
        padded=padded,
    )


def _frame_times(embedder: Embedder, start: int, window: int, n: int, sr: int) -> np.ndarray:
    """Centre times (clip seconds) of the ``n`` frames of the window at ``start``: the embedder's own
    (``frame_times``, native-window embedders) or spread evenly over the window."""
    own = getattr(embedder, "frame_times", None) if getattr(embedder, "native_window_s", None) else None
    if own is not None:
        t = np.asarray(own(window), dtype=np.float64)
        if t.shape == (n,):
            return start / sr + t
    return (start + (np.arange(n) + 0.5) * window / n) / sr


def aggregate(frames: np.ndarray, how: Literal["mean", "none"]) -> np.ndarray:
    """Reduce frames ``[n, dim]``: ``mean`` -> ``[dim]`` (mean over all frames), ``none`` -> unchanged."""
    if how == "mean":
        return frames.mean(axis=0, dtype=np.float64).astype(np.float32)
    if how == "none":
        return frames
    raise ParamsError("embed.aggregation", f"expected 'mean' or 'none', got {how!r}")


def clip_spans(
    n_samples: int, sample_rate: int, clip_s: float, clip_hop_s: float | None = None
) -> list[tuple[int, int]]:
    """Sample spans ``(start, end)`` of the clips a recording is cut into before embedding.

    ``clip_s == 0``: one span, the whole recording. Otherwise clips of ``clip_s`` seconds
    start every ``clip_hop_s`` (default ``clip_s``); a trailing remainder shorter than a
    clip is dropped (a shorter clip would stand for less audio than the others), and a
    recording shorter than one clip is one clip, the whole recording.
    """
    if n_samples <= 0:
        raise ValueError("recording is empty")
    if clip_s < 0 or (clip_hop_s is not None and clip_hop_s <= 0):
        raise ValueError("clip_s must be >= 0 and clip_hop_s > 0")
    if clip_s == 0:
        return [(0, n_samples)]
    size = max(1, int(round(clip_s * sample_rate)))
    hop = max(1, int(round((clip_hop_s or clip_s) * sample_rate)))
    if n_samples <= size:
        return [(0, n_samples)]
    return [(s, s + size) for s in range(0, n_samples - size + 1, hop)]


@dataclass
class ClipVectors:
    """One mean vector per clip of a recording (:func:`embed_clips`).

    Attributes:
        vectors: float32 ``[n_clips, dim]``.
        starts_s: Start of each clip in seconds from the recording start.
        n_windows: Analysis windows over all clips.
        n_frames: Embedder frames over all clips.
        padded: Some clip was shorter than a window and was zero-padded.
    """

    vectors: np.ndarray
    starts_s: list[float]
    n_windows: int
    n_frames: int
    padded: bool


def embed_clips(
    embedder: Embedder,
    audio: np.ndarray,
    sample_rate: int,
    *,
    clip_s: float,
    clip_hop_s: float | None,
    window_s: float,
    hop_s: float,
    short_clip: Literal["pad", "skip"] = "pad",
    key: str = "<audio>",
) -> ClipVectors:
    """Cut a recording into clips (:func:`clip_spans`) and embed each into its mean frame vector.

    Every clip is windowed and embedded on its own (:func:`embed_clip`), exactly as a
    generated clip of the same length is, so real and generated rows are comparable.

    Raises:
        InputError: Empty, NaN/inf or non-mono audio (names ``key``).
        ShortClipError: A clip shorter than one window with ``short_clip="skip"``.
    """
    audio = np.asarray(audio)
    if audio.ndim != 1 or audio.size == 0:
        raise InputError(key, f"expected non-empty mono audio [n], got shape {audio.shape}")
    vectors, starts, n_windows, n_frames, padded = [], [], 0, 0, False
    for start, end in clip_spans(audio.size, sample_rate, clip_s, clip_hop_s):
        clip = embed_clip(
            embedder, audio[start:end], sample_rate, window_s=window_s, hop_s=hop_s, short_clip=short_clip, key=key
        )
        vectors.append(aggregate(clip.frames, "mean"))
        starts.append(round(start / sample_rate, 6))
        n_windows += clip.n_windows
        n_frames += int(clip.frames.shape[0])
        padded |= clip.padded
    return ClipVectors(np.stack(vectors), starts, n_windows, n_frames, padded)
