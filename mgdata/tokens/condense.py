"""The condenser: encoder frames -> one vector per uniform time segment (their mean).

The token pipeline is encoder -> condenser -> k-means. Encoders emit frames at
their own rate (e.g. 100 frames/s); a token should stand for a fixed duration
(``segment_s``, 0.25-0.5 s in the paper), so the condenser averages the frames
whose time falls in each segment ``[j * segment_s, (j + 1) * segment_s)``.

Frame ``i`` sits at time ``i / frame_rate`` (librosa's centred frames). When
``segment_s * frame_rate`` is not an integer, segments hold ``floor`` or ``ceil``
of it frames; the assignment is by time, so it does not drift.

Last partial segment: **dropped** by default. A segment is complete when the
audio covers its whole span: ``(j + 1) * segment_s <= duration_s`` when the
caller knows the audio's duration (the builder does), else when the frames do
(``n_frames / frame_rate``). Going by the audio matters for model encoders whose
frames stop short of the end (wav2vec2 yields 149 frames at 50/s for 3 s of
audio: its last 25 ms window does not fit), which would otherwise lose a segment.
A shorter tail would average fewer frames, stand for less audio than every other
token and, in a chorale window, usually holds a fade or a release; keeping it
(``keep_partial=True``) is allowed for callers who need one token per started
segment.
"""

from __future__ import annotations

import math

import numpy as np

# Guards float rounding at segment boundaries (e.g. 35 / (100 * 0.35) = 0.99999...).
_EPS = 1e-9


def n_segments(
    n_frames: int,
    frame_rate: float,
    segment_s: float,
    *,
    keep_partial: bool = False,
    duration_s: float | None = None,
) -> int:
    """Number of segments the condenser emits.

    Args:
        n_frames: Frames in the sequence.
        frame_rate: Frames per second.
        segment_s: Segment length in seconds.
        keep_partial: Count a trailing partial segment.
        duration_s: Audio duration; ``None`` = the span of the frames.

    Returns:
        The number of segments (0 when the audio is shorter than one segment
        and ``keep_partial`` is false).
    """
    _check(frame_rate, segment_s)
    if n_frames <= 0:
        return 0
    if duration_s is None:
        per_segment = frame_rate * segment_s
        if keep_partial:
            return int(math.floor((n_frames - 1) / per_segment + _EPS)) + 1
        return int(math.floor(n_frames / per_segment + _EPS))
    if keep_partial:
        return max(0, int(math.ceil(duration_s / segment_s - _EPS)))
    return max(0, int(math.floor(duration_s / segment_s + _EPS)))


def segment_index(n_frames: int, frame_rate: float, segment_s: float) -> np.ndarray:
    """Segment index of every frame (``floor(time / segment_s)``), int64 ``[n_frames]``."""
    _check(frame_rate, segment_s)
    per_segment = frame_rate * segment_s
    return np.floor(np.arange(n_frames) / per_segment + _EPS).astype(np.int64)


def condense(
    frames: np.ndarray,
    frame_rate: float,
    segment_s: float,
    *,
    keep_partial: bool = False,
    duration_s: float | None = None,
) -> np.ndarray:
    """Mean of the frames in each uniform segment.

    Args:
        frames: ``[n_frames, dim]`` encoder frames (time first).
        frame_rate: Frames per second of ``frames``.
        segment_s: Segment length in seconds; must hold at least one frame
            (``segment_s * frame_rate >= 1``).
        keep_partial: Keep the trailing partial segment (see module docstring).
        duration_s: Duration of the audio the frames came from; decides which
            segments are complete (``None``: the frames' span).

    Returns:
        float32 ``[n_segments, dim]``; ``[0, dim]`` when the audio is shorter
        than one segment (and ``keep_partial`` is false).

    Raises:
        ValueError: ``frames`` is not 2-D or not finite, the rates are invalid,
            or a complete segment inside ``duration_s`` has no frame (a partial
            tail without frames is dropped).
    """
    frames = np.asarray(frames)
    if frames.ndim != 2:
        raise ValueError(f"frames must be [n_frames, dim], got shape {frames.shape}")
    if frames.size and not np.all(np.isfinite(frames)):
        raise ValueError("frames contain NaN or inf")
    n = n_segments(len(frames), frame_rate, segment_s, keep_partial=keep_partial, duration_s=duration_s)
    dim = frames.shape[1]
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32)
    idx = segment_index(len(frames), frame_rate, segment_s)
    keep = idx < n
    idx, x = idx[keep], frames[keep].astype(np.float64)
    # Sum per segment then divide: exact means, no Python loop over segments.
    sums = np.zeros((n, dim), dtype=np.float64)
    np.add.at(sums, idx, x)
    counts = np.bincount(idx, minlength=n).astype(np.float64)
    if keep_partial and counts[-1] == 0 and (duration_s is not None and n * segment_s > duration_s + _EPS):
        # a partial tail too short to hold a frame: nothing to average, drop it
        n, sums, counts = n - 1, sums[:-1], counts[:-1]
        if n == 0:
            return np.zeros((0, dim), dtype=np.float32)
    if not counts.all():
        raise ValueError(
            f"segment {int(np.argmin(counts))} has no frame: {len(frames)} frames at {frame_rate:g}/s do not "
            f"cover {duration_s} s of audio"
        )
    return (sums / counts[:, None]).astype(np.float32)


def _check(frame_rate: float, segment_s: float) -> None:
    if not (frame_rate > 0 and math.isfinite(frame_rate)):
        raise ValueError(f"frame_rate must be > 0, got {frame_rate}")
    if not (segment_s > 0 and math.isfinite(segment_s)):
        raise ValueError(f"segment_s must be > 0, got {segment_s}")
    if segment_s * frame_rate < 1 - _EPS:
        raise ValueError(
            f"segment_s={segment_s} s holds less than one frame at {frame_rate:g} frames/s "
            f"(use segment_s >= {1 / frame_rate:g})"
        )
