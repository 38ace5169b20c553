"""Window arithmetic for stem-pair extraction.

A track of ``n_samples`` is cut into windows of ``window_s`` seconds that start
every ``hop_s = window_s - overlap_s`` seconds (15 s windows with 5 s overlap ->
starts at 0, 10, 20, ... s). Windows are computed once per track from its length
and applied to every stem, so the stems of a window are sample-aligned.

Edge rules (documented in README / params.yaml):

* Only windows that fit entirely inside the track are "full" windows.
* A track shorter than one window gives **zero** windows, whatever
  ``keep_partial`` says (the caller counts it).
* After the last full window, a *partial* window (start = last start + hop) exists
  only if it holds audio that no full window covers, i.e. when the track does not
  end exactly at ``window + k * hop``. With ``keep_partial=False`` (default) it is
  dropped; with ``keep_partial=True`` it is kept and zero-padded to the full window
  length (``Window.valid`` tells how many samples are real audio).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Window:
    """One analysis window of a track, in samples.

    Attributes:
        index: Window number within the track (0-based, in time order).
        start: First sample (inclusive).
        length: Window length in samples (the same for every window of a plan).
        valid: Samples of real audio; ``< length`` only for a padded partial window.
    """

    index: int
    start: int
    length: int
    valid: int

    def __post_init__(self) -> None:
        if self.index < 0 or self.start < 0:
            raise ValueError(f"window index/start must be >= 0, got {self.index}/{self.start}")
        if self.length <= 0 or not 0 < self.valid <= self.length:
            raise ValueError(f"window needs 0 < valid <= length, got valid={self.valid} length={self.length}")

    @property
    def partial(self) -> bool:
        """True if the window runs past the end of the track (zero-padded)."""
        return self.valid < self.length

    def start_s(self, sample_rate: int) -> float:
        """Start time in seconds at ``sample_rate``."""
        return self.start / sample_rate

    def length_s(self, sample_rate: int) -> float:
        """Window length in seconds at ``sample_rate``."""
        return self.length / sample_rate

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Window:
        """Inverse of :meth:`to_dict`."""
        return cls(int(data["index"]), int(data["start"]), int(data["length"]), int(data["valid"]))


def window_samples(window_s: float, overlap_s: float, sample_rate: int) -> tuple[int, int]:
    """Window and hop lengths in samples.

    Args:
        window_s: Window length in seconds (> 0).
        overlap_s: Overlap between consecutive windows in seconds (0 <= overlap < window).
        sample_rate: Sample rate in Hz.

    Returns:
        ``(window_len, hop_len)`` in samples, both >= 1.

    Raises:
        ValueError: If the lengths are out of range.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    if window_s <= 0 or not 0 <= overlap_s < window_s:
        raise ValueError(f"need window_s > 0 and 0 <= overlap_s < window_s, got {window_s}/{overlap_s}")
    # Round, don't truncate: 15 s * 22050 Hz must be exactly 330750 samples even
    # when the float product is 330749.99999.
    window_len = int(round(window_s * sample_rate))
    hop_len = int(round((window_s - overlap_s) * sample_rate))
    if window_len < 1 or hop_len < 1:
        raise ValueError(f"window {window_s} s / hop {window_s - overlap_s} s is < 1 sample at {sample_rate} Hz")
    return window_len, hop_len


def plan_windows(
    n_samples: int,
    sample_rate: int,
    *,
    window_s: float,
    overlap_s: float,
    keep_partial: bool = False,
) -> list[Window]:
    """Windows of a track of ``n_samples`` samples (see the module docstring for edge rules).

    Args:
        n_samples: Track length in samples.
        sample_rate: Sample rate in Hz.
        window_s: Window length in seconds.
        overlap_s: Overlap in seconds; the hop is ``window_s - overlap_s``.
        keep_partial: Keep (zero-padded) the last window that runs past the end.

    Returns:
        Windows in time order; empty if the track is shorter than one window.

    Example:
        30 s at 22050 Hz with 15/5 -> starts 0 s and 10 s (plus a padded 20 s
        window if ``keep_partial``); 25 s -> 0 s and 10 s, and no partial window
        because 10-25 s already reaches the end.
    """
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    window_len, hop_len = window_samples(window_s, overlap_s, sample_rate)
    if n_samples < window_len:
        return []
    n_full = (n_samples - window_len) // hop_len + 1
    windows = [Window(i, i * hop_len, window_len, window_len) for i in range(n_full)]
    last_end = (n_full - 1) * hop_len + window_len
    if keep_partial and last_end < n_samples:
        start = n_full * hop_len
        windows.append(Window(n_full, start, window_len, n_samples - start))
    return windows


def cut_window(x: np.ndarray, window: Window) -> np.ndarray:
    """The samples of ``window`` from a mono signal, zero-padded if partial.

    Args:
        x: Mono float signal, shape ``[n]``.
        window: A window planned for a track of at least ``window.start + window.valid`` samples.

    Returns:
        float32 array of exactly ``window.length`` samples (a copy).
    """
    if x.ndim != 1:
        raise ValueError(f"expected a mono signal [n], got shape {x.shape}")
    if window.start + window.valid > x.shape[0]:
        raise ValueError(f"window {window.index} ends at {window.start + window.valid} > signal length {x.shape[0]}")
    out = np.zeros(window.length, dtype=np.float32)
    out[: window.valid] = x[window.start : window.start + window.valid]
    return out
