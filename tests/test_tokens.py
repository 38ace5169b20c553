"""Unit tests of the token pieces: condenser, metrics, k-means codebook, config, frame encoders."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mgdata.config import from_dict
from mgdata.errors import InputError, ParamsError
from mgdata.tokens.condense import condense, n_segments
from mgdata.tokens.config import TokensConfig, config_name
from mgdata.tokens.metrics import entropy_bits, run_lengths, token_stats
from mgdata.tokens.vq import (
    codebook_sha256,
    distinct_rows,
    encode,
    fit_codebook,
    load_codebook,
    save_codebook,
)

# ----------------------------------------------------------------------------- condenser


def test_condense_is_mean_of_frames_per_segment():
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((250, 5)).astype(np.float32)
    out = condense(frames, 100.0, 0.5)
    assert out.shape == (5, 5) and out.dtype == np.float32
    for j in range(5):
        np.testing.assert_allclose(out[j], frames[50 * j : 50 * (j + 1)].mean(axis=0), rtol=1e-5, atol=1e-6)


def test_condense_drops_partial_last_segment_unless_asked():
    rng = np.random.default_rng(1)
    frames = rng.standard_normal((230, 3))
    dropped = condense(frames, 100.0, 0.5)
    kept = condense(frames, 100.0, 0.5, keep_partial=True)
    assert dropped.shape == (4, 3)
    assert kept.shape == (5, 3)
    np.testing.assert_allclose(kept[:4], dropped, rtol=1e-6)
    np.testing.assert_allclose(kept[4], frames[200:230].mean(axis=0), rtol=1e-5)
    assert n_segments(230, 100.0, 0.5) == 4 and n_segments(230, 100.0, 0.5, keep_partial=True) == 5
    # exactly full: no extra segment either way
    assert n_segments(250, 100.0, 0.5, keep_partial=True) == 5


def test_condense_assigns_frames_by_time_with_fractional_frames_per_segment():
    rng = np.random.default_rng(2)
    frame_rate, seg = 62.5, 0.25  # 15.625 frames per segment
    frames = rng.standard_normal((200, 4))
    out = condense(frames, frame_rate, seg)
    times = np.arange(200) / frame_rate
    assert len(out) == math.floor(200 / (frame_rate * seg))
    for j in range(len(out)):
        inside = (times >= j * seg) & (times < (j + 1) * seg)
        np.testing.assert_allclose(out[j], frames[inside].mean(axis=0), rtol=1e-5, atol=1e-6)


def test_condense_float_boundaries_at_paper_segment_lengths():
    # 0.35 s x 100 frames/s = 35 frames: float rounding must not move frame 35 into segment 0.
    frames = np.arange(140, dtype=np.float64)[:, None]
    out = condense(frames, 100.0, 0.35)
    assert out.shape == (4, 1)
    np.testing.assert_allclose(out[:, 0], [17.0, 52.0, 87.0, 122.0])


def test_condense_rejects_bad_input():
    with pytest.raises(ValueError, match="less than one frame"):
        condense(np.zeros((10, 2)), 10.0, 0.05)
    with pytest.raises(ValueError, match="NaN"):
        condense(np.full((10, 2), np.nan), 10.0, 0.5)
    with pytest.raises(ValueError, match=r"\[n_frames, dim\]"):
        condense(np.zeros(10), 10.0, 0.5)
    assert condense(np.zeros((3, 2)), 10.0, 0.5).shape == (0, 2)


# ----------------------------------------------------------------------------- metrics


def test_metrics_uniform_sequence_has_log2k_entropy_and_full_usage():
    k = 8
    st = token_stats([np.arange(k).repeat(3)], k)
    assert st.entropy_bits == pytest.approx(math.log2(k))
    assert st.entropy_norm == pytest.approx(1.0)
    assert st.usage == 1.0 and st.n_used == k
    assert st.top_share == pytest.approx(1 / k)
    assert st.mean_run_length == pytest.approx(3.0)


def test_metrics_run_length_usage_and_top_share_on_hand_made_sequence():
    st = token_stats([np.array([1, 1, 1, 2, 2], dtype=np.int16)], 4)
    assert st.mean_run_length == pytest.approx(2.5)
    assert st.usage == pytest.approx(0.5)
    assert st.top_share == pytest.approx(0.6) and st.top_symbol == 1
    assert st.entropy_bits == pytest.approx(-(0.6 * math.log2(0.6) + 0.4 * math.log2(0.4)))
    assert list(run_lengths([1, 1, 1, 2, 2])) == [3, 2]


def test_metrics_runs_do_not_cross_sequences():
    # [1,1] then [1]: two runs (2 + 1), not one run of 3.
    st = token_stats([np.array([1, 1]), np.array([1])], 2)
    assert st.n_runs == 2 and st.mean_run_length == pytest.approx(1.5)
    assert st.n_sequences == 2 and st.n_tokens == 3


def test_metrics_edge_cases():
    assert entropy_bits(np.array([5, 0, 0])) == 0.0
    empty = token_stats([], 4)
    assert empty.n_tokens == 0 and empty.usage == 0.0 and empty.mean_run_length == 0.0 and empty.top_symbol == -1
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        token_stats([np.array([0, 4])], 4)
    st = token_stats([np.array([0, 3, 3])], 4)
    assert type(st).from_dict(st.to_dict()) == st


# ----------------------------------------------------------------------------- k-means codebook


def _blobs(n_per: int, centres: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([c + 0.05 * rng.standard_normal((n_per, centres.shape[1])) for c in centres]).astype(
        np.float32
    )


def test_fit_codebook_finds_the_clusters_and_encode_is_nearest_centroid():
    centres = np.array([[0, 0], [5, 0], [0, 5], [5, 5]], dtype=np.float32)
    x = _blobs(50, centres)
    cb = fit_codebook(x, 4, seed=0, batch_size=64, max_iter=20)
    assert cb.shape == (4, 2) and cb.dtype == np.float32
    # every true centre has a centroid within 0.1
    d = np.linalg.norm(centres[:, None, :] - cb[None], axis=2)
    assert d.min(axis=1).max() < 0.1
    tokens = encode(x, cb)
    assert tokens.dtype == np.int16 and tokens.min() >= 0 and tokens.max() < 4
    brute = np.argmin(((x[:, None, :].astype(np.float64) - cb[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(tokens, brute)
    # each blob maps to one symbol
    assert all(len(set(tokens[i * 50 : (i + 1) * 50])) == 1 for i in range(4))


def test_fit_codebook_is_deterministic_and_seed_dependent():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((600, 6)).astype(np.float32)
    a = fit_codebook(x, 16, seed=7, batch_size=128, max_iter=5)
    b = fit_codebook(x, 16, seed=7, batch_size=128, max_iter=5)
    c = fit_codebook(x, 16, seed=8, batch_size=128, max_iter=5)
    assert codebook_sha256(a) == codebook_sha256(b)
    assert codebook_sha256(a) != codebook_sha256(c)


def test_fit_codebook_too_few_segments_names_tokens_k_and_count():
    x = np.zeros((10, 3), dtype=np.float32)
    with pytest.raises(ParamsError) as err:
        fit_codebook(x, 16, seed=0)
    assert err.value.key == "tokens.k"
    assert "16" in str(err.value) and "10" in str(err.value)


def test_encode_chunks_large_inputs_consistently():
    rng = np.random.default_rng(4)
    cb = rng.standard_normal((256, 64)).astype(np.float32)
    x = rng.standard_normal((700, 64)).astype(np.float32)  # > one chunk (4e6 / (256*64) = 244 rows)
    brute = np.argmin(((x[:, None, :].astype(np.float64) - cb[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(encode(x, cb), brute)


def test_codebook_save_load_roundtrip_and_sha(tmp_path):
    import hashlib

    cb = np.random.default_rng(5).standard_normal((8, 3)).astype(np.float32)
    sha = save_codebook(tmp_path / "codebook.npy", cb)
    assert sha == hashlib.sha256((tmp_path / "codebook.npy").read_bytes()).hexdigest() == codebook_sha256(cb)
    np.testing.assert_array_equal(load_codebook(tmp_path / "codebook.npy"), cb)
    np.save(tmp_path / "bad.npy", np.zeros(3))
    with pytest.raises(InputError, match="bad.npy"):
        load_codebook(tmp_path / "bad.npy")
    with pytest.raises(InputError, match="not found"):
        load_codebook(tmp_path / "missing.npy")
    assert distinct_rows(np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]])) == 2


# ----------------------------------------------------------------------------- config


def test_config_defaults_and_validation():
    cfg = TokensConfig()
    assert cfg.hop_length == 160 and cfg.encoder == "chroma_stft" and cfg.settings()["encoder"] == "chroma_stft"
    assert not {"segment_s", "k", "frames_cache"} & set(cfg.settings())
    cfg2 = from_dict(TokensConfig, {"segment_s": [0.25, 0.35, 0.5], "k": [16, 64, 256]}, "tokens")
    assert cfg2.segment_s == (0.25, 0.35, 0.5) and cfg2.k == (16, 64, 256)
    with pytest.raises(ParamsError, match=r"tokens\.hop_s"):
        from_dict(TokensConfig, {"hop_s": 0.0123}, "tokens")
    with pytest.raises(ParamsError, match=r"tokens\.k\[1\]"):
        from_dict(TokensConfig, {"k": [16, 40000]}, "tokens")
    with pytest.raises(ParamsError, match=r"tokens\.segment_s\[0\]"):
        from_dict(TokensConfig, {"segment_s": [0.001]}, "tokens")
    with pytest.raises(ParamsError, match=r"tokens\.encoder"):
        from_dict(TokensConfig, {"encoder": "mfcc"}, "tokens")
    with pytest.raises(ParamsError, match=r"tokens\.encoder"):
        from_dict(TokensConfig, {"encoder": "chroma"}, "tokens")  # the v1 name: say which chroma
    with pytest.raises(ParamsError, match=r"tokens\.bogus"):
        from_dict(TokensConfig, {"bogus": 1}, "tokens")


def test_config_name_matches_dvc_rendering():
    assert config_name("chroma_stft", 0.5, 16) == "chroma_stft-s0.5-k16"
    assert config_name("chroma_cqt", 0.25, 256) == "chroma_cqt-s0.25-k256"
    assert config_name("logmel", 0.35, 64) == "logmel-s0.35-k64"
    assert config_name("embedder", "0.50", 64) == "embedder-s0.50-k64"  # text from DVC is used verbatim
    with pytest.raises(ValueError, match="unknown encoder"):
        config_name("chroma", 0.5, 16)


# ----------------------------------------------------------------------------- frame encoders


@pytest.mark.parametrize("name", ["chroma_stft", "chroma_cqt"])
def test_chroma_encoder_finds_the_pitch_class_and_zeroes_silence(name):
    from mgdata.testing import tone
    from mgdata.tokens.frames import encode_audio, make_encoder

    sr = 16000
    enc = make_encoder(TokensConfig(), name)
    x = np.concatenate([tone(440.0, 1.5, sr), np.zeros(sr, dtype=np.float32)])  # A4 then 1 s silence
    frames = encode_audio(enc, x, sr, where="a4")
    assert frames.shape == (250, 12) and frames.dtype == np.float32  # ceil(40000 / 160)
    assert np.all(np.argmax(frames[20:130], axis=1) == 9)  # A = pitch class 9 (C=0)
    assert np.all(frames[170:] == 0.0)  # silence -> all-zero chroma
    # resampling path: same tone at 22050 Hz gives the same pitch class
    frames22 = encode_audio(enc, tone(440.0, 1.0, 22050), 22050, where="a4@22k")
    assert frames22.shape == (100, 12) and np.argmax(frames22[50]) == 9
    with pytest.raises(InputError, match="nan-key"):
        encode_audio(enc, np.full(1600, np.nan, dtype=np.float32), sr, where="nan-key")


def test_logmel_encoder_shape_and_level():
    from mgdata.testing import tone
    from mgdata.tokens.frames import LogMelEncoder

    enc = LogMelEncoder(sample_rate=16000, hop_length=160, n_fft=1024, n_mels=32)
    loud, quiet = enc.frames(tone(440.0, 1.0, 16000, amp=0.5)), enc.frames(tone(440.0, 1.0, 16000, amp=0.05))
    assert loud.shape == (100, 32)
    # 20 dB quieter input -> the peak band is 20 dB lower
    assert loud[50].max() - quiet[50].max() == pytest.approx(20.0, abs=0.5)


def test_condense_by_audio_duration_keeps_segments_whose_frames_stop_short():
    # wav2vec2-like: 149 frames at 50/s for 3.0 s of audio; the frames' span (2.98 s) would drop segment 5
    rng = np.random.default_rng(6)
    frames = rng.standard_normal((149, 3))
    assert condense(frames, 50.0, 0.5).shape == (5, 3)
    out = condense(frames, 50.0, 0.5, duration_s=3.0)
    assert out.shape == (6, 3)
    np.testing.assert_allclose(out[5], frames[125:149].mean(axis=0), rtol=1e-5)
    # 3.2 s of audio: the 0.2 s tail holds no frame here, so even keep_partial has nothing to keep
    assert condense(frames, 50.0, 0.5, duration_s=3.2).shape == (6, 3)
    assert condense(frames, 50.0, 0.5, duration_s=3.2, keep_partial=True).shape == (6, 3)
    # a complete segment without frames means the frames do not match the audio: error
    with pytest.raises(ValueError, match="segment 6 has no frame"):
        condense(frames, 50.0, 0.5, duration_s=4.0)


# ----------------------------------------------------------------------------- params / dvc fragments

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_params_section_is_valid_and_every_key_has_a_why_comment():
    import dataclasses

    import yaml

    text = (ROOT / "params.yaml").read_text()
    cfg = from_dict(TokensConfig, yaml.safe_load(text)["tokens"], "tokens")
    assert cfg.encoder == "chroma_stft" and cfg.segment_s == (0.5,) and cfg.k == (16, 64)
    lines = text.split("\ntokens:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    lines = ["# section"] + lines
    keys = [i for i, line in enumerate(lines) if line.startswith("  ") and not line.strip().startswith("#")]
    assert {lines[i].split(":")[0].strip() for i in keys} == {f.name for f in dataclasses.fields(TokensConfig)}
    for i in keys:
        assert lines[i - 1].strip().startswith("#"), f"no comment above {lines[i]!r}"


def test_stft_chroma_gate_matches_librosa_rms_and_bass_resolves():
    import librosa

    from mgdata.testing import tone
    from mgdata.tokens.frames import StftChromaEncoder, _gate_db

    y = tone(220.0, 3.0, 16000) * np.linspace(0, 1, 48000, dtype=np.float32)
    ref = 20 * np.log10(np.maximum(librosa.feature.rms(y=y, frame_length=2048, hop_length=160)[0, :300], 1e-12))
    np.testing.assert_allclose(_gate_db(y, 300, 2048, 160), ref, atol=1e-3)
    enc = StftChromaEncoder()
    for hz, pc in ((65.41, 0), (73.42, 2), (98.0, 7)):  # C2, D2, G2: bass notes keep their pitch class
        assert np.argmax(enc.frames(tone(hz, 1.0, 16000))[50]) == pc


def test_dvc_stage_matrix_and_params_deps_cover_the_config():
    import dataclasses

    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    tok = stages["tokens"]
    assert tok["matrix"] == {"segment_s": "${tokens.segment_s}", "k": "${tokens.k}"}
    assert "data/tokens/${tokens.encoder}-s${item.segment_s}-k${item.k}" in [next(iter(o)) for o in tok["outs"]]
    # every setting that changes the content is a params dep; the grid and the cache folder are not
    deps = {p.removeprefix("tokens.") for p in tok["params"] if isinstance(p, str) and p.startswith("tokens.")}
    expected = {f.name for f in dataclasses.fields(TokensConfig)} - {"segment_s", "k", "frames_cache"}
    assert deps == expected


# ----------------------------------------------------------------------------- encoder registry


def test_encoder_registry_is_lazy_and_names_the_closest_match():
    import subprocess
    import sys

    from mgdata.registry import Registry
    from mgdata.tokens.config import ENCODERS
    from mgdata.tokens.frames import make_encoder

    assert isinstance(ENCODERS, Registry)
    assert set(ENCODERS) == {"chroma_stft", "chroma_cqt", "logmel", "embedder", "musicnn"}
    with pytest.raises(ParamsError, match=r"tokens\.encoder.*'chroma_stf'.*did you mean 'chroma_stft'") as exc:
        make_encoder(TokensConfig(), "chroma_stf")
    assert exc.value.key == "tokens.encoder" and "\n" not in str(exc.value)
    with pytest.raises(ParamsError, match=r"tokens\.encoder.*did you mean 'musicnn'"):
        from_dict(TokensConfig, {"encoder": "musicn"}, "tokens")
    assert config_name("musicnn", 0.5, 16) == "musicnn-s0.5-k16"
    # validating the config never imports torch (the musicnn factory is imported on first use only)
    code = (
        "import sys; from mgdata.config import from_dict; from mgdata.tokens.config import TokensConfig; "
        "from_dict(TokensConfig, {'encoder': 'musicnn'}, 'tokens'); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def musicnn_wheel():
    from mgdata.errors import InputError
    from mgdata.musicnn.model import wheel_dir

    try:
        wheel_dir()
    except InputError as exc:
        pytest.skip(str(exc))


def test_musicnn_encoder_frames_shape_rate_and_patch_seams(musicnn_wheel):
    import torch

    from mgdata.musicnn.frontend import log_mel
    from mgdata.testing import tone
    from mgdata.tokens.frames import MUSICNN_FRAME_LAYERS, encode_audio, make_encoder

    enc = make_encoder(TokensConfig(encoder="musicnn"))
    assert enc.frame_rate == 62.5 and enc.sample_rate == 16000 and enc.layer == "cnn3"
    desc = enc.describe()
    assert desc["id"] == "musicnn" and len(desc["checkpoint_sha256"]) == 64 and desc["dim"] == 64
    x = tone(440.0, 4.0, 22050, amp=0.2)
    frames = encode_audio(enc, x, 22050, where="a4")
    assert frames.shape == (250, 64) and frames.dtype == np.float32  # ceil(64000 / 256)
    assert np.array_equal(frames, encode_audio(enc, x, 22050, where="a4"))
    # frames = the wheel's patches back to back: patch 0 is frames 0-186, the end-aligned last patch the rest
    y = tone(440.0, 4.0, 16000, amp=0.2)
    lm = log_mel(y)  # 251 frames
    with torch.inference_mode():  # one batch, as the encoder runs them (a batch's size can move the last bits)
        first, last = enc.model(torch.from_numpy(np.stack([lm[:187], lm[-187:]])))["cnn3"].numpy()
    got = enc.frames(y)
    np.testing.assert_array_equal(got[:187], first)
    np.testing.assert_array_equal(got[187:250], last[187 - (251 - 187) : 187 - 1])
    short = enc.frames(y[:8000])  # 0.5 s: padded to one patch, trimmed back
    assert short.shape == (32, 64)
    wide = make_encoder(TokensConfig(encoder="musicnn", embedder_params={"layer": "midend"}))
    assert wide.frames(y[:8000]).shape == (32, MUSICNN_FRAME_LAYERS["midend"])


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"layer": "penultimate"}, "tokens.embedder_params.layer"),
        ({"checkpoint": "MSD_vgg"}, "tokens.embedder_params.checkpoint"),
        ({"model": "x"}, "tokens.embedder_params.model"),
    ],
)
def test_musicnn_encoder_params_errors_name_the_key(params, key, musicnn_wheel):
    from mgdata.tokens.frames import make_encoder

    with pytest.raises(ParamsError) as exc:
        make_encoder(TokensConfig(encoder="musicnn", embedder_params=params))
    assert exc.value.key == key
