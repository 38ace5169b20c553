"""The offline harmonic-plus-noise resynthesiser (mgdata.generate.resynth) and the generator registry."""

import json

import librosa
import numpy as np
import pytest

from mgdata.errors import InputError, ParamsError
from mgdata.generate.base import GENERATORS, Generator, GenRequest, get_generator
from mgdata.generate.config import GenerateConfig, ResynthConfig
from mgdata.generate.resynth import HarmonicNoiseParams, ResynthGenerator, analyse, resynthesize, synthesize
from mgdata.testing import noise, tone

SR = 16000
CFG = ResynthConfig(sample_rate=SR)


def _harmonic(f0, duration_s=2.0, sr=SR, n=6, amp=0.4, vibrato_hz=0.0):
    """A harmonic tone with 1/k partials and an optional vibrato (pitch contour)."""
    t = np.arange(int(duration_s * sr)) / sr
    f = f0 * (1 + 0.02 * np.sin(2 * np.pi * vibrato_hz * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, n + 1))
    return (amp * x / np.max(np.abs(x))).astype(np.float32)


def _logmel(x, sr=SR):
    m = librosa.feature.melspectrogram(y=x, sr=sr, n_fft=1024, hop_length=256, n_mels=64)
    return np.log(m + 1e-6)


def _dist(a, b):
    return float(np.mean(np.abs(_logmel(a) - _logmel(b))))


def _clips():
    rng = np.random.default_rng(0)
    chord = tone([196.0, 247.0, 294.0], 2.0, SR, 0.4)
    lowpass_noise = np.convolve(rng.standard_normal(2 * SR), np.ones(16) / 16, mode="same").astype(np.float32) * 0.3
    return {
        "low": _harmonic(110.0, vibrato_hz=5.0),
        "mid": _harmonic(330.0),
        "high": _harmonic(660.0, n=4),
        "chord": chord,
        "noise": lowpass_noise,
    }


def test_reconstruction_is_closer_to_its_source_than_to_other_clips():
    clips = _clips()
    names = list(clips)
    recon = {k: resynthesize(v, SR, CFG, seed=1) for k, v in clips.items()}
    for k in names:
        d_own = _dist(clips[k], recon[k])
        d_other = min(_dist(clips[j], recon[k]) for j in names if j != k)
        assert d_own < d_other, (k, d_own, d_other)


def test_f0_and_loudness_contours_are_kept():
    x = _harmonic(220.0, duration_s=2.0)
    ramp = np.linspace(0.1, 1.0, len(x)).astype(np.float32)
    x = x * ramp
    p = analyse(x, CFG)
    assert np.median(p.f0_hz[5:-5]) == pytest.approx(220.0, rel=0.01)
    y = resynthesize(x, SR, CFG, seed=0)
    rms_x = librosa.feature.rms(y=x, frame_length=2048, hop_length=512)[0]
    rms_y = librosa.feature.rms(y=y, frame_length=2048, hop_length=512)[0]
    assert np.corrcoef(rms_x, rms_y)[0, 1] > 0.98
    # The output pitch follows the source: yin on the output finds 220 Hz too.
    f0_y = librosa.yin(y, fmin=65, fmax=1000, sr=SR, frame_length=2048)
    assert np.median(f0_y) == pytest.approx(220.0, rel=0.02)


def test_noise_colour_is_kept():
    rng = np.random.default_rng(1)
    low = np.convolve(rng.standard_normal(2 * SR), np.ones(32) / 32, mode="same").astype(np.float32)
    y = resynthesize(low, SR, CFG, seed=0)
    spec = np.abs(librosa.stft(y, n_fft=1024)) ** 2
    freqs = librosa.fft_frequencies(sr=SR, n_fft=1024)
    low_share = spec[freqs < 1000].sum() / spec.sum()
    src = np.abs(librosa.stft(low, n_fft=1024)) ** 2
    assert low_share > 0.8 and abs(low_share - src[freqs < 1000].sum() / src.sum()) < 0.1


def test_deterministic_per_seed_and_seed_sensitive():
    x = _clips()["chord"]
    a = resynthesize(x, SR, CFG, seed=5)
    b = resynthesize(x, SR, CFG, seed=5)
    c = resynthesize(x, SR, CFG, seed=6)
    assert a.dtype == np.float32 and a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)
    assert _dist(a, c) < _dist(a, _clips()["high"])


def test_length_sample_rate_and_resampling():
    x = _harmonic(220.0, duration_s=1.5, sr=22050)
    y = resynthesize(x, 22050, CFG, seed=0, duration_s=1.0)
    assert y.shape == (SR,)
    y2 = resynthesize(x, 22050, CFG, seed=0, duration_s=2.0)  # zero-padded source -> silent tail
    assert y2.shape == (2 * SR,) and np.abs(y2[-SR // 4 :]).max() < 1e-3
    assert np.abs(y).max() <= CFG.max_peak + 1e-6
    with pytest.raises(ValueError):
        resynthesize(np.zeros((2, 100), np.float32), SR, CFG, seed=0)


def test_silence_in_silence_out():
    y = resynthesize(np.zeros(SR, np.float32), SR, CFG, seed=0)
    assert np.all(np.isfinite(y)) and np.abs(y).max() == 0.0


@pytest.mark.slow  # pyin JIT-compiles for ~8 s on first use
def test_pyin_mode_marks_unvoiced_frames():
    cfg = ResynthConfig(
        sample_rate=SR, f0_method="pyin", fmin_hz=100.0, fmax_hz=800.0, frame_length=1024, hop_length=256
    )
    x = np.concatenate([_harmonic(220.0, duration_s=0.5), noise(0.5, SR, 0.05, seed=0)])
    p = analyse(x, cfg)
    n = len(p.voiced)
    assert p.voiced[: n // 3].mean() > 0.8 and p.voiced[-n // 3 :].mean() < 0.2
    assert np.all(p.harmonic_amps[:, ~p.voiced] == 0)
    y = synthesize(p, cfg, seed=0)
    assert y.shape == x.shape and np.all(np.isfinite(y))


def test_analysis_params_roundtrip():
    p = analyse(_harmonic(220.0, duration_s=0.5), CFG)
    q = HarmonicNoiseParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert np.array_equal(synthesize(p, CFG, 3), synthesize(q, CFG, 3))


def test_generator_interface_and_registry():
    gen = get_generator("resynth", GenerateConfig(resynth=ResynthConfig(sample_rate=22050)))
    assert isinstance(gen, ResynthGenerator) and isinstance(gen, Generator)
    assert gen.sample_rate == 22050 and gen.mode == "source" and gen.name == "resynth"
    d = gen.describe()
    assert json.loads(json.dumps(d)) == d and d["settings"]["sample_rate"] == 22050 and d["revision"]
    assert get_generator("resynth", ResynthConfig()).sample_rate == 16000
    x = _harmonic(220.0, duration_s=1.0)
    reqs = [
        GenRequest("k1", "a", 1, 0.5, source=x, source_sample_rate=SR),
        GenRequest("k2", "a", 2, 1.0, source=x, source_sample_rate=SR),
    ]
    out = gen.generate(reqs)
    assert [len(o) for o in out] == [11025, 22050]
    with pytest.raises(InputError, match="k3"):
        gen.generate([GenRequest("k3", "a", 1, 1.0)])
    with pytest.raises(ParamsError, match="generate.generator"):
        get_generator("nope", None)
    assert set(GENERATORS) >= {"resynth", "musicgen"}


def test_config_validation():
    with pytest.raises(ParamsError, match="frame_length"):
        ResynthConfig(frame_length=1000)
    with pytest.raises(ParamsError, match="fmin_hz"):
        ResynthConfig(fmin_hz=2000.0, fmax_hz=1000.0)
    with pytest.raises(ParamsError, match="f0_median_frames"):
        ResynthConfig(f0_median_frames=4)
