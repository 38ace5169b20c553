"""Deformation scenarios change the audio by the intended amount, deterministically."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mgdata.embed.config import ScenarioConfig
from mgdata.embed.deform import deformation_seed, make_deformation, synthetic_ir
from mgdata.errors import ParamsError
from mgdata.testing import tone

SR = 16000


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.asarray(x, dtype=np.float64) ** 2))


def _db(ratio: float) -> float:
    return 10.0 * np.log10(ratio)


@pytest.fixture(scope="module")
def music():
    return tone([220.0, 277.2, 329.6], 3.0, SR, amp=0.5)


@pytest.mark.parametrize("snr_db", [20.0, 5.0])
def test_noise_hits_the_snr(music, snr_db):
    d = make_deformation("n", ScenarioConfig(type="noise", snr_db=snr_db), seed=3)
    y = d.apply(music, SR, key="k1")
    assert y.shape == music.shape and y.dtype == np.float32
    assert abs(_db(_power(music) / _power(y - music)) - snr_db) < 0.5


def test_noise_is_seeded_by_key_and_restores_global_rngs(music):
    d = make_deformation("n", ScenarioConfig(type="noise", snr_db=10.0), seed=0)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, b, c = d.apply(music, SR, key="k1"), d.apply(music, SR, key="k1"), d.apply(music, SR, key="k2")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    other_seed = make_deformation("n", ScenarioConfig(type="noise", snr_db=10.0), seed=1)
    assert not np.array_equal(a, other_seed.apply(music, SR, key="k1"))
    assert deformation_seed(0, "n", "k1") == deformation_seed(0, "n", "k1") != deformation_seed(0, "n", "k2")


def test_gain_within_a_tenth_of_a_db(music):
    y = make_deformation("g", ScenarioConfig(type="gain", gain_db=-6.0)).apply(music, SR, key="k")
    assert abs(_db(_power(y) / _power(music)) - (-6.0)) < 0.1


def test_mp3_round_trip_changes_signal_keeps_length(music):
    y = make_deformation("m", ScenarioConfig(type="mp3", bitrate_kbps=32)).apply(music, SR, key="k")
    assert y.shape == music.shape
    err = _power(y - music) / _power(music)
    assert err > 1e-4  # lossy: the signal changed
    assert np.corrcoef(y, music)[0, 1] > 0.9  # but it is still the same music, time-aligned


def test_pitch_shift_moves_the_peak(music):
    x = tone(440.0, 2.0, SR, amp=0.5)
    y = make_deformation("p", ScenarioConfig(type="pitch_shift", semitones=2.0)).apply(x, SR, key="k")
    assert y.shape == x.shape
    spec = np.abs(np.fft.rfft(y[SR // 2 : SR // 2 + SR] * np.hanning(SR)))
    peak_hz = np.fft.rfftfreq(SR, 1 / SR)[np.argmax(spec)]
    assert abs(peak_hz - 440.0 * 2 ** (2 / 12)) < 4.0


def test_clipping_by_percentile_and_threshold(music):
    y = make_deformation("c", ScenarioConfig(type="clipping", clip_percentile=10)).apply(music, SR, key="k")
    clipped = np.mean((y <= y.min() + 1e-7) | (y >= y.max() - 1e-7))
    assert 0.08 < clipped < 0.12
    z = make_deformation("t", ScenarioConfig(type="clipping", clip_threshold=0.2)).apply(music, SR, key="k")
    assert np.max(np.abs(z)) <= 0.2 + 1e-7 and np.max(np.abs(music)) > 0.2


def test_impulse_response_synthetic_and_file(music, tmp_path):
    d = make_deformation("r", ScenarioConfig(type="impulse_response", rt60_s=0.5, ir_duration_s=1.0), seed=0)
    y = d.apply(music, SR, key="k")
    assert y.shape == music.shape and abs(_db(_power(y) / _power(music))) < 0.01  # level kept
    assert _power(y - music) / _power(music) > 0.05  # reverberation changed the signal
    np.testing.assert_array_equal(y, d.apply(music, SR, key="other"))  # one room per scenario
    ir = synthetic_ir(SR, rt60_s=0.5, duration_s=1.0, seed=0)
    blocks = [_power(ir[i : i + SR // 10]) for i in range(SR // 100, SR, SR // 10)]
    # 60 dB per 0.5 s = 12 dB per 0.1 s block, within the noise of a random IR
    steps = np.diff([_db(b) for b in blocks])
    assert abs(np.median(steps) + 12.0) < 2.0
    dirac = np.zeros(800, dtype=np.float32)
    dirac[0] = 1.0
    sf.write(tmp_path / "dirac.wav", dirac, SR)
    ident = make_deformation("f", ScenarioConfig(type="impulse_response", ir_path=str(tmp_path / "dirac.wav")))
    np.testing.assert_allclose(ident.apply(music, SR, key="k"), music, atol=1e-5)


def test_clean_is_identity_and_params_are_checked(music):
    d = make_deformation("clean")
    assert d.is_identity and d.apply(music, SR, key="k") is not None
    np.testing.assert_array_equal(d.apply(music, SR, key="k"), music)
    with pytest.raises(ParamsError, match="snr_db"):
        ScenarioConfig(type="noise")
    with pytest.raises(ParamsError, match="semitones"):
        ScenarioConfig(type="pitch_shift", semitones=30.0)
    with pytest.raises(ParamsError, match="clip_percentile"):
        ScenarioConfig(type="clipping")
    assert make_deformation("g", ScenarioConfig(type="gain", gain_db=-3.0)).describe("key")["params"] == {
        "gain_db": -3.0
    }
