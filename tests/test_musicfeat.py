"""musicfeat: separates fast vs slow pulse tracks and major vs minor triads, is key invariant, registered."""

import numpy as np
import pytest

from mgdata.embed.base import embed_clip, get_embedder
from mgdata.embed.musicfeat import FEATURE_NAMES, MusicFeatEmbedder

SR = 22050
IDX = {name: i for i, name in enumerate(FEATURE_NAMES)}


def note(midi: float, dur_s: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(dur_s * sr)) / sr
    f = 440.0 * 2 ** ((midi - 69) / 12)
    x = sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3))
    return x * np.exp(-3.0 * t)


def chord_track(root: int, minor: bool, bpm: float, dur_s: float = 4.0) -> np.ndarray:
    """Repeated triad (root, third, fifth) struck at ``bpm``, in two octaves."""
    third = 3 if minor else 4
    period = int(SR * 60.0 / bpm)
    strike = sum(note(root + o + i, period / SR) for o in (0, 12) for i in (0, third, 7))
    x = np.tile(strike, int(np.ceil(dur_s * SR / period)))[: int(dur_s * SR)]
    return (0.2 * x / np.abs(x).max()).astype(np.float32)


def feats(x: np.ndarray) -> np.ndarray:
    return MusicFeatEmbedder().frames(x)[0]


def test_fast_vs_slow_pulse():
    slow = [feats(chord_track(60 + k, False, 60.0)) for k in range(3)]
    fast = [feats(chord_track(60 + k, False, 180.0)) for k in range(3)]
    assert max(f[IDX["onset_rate_hz"]] for f in slow) < min(f[IDX["onset_rate_hz"]] for f in fast)
    assert max(f[IDX["onset_rate_hz"]] for f in slow) < 1.6 and min(f[IDX["onset_rate_hz"]] for f in fast) > 2.4


def test_major_vs_minor_and_key_invariance():
    major = [feats(chord_track(root, False, 90.0)) for root in (57, 60, 62, 65)]
    minor = [feats(chord_track(root, True, 90.0)) for root in (57, 60, 62, 65)]
    diff = IDX["triad_mode_diff"]
    assert min(f[diff] for f in major) > 0 > max(f[diff] for f in minor)
    # transposition: the tonic-rotated chroma profile hardly moves (same triad type in another key)
    prof = slice(IDX["chroma_mean_00"], IDX["chroma_mean_11"] + 1)
    within = np.abs(major[0][prof] - major[2][prof]).max()
    across = np.abs(major[0][prof] - minor[0][prof]).max()
    assert within < across / 3


def test_registered_and_windowed():
    emb = get_embedder("musicfeat")
    assert emb.dim == len(FEATURE_NAMES) == 39
    assert emb.describe()["id"] == "musicfeat"
    x = chord_track(60, False, 120.0, dur_s=5.0)
    clip = embed_clip(emb, np.asarray(x), 44100 // 2, window_s=2.0, hop_s=1.0)
    assert clip.frames.shape == (clip.n_windows, 39) and np.isfinite(clip.frames).all()
    silent = emb.frames(np.zeros(SR, dtype=np.float32))
    assert np.isfinite(silent).all()
    assert silent[0, IDX["rms_db_mean"]] == pytest.approx(-100.0)
