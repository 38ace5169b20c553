"""``logmel`` fast path (shared STFT frames, one mel product) against a plain librosa reference.

Tolerance. The fast path puts every frame through librosa's own float operations
(float32 samples x float64 Hann window, float64 rfft rounded to complex64, ``|.|**2``
in float32), and the power spectra are bit-identical to librosa's. What differs is
the float32 mel product ``mel_basis @ power``: BLAS sums the 513 non-negative terms of
each mel value in an order that depends on the matrix shape (how many frames are in
the batch, where a frame's column lands), so even librosa's own output for one frame
changes in the last bit with the batch it is computed in. For non-negative terms any
summation order is within ``(K - 1) u`` relative of the exact sum (K = 513 terms,
u = 2**-24), so two orders differ by at most ``2 * 512 * 2**-24 = 6.1e-5`` relative,
i.e. ``10 * log10(1 + 6.1e-5) = 2.7e-4`` dB, plus one float32 rounding of
``10 * log10`` (< 4e-6 dB below 64 dB). Means and standard deviations of values that
each moved by at most that move by at most as much (plus their own rounding). So
``ATOL_DB = 3e-4`` is a bound, not a fit; observed differences are ~4e-6 dB (1 ulp).
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mgdata.embed import embed_clip, get_embedder
from mgdata.embed.base import window_starts
from mgdata.embed.config import EmbedConfig, LogMelConfig
from mgdata.embed.logmel import ALGORITHM_VERSION, LogMelEmbedder
from mgdata.testing import noise, tone

SR = 16000
ATOL_DB = 3e-4  # see the module docstring


def reference_frames(cfg: LogMelConfig, window: np.ndarray) -> np.ndarray:
    """The straightforward implementation: librosa's melspectrogram + power_to_db on one window."""
    mel = librosa.feature.melspectrogram(
        y=np.asarray(window, dtype=np.float32),
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin_hz,
        fmax=cfg.fmax_hz,
        power=2.0,
        center=True,
    )
    log_mel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).astype(np.float32)
    if cfg.stats:
        return np.concatenate([log_mel.mean(axis=1), log_mel.std(axis=1)])[None, :].astype(np.float32)
    return np.ascontiguousarray(log_mel.T)


def clip_windows(x: np.ndarray, window: int, hop: int) -> np.ndarray:
    """The windows :func:`embed_clip` cuts (regular hop, the last one aligned to the clip end)."""
    return np.stack([x[s : s + window] for s in window_starts(x.size, window, hop)])


def music(seconds: float, seed: int = 0) -> np.ndarray:
    """Tones + noise with a quiet passage and an exact-silence gap (tests the -100 dB floor)."""
    x = tone([110.0, 330.0, 2500.0], seconds, SR, 0.3) + noise(seconds, SR, 0.02, seed)
    x[SR : SR + SR // 2] *= 1e-3
    x[2 * SR : 2 * SR + 4000] = 0.0
    return x.astype(np.float32)


def assert_close_to_reference(emb: LogMelEmbedder, windows: np.ndarray) -> float:
    got = emb.frames_batch(windows)
    assert len(got) == len(windows)
    worst = 0.0
    for w, g in zip(windows, got):
        ref = reference_frames(emb.cfg, w)
        assert g.shape == ref.shape and g.dtype == np.float32
        worst = max(worst, float(np.abs(g - ref).max()))
    assert worst <= ATOL_DB, f"max |fast - librosa| = {worst} dB > {ATOL_DB}"
    return worst


@pytest.mark.parametrize("stats", [True, False])
@pytest.mark.parametrize("seconds", [2.0, 5.3, 7.0])
def test_clip_windows_match_librosa_per_window(stats, seconds):
    cfg = EmbedConfig(window_s=2.0, hop_s=1.0, logmel=LogMelConfig(stats=stats))
    emb = LogMelEmbedder.from_config(cfg)
    windows = clip_windows(music(seconds), 2 * SR, SR)
    chains = emb._chains(windows)
    # The regular windows form one chain that shares its inner frames; an end-aligned last window starts its own.
    assert chains[0] == (0, len(windows) if seconds == int(seconds) else len(windows) - 1)
    assert_close_to_reference(emb, windows)


@pytest.mark.parametrize(
    "logmel, window, hop",
    [
        (LogMelConfig(n_fft=512, hop_length=160, n_mels=40, fmin_hz=50.0, fmax_hz=7000.0), 8000, 4000),
        (LogMelConfig(n_fft=1024, hop_length=300, n_mels=64), 7001, 3000),  # window not a multiple of the STFT hop
        (LogMelConfig(n_fft=1024, hop_length=320, n_mels=64), 16000, 5000),  # window hop not a multiple: no sharing
        (LogMelConfig(n_fft=2048, hop_length=512, n_mels=32), 1500, 700),  # window shorter than n_fft: all padded
        (LogMelConfig(n_fft=1024, hop_length=320, n_mels=64), 200, 100),  # shorter than n_fft // 2
    ],
)
@pytest.mark.filterwarnings("ignore:n_fft=.* is too large:UserWarning")  # librosa, on the windows shorter than n_fft
def test_other_geometries_match_librosa(logmel, window, hop):
    emb = LogMelEmbedder(logmel, window_hop=hop)
    assert_close_to_reference(emb, clip_windows(music(3.0, seed=1), window, hop))


def test_sharing_is_decided_by_content():
    """Windows that do not continue each other (other clips, reordered) are not chained, yet still correct."""
    emb = LogMelEmbedder.from_config(EmbedConfig())
    a, b = clip_windows(music(4.0, seed=2), 2 * SR, SR), clip_windows(music(4.0, seed=3), 2 * SR, SR)
    mixed = np.stack([a[0], b[1], a[1], a[2], b[0]])
    assert emb._chains(mixed) == [(0, 1), (1, 2), (2, 4), (4, 5)]
    assert_close_to_reference(emb, mixed)
    unshared = LogMelEmbedder(emb.cfg)  # no window_hop: every window alone
    assert unshared._chains(a) == [(0, 1), (1, 2), (2, 3)]
    for x, y in zip(unshared.frames_batch(a), emb.frames_batch(a)):
        np.testing.assert_allclose(x, y, rtol=0, atol=ATOL_DB)


def test_silence_gives_the_floor():
    emb = LogMelEmbedder.from_config(EmbedConfig())
    (frame,) = emb.frames_batch(np.zeros((1, 2 * SR), dtype=np.float32))
    n = emb.cfg.n_mels
    # 10 * log10(1e-10) in float32: the last bit depends on the log10 kernel the CPU runs (-100.00001 with
    # AVX-512 on some machines), so the floor is checked to 1e-4 dB and every band must be on the same floor.
    assert np.allclose(frame[0, :n], -100.0, rtol=0, atol=1e-4)
    assert np.all(frame[0, :n] == frame[0, 0])
    assert np.allclose(frame[0, n:], 0.0, rtol=0, atol=1e-6)


def test_embed_clip_uses_the_fast_path_and_matches_reference():
    cfg = EmbedConfig()
    emb = get_embedder("logmel", cfg)
    assert isinstance(emb, LogMelEmbedder) and emb.window_hop == SR
    x = music(6.5)
    clip = embed_clip(emb, x, SR, window_s=2.0, hop_s=1.0)
    ref = np.concatenate([reference_frames(cfg.logmel, w) for w in clip_windows(x, 2 * SR, SR)])
    assert clip.frames.shape == ref.shape == (6, 2 * cfg.logmel.n_mels)
    np.testing.assert_allclose(clip.frames, ref, rtol=0, atol=ATOL_DB)
    # frames() of one window is the batch path with B = 1.
    np.testing.assert_array_equal(emb.frames(x[: 2 * SR]), emb.frames_batch(x[None, : 2 * SR])[0])


def test_deterministic_across_calls_and_blas_thread_counts():
    emb = LogMelEmbedder.from_config(EmbedConfig())
    windows = clip_windows(music(9.5, seed=4), 2 * SR, SR)
    with threadpool_limits(limits=1, user_api="blas"):
        one = emb.frames_batch(windows)
    with threadpool_limits(limits=2, user_api="blas"):
        two = emb.frames_batch(windows)
    again = LogMelEmbedder.from_config(EmbedConfig()).frames_batch(windows.copy())
    for a, b, c in zip(one, two, again):
        assert a.tobytes() == b.tobytes() == c.tobytes()


def test_describe_carries_the_algorithm_version():
    desc = LogMelEmbedder.from_config(EmbedConfig()).describe()
    assert desc["algorithm"] == ALGORITHM_VERSION == 2
    assert desc["id"] == "logmel" and desc["dim"] == 128 and desc["sample_rate"] == SR
    # window_hop is a work-sharing hint, not a setting: it must not change the description (fingerprints).
    assert LogMelEmbedder(LogMelConfig()).describe() == desc
