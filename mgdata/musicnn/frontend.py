"""The musicnn log-mel front end and its 3 s patching, as the original extractor computes them.

``musicnn.extractor.batch_data`` loads audio at 16 kHz, takes librosa's power
mel spectrogram (FFT 512, hop 256, 96 Slaney mel bands, centred frames), casts it
to float16 (the models were trained on float16-stored spectrograms), applies
``log10(10000 x + 1)`` and cuts non-overlapping patches of 187 frames (3 s). This
module does the same steps with the same numpy/librosa calls, so the port sees the
inputs the TensorFlow graph saw.

The log step depends on the numpy version, because ``10000 * x`` with ``x`` float16
follows numpy's promotion rules: numpy 1.x (the wheel declares ``numpy<1.17``)
promotes to float32 (value-based casting: 10000 needs uint16, and float16 with uint16
gives float32), numpy >= 2 keeps float16 (NEP 50), which rounds the log to float16
and overflows to ``inf`` where a mel band's power exceeds 6.55: loud tonal content,
2.6 % of the bins of a harmonic mix at -14 dBFS RMS, whose tags then move by up to
0.36 from the numpy-1 result. The default here is the numpy-1 result, what the
package computed when it was released; ``float16_log=True`` reproduces the extractor
under numpy >= 2, except that overflowing bins get the largest finite value,
``log10(65504 + 1)`` in float16 (4.816), instead of ``inf``.
"""

from __future__ import annotations

import functools

import numpy as np

SR = 16000
FFT_SIZE = 512
FFT_HOP = 256
N_MELS = 96
# librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1, as extractor.py computes it.
PATCH_FRAMES = 187

_F16_LOG_MAX = np.log10(np.float16(65504.0) + np.float16(1.0))


@functools.lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """librosa's Slaney mel filterbank of the front end, ``[96, 257]`` float32 (built once per process)."""
    import librosa

    basis = librosa.filters.mel(sr=SR, n_fft=FFT_SIZE, n_mels=N_MELS)
    basis.flags.writeable = False
    return basis


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, built once (its ``limit`` is then cheap)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def log_mel(audio: np.ndarray, sr: int = SR, *, float16_log: bool = False) -> np.ndarray:
    """Log-compressed mel spectrogram of mono 16 kHz audio.

    Args:
        audio: Mono float samples at :data:`SR` (resample first: the original used
            ``librosa.load(sr=16000)``, whose default resampler is soxr HQ as in
            :func:`mgdata.audio.resample`).
        sr: Must equal :data:`SR`.
        float16_log: Compute the log in float16 as the extractor does under numpy >= 2
            (default: in float32, as under numpy 1.x; see the module docstring).

    Returns:
        ``[frames, 96]`` float32, ``frames = 1 + len // 256``.
    """
    import librosa  # deferred: importing librosa costs ~1 s and only this function needs it

    if sr != SR:
        raise ValueError(f"musicnn front end needs {SR} Hz audio, got {sr} Hz")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    # librosa.feature.melspectrogram's steps (centred Hann STFT, power 2, its einsum with the Slaney
    # filterbank), with the filterbank built once per process instead of on every call, and the product on
    # one BLAS thread so the bits do not depend on the thread count (OpenBLAS splits sums per thread).
    power = np.abs(librosa.stft(audio, n_fft=FFT_SIZE, hop_length=FFT_HOP)) ** 2.0
    with _blas_controller().limit(limits=1, user_api="blas"):
        mel = np.einsum("...ft,mf->...mt", power, mel_basis(), optimize=True).T
    mel16 = mel.astype(np.float16)  # the quantisation the models were trained with
    if not float16_log:
        # numpy 1.x evaluated extractor.py's `10000 * audio_rep` in float32: the same ops, explicitly.
        return np.log10(10000 * mel16.astype(np.float32) + 1)
    # extractor.py's expression under numpy >= 2: each operation rounds to float16.
    with np.errstate(over="ignore"):
        out = np.log10(10000 * mel16 + 1)
    out[~np.isfinite(out)] = _F16_LOG_MAX
    return out.astype(np.float32)


def patches(logmel: np.ndarray, n_frames: int = PATCH_FRAMES, *, pad_short: bool = True) -> np.ndarray:
    """Cut a log-mel spectrogram into non-overlapping patches, as ``batch_data`` does.

    Only whole patches are kept (the tail shorter than ``n_frames`` is dropped, as in
    the original). A spectrogram shorter than one patch, which the original rejects
    with an error, is zero-padded to one patch when ``pad_short`` (zero is the log-mel
    of silence).

    Args:
        logmel: ``[frames, 96]``.
        n_frames: Patch length in frames.
        pad_short: Pad a too-short input instead of returning no patch.

    Returns:
        ``[patches, n_frames, 96]`` float32.
    """
    logmel = np.asarray(logmel, dtype=np.float32)
    if logmel.shape[0] < n_frames:
        if not pad_short:
            return np.zeros((0, n_frames, logmel.shape[1]), dtype=np.float32)
        logmel = np.pad(logmel, ((0, n_frames - logmel.shape[0]), (0, 0)))
    n = (logmel.shape[0] - n_frames) // n_frames + 1
    return np.ascontiguousarray(logmel[: n * n_frames].reshape(n, n_frames, logmel.shape[1]))
