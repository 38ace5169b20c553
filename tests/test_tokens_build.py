"""End-to-end tests of the tokens builder and stages on a tiny synthetic stem-pairs artifact.

The artifact is written with mgdata.store in the stem-pairs layout of README.md, "Artifact formats".
Training tracks play only the pitch classes C, E, G; validation/test tracks play
only F#, A#, C#, so in chroma space the held-out segments sit far from every
training segment: a codebook that saw them would have centroids with mass there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
from itertools import permutations
from pathlib import Path

import numpy as np
import pytest
import yaml

from mgdata.audio import encode_flac
from mgdata.config import ShardConfig
from mgdata.errors import InputError, ParamsError
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.store import ArtifactWriter, Sample, decode_json, decode_npy, encode_json, fingerprint, iter_samples
from mgdata.testing import tone
from mgdata.tokens import build as build_mod
from mgdata.tokens.build import CODEBOOK_FILE, build_tokens, read_tokens
from mgdata.tokens.condense import condense
from mgdata.tokens.config import TokensConfig
from mgdata.tokens.frames import encode_audio, make_encoder
from mgdata.tokens.vq import load_codebook

SR = 16000
DURATION_S = 3.0
STEMS = ("soprano", "alto", "bass")
# pitch classes (C=0): training sees only C, E, G; held-out splits only C#, F#, A#
TRAIN_PC = (0, 4, 7)
HELD_OUT_PC = (1, 6, 10)
TRACKS = {  # track -> (split, windows, {stem: Hz})
    "trk-a": ("train", 2, {"soprano": 523.25, "alto": 329.63, "bass": 98.00}),   # C5 E4 G2
    "trk-b": ("train", 1, {"soprano": 392.00, "alto": 261.63, "bass": 130.81}),  # G4 C4 C3
    "trk-c": ("train", 1, {"soprano": 659.25, "alto": 392.00, "bass": 164.81}),  # E5 G4 E3
    "trk-d": ("validation", 1, {"soprano": 554.37, "alto": 369.99, "bass": 116.54}),  # C#5 F#4 A#2
    "trk-e": ("test", 1, {"soprano": 466.16, "alto": 277.18, "bass": 185.00}),  # A#4 C#4 F#3
}


def stem_audio(track: str, window: int, stem: str) -> np.ndarray:
    """A tone that switches to its octave in the second half of window 1 (so windows differ)."""
    freq = TRACKS[track][2][stem]
    x = tone(freq, DURATION_S, SR, amp=0.3)
    if window == 1:
        half = len(x) // 2
        x[half:] = tone(2 * freq, DURATION_S - half / SR, SR, amp=0.3)[: len(x) - half]
    return x


def make_stem_pairs(out_dir: Path, *, bad_key: str | None = None, short_track: str | None = None,
                    shards: ShardConfig | None = None) -> Path:
    """Write a stem-pairs artifact: ordered pairs of the 3 stems of every window of every track.

    ``bad_key``: that pair's ``a.flac`` is not audio. ``short_track``: that track's stems last 0.3 s.
    """
    shards = shards or ShardConfig(max_samples=5)
    fp = fingerprint("test-stem-pairs", bad_key, short_track)
    prov = Provenance(builder="test", source="tests", source_version="1", licence="CC0", seed=0, params_hash=fp)
    plan = []
    for track, (split, n_windows, _) in TRACKS.items():
        for w in range(n_windows):
            for a, b in permutations(STEMS, 2):
                plan.append((split, track, w, a, b))
    with ArtifactWriter(out_dir, fingerprint=fp, provenance=prov, shards=shards) as writer:
        for split, track, w, a, b in sorted(plan):
            key = f"{track}_w{w:04d}_{a}_{b}"
            meta = {"pair_key": key, "track_id": track, "window_index": w, "start_s": 10.0 * w,
                    "length_s": DURATION_S, "stem_a": a, "stem_b": b, "instrument_a": "Violin",
                    "instrument_b": "Cello", "split": split, "source": "test", "sample_rate": SR,
                    "provenance": prov.sample_dict()}
            n = int(0.3 * SR) if track == short_track else None
            a_bytes = encode_flac(stem_audio(track, w, a)[:n], SR)
            if key == bad_key:
                a_bytes = b"not a flac file"
            b_bytes = encode_flac(stem_audio(track, w, b)[:n], SR)
            writer.write(split, Sample(key, {"a.flac": a_bytes, "b.flac": b_bytes,
                                             "json": encode_json(meta)}, seconds=DURATION_S))
    return out_dir


N_TRAIN_STEMS = 3 * 2 + 3 + 3  # trk-a has 2 windows
N_STEMS = N_TRAIN_STEMS + 3 + 3
N_PAIRS = 6 * (2 + 1 + 1 + 1 + 1)
NO_CACHE = TokensConfig(segment_s=(0.5,), k=(4, 8), max_iter=10, batch_size=64, frames_cache="")


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory) -> Path:
    return make_stem_pairs(tmp_path_factory.mktemp("tokens") / "stems")


@pytest.fixture(scope="module")
def cfg(tmp_path_factory) -> TokensConfig:
    """Test settings with a frame cache private to this module (filled by the first build)."""
    return dataclasses.replace(NO_CACHE, frames_cache=str(tmp_path_factory.mktemp("frames-cache")))


@pytest.fixture(scope="module")
def built(pairs_dir, cfg, tmp_path_factory):
    """One k=4 build, with the vectors handed to fit_codebook captured."""
    seen = []
    real_fit = build_mod.fit_codebook

    def spy(vectors, k, **kw):
        seen.append(np.array(vectors, copy=True))
        return real_fit(vectors, k, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(build_mod, "fit_codebook", spy)
    out = tmp_path_factory.mktemp("out") / "s0.5-k4"
    report = StageReport("tokens")
    try:
        result = build_tokens(pairs_dir, out, cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig(max_samples=4),
                              report=report)
    finally:
        mp.undo()
    return result, out, seen, report


def _held_out_mass(v: np.ndarray) -> np.ndarray:
    return np.asarray(v)[..., list(HELD_OUT_PC)].max(axis=-1)


def test_tokens_are_int16_in_range_with_one_token_per_segment(built):
    result, out, _, _ = built
    samples = list(read_tokens(out))
    assert len(samples) == N_PAIRS
    for s in samples:
        for side in ("a_tokens", "b_tokens"):
            t = s[side]
            assert t.dtype == np.int16 and t.shape == (int(DURATION_S / 0.5),)
            assert t.min() >= 0 and t.max() < 4
        meta = s["meta"]
        assert meta["pair_key"] == s["key"] and meta["split"] == s["split"]
        assert meta["segment_s"] == 0.5 and meta["k"] == 4
        assert meta["encoder"]["id"] == "chroma_cqt"
        assert meta["codebook_sha256"] == result.codebook_sha256
        assert meta["provenance"]["licence"] == "CC0" and meta["provenance"]["seed"] == 0
    assert {s["split"] for s in samples} == {"train", "validation", "test"}


def test_codebook_file_matches_sha_and_result(built):
    result, out, _, _ = built
    cb = load_codebook(out / CODEBOOK_FILE)
    assert cb.shape == (4, 12) and cb.dtype == np.float32
    np.testing.assert_array_equal(cb, result.codebook)
    assert hashlib.sha256((out / CODEBOOK_FILE).read_bytes()).hexdigest() == result.codebook_sha256
    info = json.loads((out / "artifact.json").read_text())
    assert info["tokens"]["codebook_sha256"] == result.codebook_sha256 and info["samples"] == N_PAIRS


def test_kmeans_fit_sees_training_segments_only(built, cfg):
    result, _, seen, _ = built
    assert len(seen) == 1
    fit_vectors = seen[0]
    # exactly the training stems' segments: 12 distinct stems x 6 segments, each stem once
    assert fit_vectors.shape == (N_TRAIN_STEMS * 6, 12)
    assert result.counts["train_segments"] == N_TRAIN_STEMS * 6
    assert _held_out_mass(fit_vectors).max() < 0.1
    # held-out segments really are far away in feature space ...
    enc = make_encoder(cfg)
    held = condense(encode_audio(enc, stem_audio("trk-d", 0, "alto"), SR, where="d"), enc.frame_rate, 0.5)
    assert _held_out_mass(held).min() > 0.9
    # ... and no centroid moved toward them
    assert _held_out_mass(result.codebook).max() < 0.1


def test_each_distinct_stem_is_encoded_once(built):
    result, _, _, report = built
    # not 2 x pairs: each distinct stem once; trk-b soprano and trk-c alto are the same
    # G4 tone (same bytes), so the content-addressed frame cache already hits once
    assert result.counts["stems_encoded"] == N_STEMS - 1
    assert result.counts["stems_frames_cached"] == 1
    assert result.counts["stems_tokenised"] == N_STEMS
    assert result.counts["pairs_written"] == N_PAIRS and result.counts["pairs_skipped"] == 0
    assert not report.skipped
    # shared stems give identical tokens in every pair they appear in
    by_stem = {}
    for key, (a, b) in result.tokens.items():
        track, w, sa, sb = key.split("_")[0], key.split("_")[1], key.split("_")[2], key.split("_")[3]
        for stem, toks in ((sa, a), (sb, b)):
            prev = by_stem.setdefault((track, w, stem), toks)
            np.testing.assert_array_equal(prev, toks)


def test_metrics_overall_and_per_split(built):
    result, _, _, report = built
    d = result.to_dict()
    assert set(d["splits"]) == {"train", "validation", "test"}
    assert d["overall"]["n_sequences"] == N_STEMS and d["overall"]["n_tokens"] == N_STEMS * 6
    assert sum(s["n_tokens"] for s in d["splits"].values()) == d["overall"]["n_tokens"]
    assert 0 < d["overall"]["usage"] <= 1 and d["overall"]["entropy_bits"] <= 2.0 + 1e-9
    # steady tones: long runs (window 1 of trk-a changes octave halfway, same pitch class)
    assert d["overall"]["mean_run_length"] >= 3.0
    rep = report.to_dict()
    assert rep["overall"] == d["overall"] and rep["pairs_written"] == N_PAIRS


def test_two_builds_are_byte_identical(built, pairs_dir, tmp_path):
    result, out, _, _ = built
    out2 = tmp_path / "again"
    # no frame cache: everything recomputed from the audio
    result2 = build_tokens(pairs_dir, out2, cfg=NO_CACHE, segment_s=0.5, k=4, shards=ShardConfig(max_samples=4))
    assert result2.counts["stems_encoded"] == N_STEMS
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(p.name for p in out2.iterdir())
    assert any(f.endswith(".tar") for f in files)
    for name in files:
        assert (out / name).read_bytes() == (out2 / name).read_bytes(), name
    assert result2.codebook_sha256 == result.codebook_sha256


def test_frame_cache_hits_give_identical_tokens_without_encoding(built, pairs_dir, cfg):
    result, _, _, _ = built
    again = build_tokens(pairs_dir, None, cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig(max_samples=4))
    assert again.counts["stems_encoded"] == 0 and again.counts["stems_frames_cached"] == N_STEMS
    assert again.codebook_sha256 == result.codebook_sha256
    assert again.tokens.keys() == result.tokens.keys()
    for key, (a, b) in result.tokens.items():
        np.testing.assert_array_equal(again.tokens[key][0], a)
        np.testing.assert_array_equal(again.tokens[key][1], b)
    # another segment length reuses the same frames
    other = build_tokens(pairs_dir, None, cfg=cfg, segment_s=1.0, k=4, shards=ShardConfig())
    assert other.counts["stems_encoded"] == 0
    assert len(next(iter(other.tokens.values()))[0]) == int(DURATION_S / 1.0)


def test_resume_after_lost_shard_reproduces_the_same_bytes(built, pairs_dir, cfg, tmp_path):
    import shutil

    _, out, _, _ = built
    work = tmp_path / "resume"
    shutil.copytree(out, work)
    victim = work / "train-000002.tar"
    victim.write_bytes(victim.read_bytes()[:1000])  # truncated shard -> rebuilt, earlier shards reused
    (work / CODEBOOK_FILE).unlink()
    result = build_tokens(pairs_dir, work, cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig(max_samples=4))
    # resume is per split: train-000000/1 (8 pairs) plus the intact test and validation shards (6 + 6)
    assert result.counts["pairs_resumed"] == 20
    assert result.counts["pairs_resumed"] + result.counts["pairs_written"] == N_PAIRS
    for p in out.iterdir():
        assert (work / p.name).read_bytes() == p.read_bytes(), p.name


def test_too_few_training_segments_is_a_clear_error(pairs_dir, cfg):
    with pytest.raises(ParamsError) as err:
        build_tokens(pairs_dir, None, cfg=cfg, segment_s=0.5, k=100, shards=ShardConfig())
    msg = str(err.value)
    assert err.value.key == "tokens.k" and "k=100" in msg and f"only {N_TRAIN_STEMS * 6} segments" in msg


def test_bad_and_too_short_stems_skip_their_pairs_and_are_named(tmp_path, cfg):
    bad_key = "trk-d_w0000_alto_bass"
    src = make_stem_pairs(tmp_path / "stems", bad_key=bad_key, short_track="trk-e")
    report = StageReport("tokens")
    result = build_tokens(src, None, cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig(), report=report)
    # the broken a.flac is carried by one sample only (the other trk-d alto pairs hold a good copy)
    short_keys = sorted(f"trk-e_w0000_{a}_{b}" for a, b in permutations(STEMS, 2))
    assert result.counts["pairs_skipped"] == 1 + 6
    assert sorted(s["item"] for s in report.skipped) == sorted([bad_key, *short_keys])
    bad = next(s for s in report.skipped if s["item"] == bad_key)
    assert bad["reason"] == (f"bad stem audio: {bad_key}/a.flac: undecodable audio "
                             "(Error opening audio bytes: Format not recognised.)")
    assert report.skipped_by_reason == {"bad stem audio": 1, "too short": 6}
    assert bad_key not in result.tokens and len(result.tokens) == N_PAIRS - 7
    assert "test" not in result.stats  # the only test track was too short
    strict = dataclasses.replace(cfg, strict=True)
    # strict: the first bad copy in stream order (test shards come first) raises, naming it
    with pytest.raises(InputError, match="trk-e_w0000_alto_bass/a.flac: too short"):
        build_tokens(src, None, cfg=strict, segment_s=0.5, k=4, shards=ShardConfig())


def _load_stage(name: str):
    path = Path(__file__).resolve().parents[1] / "stages" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"stage_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_stages_write_artifacts_and_summary(pairs_dir, cfg, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "tokens": {"segment_s": [0.5], "k": [4, 8], "max_iter": 10, "batch_size": 64,
                   "frames_cache": cfg.frames_cache},
        "shards": {"max_samples": 16},
    }))
    tokens_stage, summary_stage = _load_stage("tokens"), _load_stage("tokens_summary")
    for k in (4, 8):
        assert tokens_stage.main(["--params", str(params), "--segment-s", "0.5", "--k", str(k), "--stems",
                                  str(pairs_dir), "--out-root", str(tmp_path / "data"),
                                  "--metrics-dir", str(tmp_path / "metrics")]) == 0
    assert (tmp_path / "data" / "s0.5-k8" / CODEBOOK_FILE).exists()
    per = json.loads((tmp_path / "metrics" / "s0.5-k8.json").read_text())
    assert per["k"] == 8 and per["pairs_written"] == N_PAIRS and per["overall"]["k"] == 8
    assert summary_stage.main(["--params", str(params), "--metrics-dir", str(tmp_path / "metrics"),
                               "--out", str(tmp_path / "tokens.json")]) == 0
    summary = json.loads((tmp_path / "tokens.json").read_text())
    assert summary["n_configs"] == 2 and list(summary["configs"]) == ["s0.5-k4", "s0.5-k8"]
    entry = summary["configs"]["s0.5-k8"]
    assert entry["k"] == 8 and entry["usage"] == per["overall"]["usage"]
    assert set(entry["splits"]) == {"train", "validation", "test"}
    # a configuration of the grid without metrics is named in the error
    params.write_text(yaml.safe_dump({"tokens": {"segment_s": [0.5], "k": [4, 16]}}))
    with pytest.raises(Exception, match="s0.5-k16"):
        summary_stage.main(["--params", str(params), "--metrics-dir", str(tmp_path / "metrics"),
                            "--out", str(tmp_path / "tokens.json")])
    # shards written by the stage decode to int16 tokens
    for s in iter_samples(tmp_path / "data" / "s0.5-k8"):
        assert decode_npy(s["a_tokens.npy"]).dtype == np.int16
        assert decode_json(s["json"])["k"] == 8


def test_registry_embedder_frames_feed_the_condenser(pairs_dir):
    # logmel with stats off yields 50 frames/s log-mel frames through the embed registry
    cfg = TokensConfig(encoder="embedder", embedder="logmel", embedder_params={"stats": False}, frames_cache="",
                       max_iter=10, batch_size=64)
    enc = make_encoder(cfg)
    assert enc.frame_rate == 50.0 and enc.describe()["embedder"]["id"] == "logmel"
    result = build_tokens(pairs_dir, None, cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig())
    assert result.codebook.shape == (4, 64)
    assert all(len(a) == 6 and a.dtype == np.int16 for a, _ in result.tokens.values())
    # an embedder without time frames cannot be condensed: clear error naming the key
    with pytest.raises(ParamsError, match=r"tokens\.embedder"):
        make_encoder(dataclasses.replace(cfg, embedder_params={"stats": True}))


@pytest.mark.slow
def test_build_with_tiny_random_wav2vec2(pairs_dir, tmp_path):
    from mgdata.embed.testing_models import make_tiny_wav2vec2

    model = make_tiny_wav2vec2(tmp_path / "w2v")
    cfg = TokensConfig(encoder="embedder", embedder="hf", embedder_params={"model": str(model), "layers": [-1]},
                       frames_cache="", max_iter=10, batch_size=64)
    a = build_tokens(pairs_dir, tmp_path / "a", cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig())
    b = build_tokens(pairs_dir, tmp_path / "b", cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig())
    assert a.codebook.shape == (4, 32) and a.codebook_sha256 == b.codebook_sha256
    assert all(len(t) == 6 and t.dtype == np.int16 and t.max() < 4 for t, _ in a.tokens.values())
    for p in sorted((tmp_path / "a").glob("*.tar")):
        assert p.read_bytes() == (tmp_path / "b" / p.name).read_bytes()
