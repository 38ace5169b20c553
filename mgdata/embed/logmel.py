"""``logmel``: statistics of log-mel frames, a DSP embedding that needs no weights.

The computation is librosa's: ``librosa.feature.melspectrogram`` (centred STFT with
zero padding, periodic Hann window, power 2, librosa's Slaney mel filterbank) and
``power_to_db`` with a fixed reference (``ref=1.0``, no ``top_db``) so absolute
level survives: a -6 dB gain deformation moves the embedding, as it should for a
robustness study. With ``stats`` (the default), each analysis window yields one
frame: the mean and the standard deviation per band (``dim = 2 * n_mels``);
without, the raw log-mel frames are returned.

Fast path (the same numbers up to the last bit, less work): :meth:`LogMelEmbedder.frames_batch` receives
the overlapping analysis windows of a clip (2 s windows every 1 s by default, so
every STFT frame would be computed twice). Consecutive windows whose samples
overlap by a known shift (``hop_s`` from the ``embed`` section, checked against the
samples themselves, so sharing is decided by content and can never mix up two
different signals) form a chain; the STFT frames that lie wholly inside a window
are computed once per chain, and only the few frames that touch a window's zero
padding are computed per window. The filterbank and the window function are built
once per embedder, and mel projection and dB conversion run once over the unique
frames. Each frame goes through the same float operations as in librosa (float32
samples times the float64 window, float64 real FFT rounded to complex64, ``|.|**2``,
float32 mel projection, float32 ``10 * log10``), so the frames are equal to
librosa's up to the summation order of the mel matrix product (BLAS blocking):
see ``tests/test_embed_logmel.py`` for the measured difference (1 ulp, < 4e-6 dB) and
its bound; per-window statistics are reduced over the same memory layout as before.
That product runs on one BLAS thread, so the output depends on the input only, not
on the thread count of the process (OpenBLAS sums differently per thread count).
"""

from __future__ import annotations

import functools
from typing import Any

import librosa
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mgdata.config import to_dict
from mgdata.embed.config import EmbedConfig, LogMelConfig

_AMIN = 1e-10  # power floor before log: -100 dB, far below 16-bit quantisation noise
_FFT_BLOCK = 128  # frames per FFT call: float64 temporaries of 1 MB (n_fft 1024) stay in cache

#: Bumped when the computed numbers may change (part of ``describe()``, hence of fingerprints).
#: 2: frames shared between overlapping windows, one mel product over the unique frames
#: (differs from 1, per-window ``librosa.feature.melspectrogram``, by float rounding only).
ALGORITHM_VERSION = 2


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, built once per process (its ``limit`` is then cheap)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class LogMelEmbedder:
    """Log-mel statistics per window (or raw log-mel frames).

    Args:
        cfg: The ``embed.logmel`` settings.
        window_hop: Expected shift in samples (at ``sample_rate``) between consecutive
            windows passed to :meth:`frames_batch`; windows that really overlap by it
            share their STFT frames. ``None``: no sharing (same output, more work).
    """

    def __init__(self, cfg: LogMelConfig | None = None, *, window_hop: int | None = None):
        self.cfg = cfg or LogMelConfig()
        self.sample_rate = self.cfg.sample_rate
        self.dim = 2 * self.cfg.n_mels if self.cfg.stats else self.cfg.n_mels
        # Raw log-mel frames are evenly spaced (one per STFT hop); statistics give one frame per call.
        self.frame_rate = None if self.cfg.stats else self.cfg.sample_rate / self.cfg.hop_length
        self.window_hop = window_hop
        c = self.cfg
        # What librosa.feature.melspectrogram builds on every call, built once.
        self._fft_window = librosa.filters.get_window("hann", c.n_fft, fftbins=True)  # float64, as in librosa
        self._mel = librosa.filters.mel(
            sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin_hz, fmax=c.fmax_hz
        )  # float32 [n_mels, n_fft // 2 + 1]

    @classmethod
    def from_config(cls, cfg: EmbedConfig) -> LogMelEmbedder:
        """Build from the ``embed`` section (its ``hop_s`` tells which windows may share frames)."""
        return cls(cfg.logmel, window_hop=max(1, int(round(cfg.hop_s * cfg.logmel.sample_rate))))

    # ------------------------------------------------------------------ frames of windows

    def _frame_layout(self, n: int) -> tuple[int, int, int]:
        """Frames per ``n``-sample window and the range ``[j0, j1)`` of frames that touch no padding."""
        c, pad = self.cfg, self.cfg.n_fft // 2
        n_frames = 1 + n // c.hop_length  # librosa's count for a centred STFT
        j0 = -(-pad // c.hop_length)  # first frame starting at or after sample 0
        j1 = (n - c.n_fft + pad) // c.hop_length + 1 if n >= c.n_fft - pad else 0  # first frame past the end
        return n_frames, j0, max(j0, min(j1, n_frames))

    def _chains(self, windows: np.ndarray) -> list[tuple[int, int]]:
        """``[start, stop)`` runs of consecutive windows that each continue the previous by ``window_hop``."""
        b, n = windows.shape
        d = self.window_hop
        share = d is not None and 0 < d < n and d % self.cfg.hop_length == 0
        runs, start = [], 0
        for i in range(1, b):
            if not (share and np.array_equal(windows[i, : n - d], windows[i - 1, d:])):
                runs.append((start, i))
                start = i
        runs.append((start, b))
        return runs

    def _log_mel_frames(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log-mel of the distinct STFT frames of equal-length windows ``[B, n]``.

        Returns:
            ``(log_mel, index)``: float32 ``[n_mels, frames]`` in dB, and int ``[B, T]``: the column of
            frame ``t`` of window ``b``.
        """
        c, pad, hop = self.cfg, self.cfg.n_fft // 2, self.cfg.hop_length
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        b, n = windows.shape
        n_frames, j0, j1 = self._frame_layout(n)
        # Frames touching the padding (j < j0 or j >= j1) as librosa cuts them: from the window zero-padded by
        # n_fft // 2 on both sides; only the padded ends are built when there are inner frames.
        if j1 > j0:
            head = np.pad(windows[:, : (j0 - 1) * hop - pad + c.n_fft], ((0, 0), (pad, 0)))
            tail, tail_first = np.pad(windows[:, j1 * hop - pad :], ((0, 0), (0, pad))), 0  # starts at frame j1
        else:  # a window too short for any frame without padding: all frames from the padded window
            head = tail = np.pad(windows, ((0, 0), (pad, pad)))
            j0 = j1 = tail_first = min(j0, n_frames)
        head = sliding_window_view(head, c.n_fft, axis=-1)[:, ::hop][:, :j0]
        tail = sliding_window_view(tail, c.n_fft, axis=-1)[:, ::hop][:, tail_first : tail_first + n_frames - j1]
        edges = np.concatenate([head, tail], axis=1).reshape(-1, c.n_fft)  # [B * n_edge, n_fft], window-major
        n_edge = n_frames - (j1 - j0)
        parts = [edges]  # unique frames as [rows, n_fft] arrays (views where possible), in row order
        index = np.empty((b, n_frames), dtype=np.int64)  # row of each (window, frame) in the unique frames
        rows = np.arange(b * n_edge).reshape(b, n_edge)
        index[:, :j0], index[:, j1:] = rows[:, :j0], rows[:, j0:]
        offset = b * n_edge
        if j1 > j0:
            d = self.window_hop
            for start, stop in self._chains(windows):
                # Frames inside the windows: once per chain, framed from the chain's signal (window k of the
                # chain starts k * d samples in, i.e. k * d / hop frames later).
                m = stop - start
                step = 0 if m == 1 else d // hop
                signal = (
                    windows[start]
                    if m == 1
                    else np.concatenate([windows[start], windows[start + 1 : stop, n - d :].ravel()])
                )
                n_inner = (m - 1) * step + (j1 - j0)
                parts.append(sliding_window_view(signal, c.n_fft)[j0 * hop - pad :: hop][:n_inner])
                index[start:stop, j0:j1] = offset + (np.arange(m)[:, None] * step + np.arange(j1 - j0)[None, :])
                offset += n_inner
        # librosa: float32 frames * float64 window -> float64 rfft, stored as complex64; |.| ** 2 in float32.
        # In blocks, so the float64/complex128 temporaries stay in cache.
        # Buffers reused across blocks: no fresh multi-MB temporaries (page faults) per block.
        n_bins = c.n_fft // 2 + 1
        power = np.empty((offset, n_bins), dtype=np.float32)
        windowed = np.empty((_FFT_BLOCK, c.n_fft), dtype=np.float64)
        spec = np.empty((_FFT_BLOCK, n_bins), dtype=np.complex64)
        rfft = librosa.get_fftlib().rfft  # the FFT library librosa uses (scipy.fft by default)
        row = 0
        for part in parts:
            for s in range(0, part.shape[0], _FFT_BLOCK):
                k = min(_FFT_BLOCK, part.shape[0] - s)
                np.multiply(part[s : s + k], self._fft_window, out=windowed[:k])
                np.copyto(spec[:k], rfft(windowed[:k], axis=-1), casting="same_kind")  # complex64, as librosa
                np.square(np.abs(spec[:k], out=power[row : row + k]), out=power[row : row + k])
                row += k
        # mel_basis @ power as [n_mels, n_fft // 2 + 1] x [n_fft // 2 + 1, frames]: the operand order and layout
        # of librosa's einsum.
        # One BLAS thread: OpenBLAS splits the product differently per thread count, which changes the last bit
        # of ~10 % of the values; pinned, the output depends on the input only (not on OMP_NUM_THREADS/executor).
        with _blas_controller().limit(limits=1, user_api="blas"):
            mel = self._mel @ power.T  # [n_mels, unique frames] float32
        log_mel = 10.0 * np.log10(np.maximum(_AMIN, mel))  # power_to_db(ref=1.0): minus 10 * log10(1) = 0
        return log_mel.astype(np.float32, copy=False), index

    def _log_mel_windows(self, windows: np.ndarray) -> np.ndarray:
        """Log-mel of equal-length windows ``[B, n]``: float32 ``[B, n_mels, T]`` in dB."""
        log_mel, index = self._log_mel_frames(windows)
        return np.ascontiguousarray(np.transpose(log_mel[:, index], (1, 0, 2)))

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """Frames of mono audio ``[n]`` at ``sample_rate``: ``[1, 2*n_mels]`` (stats) or ``[T, n_mels]``."""
        return self.frames_batch(np.asarray(audio, dtype=np.float32)[None, :])[0]

    def frames_batch(self, windows: np.ndarray) -> list[np.ndarray]:
        """Frames of equal-length windows ``[B, n]`` (in clip order: overlapping ones share STFT frames)."""
        log_mel, index = self._log_mel_frames(np.asarray(windows, dtype=np.float32))
        if not self.cfg.stats:
            return list(np.ascontiguousarray(log_mel.T[index]))  # [B, T, n_mels]
        per_window = np.ascontiguousarray(np.transpose(log_mel[:, index], (1, 0, 2)))  # [B, n_mels, T]
        stats = np.concatenate([per_window.mean(axis=2), per_window.std(axis=2)], axis=1)  # [B, 2 * n_mels]
        return list(stats.astype(np.float32, copy=False)[:, None, :])

    def describe(self) -> dict[str, Any]:
        """Id, settings, versions, dim and input rate."""
        return {
            "id": "logmel",
            "settings": to_dict(self.cfg),
            "algorithm": ALGORITHM_VERSION,
            "versions": {"librosa": librosa.__version__, "numpy": np.__version__},
            "dim": self.dim,
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
        }
