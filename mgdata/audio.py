"""Audio I/O on well-kept libraries: soundfile (FLAC, WAV, MP3) and soxr (resampling).

torchaudio is deliberately not used: its PyPI wheels are CUDA builds that do not
load beside CPU torch 2.13.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from mgdata.errors import InputError

SILENCE_DB = -120.0


def _to_mono(x: np.ndarray) -> np.ndarray:
    # soundfile returns [frames, channels]
    return x.mean(axis=1) if x.ndim == 2 else x


def read_audio(
    path: str | Path,
    *,
    sr: int | None = None,
    mono: bool = True,
    offset_s: float = 0.0,
    duration_s: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32.

    Args:
        path: Audio file (any format libsndfile reads: FLAC, WAV, OGG, MP3).
        sr: Resample to this rate; ``None`` keeps the file's rate.
        mono: Average channels to shape ``[n]``; otherwise ``[channels, n]``.
        offset_s: Start reading here.
        duration_s: Read at most this long; ``None`` reads to the end.

    Returns:
        ``(audio, sample_rate)``.

    Raises:
        InputError: The file is missing or unreadable (names the file).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "audio file not found")
    try:
        with sf.SoundFile(str(path)) as fh:
            file_sr = fh.samplerate
            start = int(round(offset_s * file_sr))
            if start:
                fh.seek(min(start, fh.frames))
            frames = -1 if duration_s is None else int(round(duration_s * file_sr))
            x = fh.read(frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise InputError(str(path), f"unreadable audio ({exc})") from None
    x = _to_mono(x) if mono else x.T
    if sr is not None and sr != file_sr:
        x = resample(x, file_sr, sr)
        file_sr = sr
    return np.ascontiguousarray(x, dtype=np.float32), file_sr


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample ``x`` (``[n]`` or ``[channels, n]``) from ``sr_in`` to ``sr_out`` with soxr (HQ)."""
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32)
    return soxr.resample(x.T, sr_in, sr_out, quality="HQ").T.astype(np.float32)


def encode_flac(x: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    """Encode float audio (``[n]`` or ``[channels, n]``) as FLAC bytes.

    Deterministic: the same samples give the same bytes. Values are clipped to
    [-1, 1] by libsndfile's PCM conversion.
    """
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot encode non-finite audio (NaN or inf)")
    buf = io.BytesIO()
    sf.write(buf, x.T if x.ndim == 2 else x, sr, format="FLAC", subtype=subtype)
    return buf.getvalue()


def decode_audio(data: bytes, *, mono: bool = True) -> tuple[np.ndarray, int]:
    """Decode audio bytes (FLAC/WAV/...) to float32 ``([n] or [channels, n], sample_rate)``."""
    x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    x = _to_mono(x) if mono else x.T
    return np.ascontiguousarray(x, dtype=np.float32), sr


def decode_artifact_audio(data: bytes, *, declared_sr: int | None = None) -> tuple[np.ndarray, int]:
    """Decode an artifact's audio member, checking it against the artifact's contract.

    mgdata artifacts hold mono audio at the rate their json declares; anything else is a
    broken input, reported in deterministic words (no decoder object reprs).

    Raises:
        ValueError: Undecodable bytes ("undecodable audio"), more than one channel
            ("channel mismatch"), a rate other than ``declared_sr`` ("sample rate mismatch")
            or non-finite samples ("non-finite samples").
    """
    try:
        x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types; all mean unreadable
        raise ValueError(f"undecodable audio: {type(exc).__name__}") from None
    if x.shape[1] != 1:
        raise ValueError(f"channel mismatch: artifacts hold mono audio, the member has {x.shape[1]} channels")
    if declared_sr is not None and int(declared_sr) != sr:
        raise ValueError(f"sample rate mismatch: json declares {int(declared_sr)} Hz, the flac is {sr} Hz")
    x = np.ascontiguousarray(x[:, 0], dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("non-finite samples: the audio holds NaN or inf")
    return x, sr


def rms_db(x: np.ndarray) -> float:
    """Root-mean-square level in dBFS; silence (or empty input) gives -120 dB."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return SILENCE_DB
    rms = float(np.sqrt(np.mean(x * x)))
    return max(SILENCE_DB, 20.0 * np.log10(rms)) if rms > 0 else SILENCE_DB
