"""``logmel``: statistics of log-mel frames, a DSP embedding that needs no weights.

librosa computes the mel power spectrogram (its own Slaney filterbank) and
``power_to_db`` takes it to decibels with a fixed reference (``ref=1.0``, no
``top_db``) so absolute level survives: a -6 dB gain deformation moves the
embedding, as it should for a robustness study. With ``stats`` (the default),
each analysis window yields one frame: the mean and the standard deviation per
band (``dim = 2 * n_mels``); without, the raw log-mel frames are returned.
"""

from __future__ import annotations

from typing import Any

import librosa
import numpy as np

from mgdata.config import to_dict
from mgdata.embed.config import EmbedConfig, LogMelConfig

_AMIN = 1e-10  # power floor before log: -100 dB, far below 16-bit quantisation noise


class LogMelEmbedder:
    """Log-mel statistics per window (or raw log-mel frames).

    Args:
        cfg: The ``embed.logmel`` settings.
    """

    def __init__(self, cfg: LogMelConfig | None = None):
        self.cfg = cfg or LogMelConfig()
        self.sample_rate = self.cfg.sample_rate
        self.dim = 2 * self.cfg.n_mels if self.cfg.stats else self.cfg.n_mels
        # Raw log-mel frames are evenly spaced (one per STFT hop); statistics give one frame per call.
        self.frame_rate = None if self.cfg.stats else self.cfg.sample_rate / self.cfg.hop_length

    @classmethod
    def from_config(cls, cfg: EmbedConfig) -> "LogMelEmbedder":
        """Build from the ``embed`` section."""
        return cls(cfg.logmel)

    def _log_mel(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel of ``[..., n]`` audio: ``[..., n_mels, T]`` in dB (float32)."""
        c = self.cfg
        mel = librosa.feature.melspectrogram(
            y=np.asarray(audio, dtype=np.float32), sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length,
            n_mels=c.n_mels, fmin=c.fmin_hz, fmax=c.fmax_hz, power=2.0, center=True,
        )
        return librosa.power_to_db(mel, ref=1.0, amin=_AMIN, top_db=None).astype(np.float32)

    def _to_frames(self, log_mel: np.ndarray) -> np.ndarray:
        # log_mel: [n_mels, T]
        if self.cfg.stats:
            return np.concatenate([log_mel.mean(axis=1), log_mel.std(axis=1)])[None, :].astype(np.float32)
        return np.ascontiguousarray(log_mel.T, dtype=np.float32)

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """Frames of mono audio ``[n]`` at ``sample_rate``: ``[1, 2*n_mels]`` (stats) or ``[T, n_mels]``."""
        return self._to_frames(self._log_mel(audio))

    def frames_batch(self, windows: np.ndarray) -> list[np.ndarray]:
        """Frames of equal-length windows ``[B, n]`` in one librosa call (librosa broadcasts over B)."""
        log_mel = self._log_mel(np.asarray(windows))
        return [self._to_frames(m) for m in log_mel]

    def describe(self) -> dict[str, Any]:
        """Id, settings, versions, dim and input rate."""
        return {
            "id": "logmel",
            "settings": to_dict(self.cfg),
            "versions": {"librosa": librosa.__version__, "numpy": np.__version__},
            "dim": self.dim,
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
        }
