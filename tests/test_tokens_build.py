"""End-to-end tests of the tokens builder on a tiny stems artifact (stem-windows stored once + pair index).

The stems artifact is built with :func:`mgdata.stems.build.build_stems`. Training
tracks play only the pitch classes C, E, G; validation/test tracks play only C#,
F#, A#, so in chroma space the held-out segments sit far from every training
segment: a codebook that saw them would have centroids with mass there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mgdata.audio import decode_audio, encode_flac
from mgdata.config import ShardConfig
from mgdata.errors import InputError, ParamsError
from mgdata.exec import ExecConfig
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.sources.multitrack import MultitrackTrack
from mgdata.stems.build import build_stems
from mgdata.stems.config import StemsConfig
from mgdata.stems.records import read_pairs
from mgdata.store import ArtifactWriter, Sample, iter_samples, read_artifact_info
from mgdata.testing import tone
from mgdata.tokens import build as build_mod
from mgdata.tokens.build import (
    CODEBOOK_FILE,
    PAIRS_FILE,
    TokenRecord,
    build_tokens,
    pair_mutual_information,
    read_token_pairs,
    read_tokens,
)
from mgdata.tokens.condense import condense
from mgdata.tokens.config import TokensConfig
from mgdata.tokens.frames import encode_audio, make_encoder
from mgdata.tokens.summary import grid_names, summarize
from mgdata.tokens.vq import encode, load_codebook

SR = 16000
STEMS = ("soprano", "alto", "bass")
# pitch classes (C=0): training sees only C, E, G; held-out splits only C#, F#, A#
HELD_OUT_PC = (1, 6, 10)
TRACKS = {  # track -> (split, duration_s, {stem: Hz})
    "trk-a": ("train", 5.0, {"soprano": 523.25, "alto": 329.63, "bass": 98.00}),  # C5 E4 G2
    "trk-b": ("train", 3.0, {"soprano": 392.00, "alto": 261.63, "bass": 130.81}),  # G4 C4 C3
    "trk-c": ("train", 3.0, {"soprano": 659.25, "alto": 392.00, "bass": 164.81}),  # E5 G4 E3
    "trk-d": ("validation", 3.0, {"soprano": 554.37, "alto": 369.99, "bass": 116.54}),  # C#5 F#4 A#2
    "trk-e": ("test", 3.0, {"soprano": 466.16, "alto": 277.18, "bass": 185.00}),  # A#4 C#4 F#3
}
# 3 s windows every 2 s: trk-a (5 s) has 2 overlapping windows, the others one.
STEMS_CFG = StemsConfig(sample_rate=SR, window_s=3.0, overlap_s=1.0)
N_TRAIN_WINDOWS = 3 * 2 + 3 + 3
N_WINDOWS = N_TRAIN_WINDOWS + 3 + 3
# trk-b's alto and bass are both a C, trk-c's soprano and bass both an E: near-duplicates, dropped by stems.
N_PAIRS = 6 * 6 - 2 - 2
SEGMENTS = 6  # 3 s / 0.5 s
NO_CACHE = TokensConfig(segment_s=(0.5,), k=(4, 8), max_iter=10, batch_size=64, frames_cache="")


def stem_audio(track: str, stem: str) -> np.ndarray:
    """A tone; trk-a switches to the octave at 4 s (inside its second window), so its windows differ."""
    _, dur, freqs = TRACKS[track]
    x = tone(freqs[stem], dur, SR, amp=0.3)
    if dur > 4.0:
        x[4 * SR :] = tone(2 * freqs[stem], dur, SR, amp=0.3)[4 * SR :]
    return x


def make_stems(out_dir: Path) -> Path:
    tracks = [
        MultitrackTrack(
            t,
            {s: stem_audio(t, s) for s in STEMS},
            SR,
            source="test",
            licence="CC0",
            split=split,
            meta={"quadrant": "activated_pleasant", "mood": ["happy"], "style": "bach"},
        )
        for t, (split, _, _) in TRACKS.items()
    ]
    build_stems(tracks, out_dir, cfg=STEMS_CFG, shards=ShardConfig(max_samples=5))
    return out_dir


@pytest.fixture(scope="module")
def stems_dir(tmp_path_factory) -> Path:
    return make_stems(tmp_path_factory.mktemp("tokens") / "stems")


@pytest.fixture(scope="module")
def cfg(tmp_path_factory) -> TokensConfig:
    """Test settings with a frame cache private to this module (filled by the first build)."""
    return dataclasses.replace(NO_CACHE, frames_cache=str(tmp_path_factory.mktemp("frames-cache")))


@pytest.fixture(scope="module")
def built(stems_dir, cfg, tmp_path_factory):
    """One k=4 build; the vectors handed to fit_codebook and the audio handed to the encoder are captured."""
    fit_seen, enc_seen = [], []
    real_fit, real_enc = build_mod.fit_codebook, build_mod.encode_audio

    def fit_spy(vectors, k, **kw):
        fit_seen.append(np.array(vectors, copy=True))
        return real_fit(vectors, k, **kw)

    def enc_spy(encoder, audio, sr, *, where):
        enc_seen.append((where, len(audio)))
        return real_enc(encoder, audio, sr, where=where)

    mp = pytest.MonkeyPatch()
    mp.setattr(build_mod, "fit_codebook", fit_spy)
    mp.setattr(build_mod, "encode_audio", enc_spy)
    out = tmp_path_factory.mktemp("out") / "chroma_stft-s0.5-k4"
    report = StageReport("tokens")
    try:  # serial executor (the default): the spies see the work
        result = build_tokens(
            stems_dir, out, cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig(max_samples=4), report=report
        )
    finally:
        mp.undo()
    return result, out, fit_seen, enc_seen, report


def _held_out_mass(v: np.ndarray) -> np.ndarray:
    return np.asarray(v)[..., list(HELD_OUT_PC)].max(axis=-1)


def tree_hashes(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir()) if p.is_file()}


def test_one_int16_sequence_per_stem_window_with_labels(built, stems_dir):
    result, out, _, _, _ = built
    samples = list(read_tokens(out))
    stem_keys = [s["__key__"] for s in iter_samples(stems_dir)]
    assert [s["key"] for s in samples] == stem_keys and len(samples) == N_WINDOWS
    for s in samples:
        t = s["tokens"]
        assert t.dtype == np.int16 and t.shape == (SEGMENTS,) and t.min() >= 0 and t.max() < 4
        meta = s["meta"]
        assert set(meta) == {
            "key",
            "track_id",
            "window_index",
            "stem_index",
            "stem",
            "split",
            "quadrant",
            "mood",
            "style",
            "segment_s",
            "k",
            "encoder",
            "codebook_sha256",
            "n_tokens",
            "provenance",
        }
        rec = TokenRecord.from_dict(meta)
        assert rec.key == s["key"] and rec.split == s["split"] and rec.to_dict() == meta
        assert (rec.segment_s, rec.k, rec.encoder, rec.n_tokens) == (0.5, 4, "chroma_stft", SEGMENTS)
        assert (rec.quadrant, rec.mood, rec.style) == ("activated_pleasant", ["happy"], "bach")
        assert rec.codebook_sha256 == result.codebook_sha256
        assert meta["provenance"]["licence"] == "CC0" and meta["provenance"]["seed"] == 0
    assert {s["split"] for s in samples} == {"train", "validation", "test"}


def test_codebook_and_pair_index_side_files(built, stems_dir):
    result, out, _, _, _ = built
    cb = load_codebook(out / CODEBOOK_FILE)
    assert cb.shape == (4, 12) and cb.dtype == np.float32
    np.testing.assert_array_equal(cb, result.codebook)
    assert hashlib.sha256((out / CODEBOOK_FILE).read_bytes()).hexdigest() == result.codebook_sha256
    info = read_artifact_info(out)
    assert info["tokens"]["codebook_sha256"] == result.codebook_sha256 and info["samples"] == N_WINDOWS
    assert info["tokens"]["encoder"]["id"] == "chroma_stft"
    assert read_pairs(out) == read_pairs(stems_dir) == result.pairs and len(result.pairs) == N_PAIRS
    assert set(info["files"]) >= {CODEBOOK_FILE, PAIRS_FILE}
    for name in (CODEBOOK_FILE, PAIRS_FILE):
        assert info["files"][name]["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    # pairs assemble from the per-stem-window sequences, without stored duplicates
    pairs = list(read_token_pairs(out, split="validation"))
    assert len(pairs) == 6 and all(p["split"] == "validation" for p in pairs)
    p0 = pairs[0]
    a_key = f"{p0['track_id']}_w000_s{STEMS.index(p0['stem_a']):02d}"
    np.testing.assert_array_equal(p0["a_tokens"], result.tokens[a_key])


def test_kmeans_fit_sees_training_segments_only(built, cfg):
    result, _, fit_seen, _, _ = built
    (fit_vectors,) = fit_seen
    assert fit_vectors.shape == (N_TRAIN_WINDOWS * SEGMENTS, 12)
    assert result.counts["train_segments"] == N_TRAIN_WINDOWS * SEGMENTS
    # (the STFT's window leaks a low note into its neighbour pitch class: G2 gives G# ~0.3, never ~1)
    assert _held_out_mass(fit_vectors).max() < 0.4
    # held-out segments really are far away in feature space ...
    enc = make_encoder(cfg)
    held = condense(encode_audio(enc, stem_audio("trk-d", "alto"), SR, where="d"), enc.frame_rate, 0.5)
    assert _held_out_mass(held).min() > 0.9
    # ... and no centroid moved toward them
    assert _held_out_mass(result.codebook).max() < 0.4


def test_each_stem_is_encoded_once_per_track_and_cut_in_frame_space(built, stems_dir, cfg):
    result, _, _, enc_seen, report = built
    # 5 tracks x 3 stems, not one encode per stem-window (18): trk-a's two windows are stitched back
    assert len(enc_seen) == 15 and result.counts["runs_encoded"] == 15
    assert ("trk-a_w000_s01..trk-a_w001_s01", 5 * SR) in enc_seen
    assert result.counts["stem_windows_written"] == N_WINDOWS and not report.skipped
    # window 1 of trk-a starts at 2 s: its tokens are the full stem's frames 200..500, condensed and quantised
    flac = {s["__key__"]: s["flac"] for s in iter_samples(stems_dir)}
    w0, _ = decode_audio(flac["trk-a_w000_s01"])
    w1, _ = decode_audio(flac["trk-a_w001_s01"])
    full = np.concatenate([w0, w1[len(w0) - 2 * SR :]])
    assert len(full) == 5 * SR
    frames = encode_audio(make_encoder(cfg), full, SR, where="full")
    expected = encode(condense(frames[200:500], 100.0, 0.5, duration_s=3.0), result.codebook)
    np.testing.assert_array_equal(result.tokens["trk-a_w001_s01"], expected)


def test_metrics_are_numbers_with_splits_and_pair_information(built):
    result, _, _, _, report = built
    m = report.metrics()
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in m.values())
    assert m["n_sequences"] == N_WINDOWS and m["n_tokens"] == N_WINDOWS * SEGMENTS
    assert m["train_n_tokens"] + m["validation_n_tokens"] + m["test_n_tokens"] == m["n_tokens"]
    assert 0 < m["usage"] <= 1 and m["entropy_bits"] <= 2.0 + 1e-9 and m["mean_run_length"] >= 3.0
    assert m["pairs_kept"] == N_PAIRS and m["stem_windows_written"] == N_WINDOWS
    assert m["pair_mi_pairs"] == 12 and m["pair_mi_bits"] >= 0 and m["pair_mi_shuffled_bits"] >= 0
    assert "runs_encoded" not in m  # depends on the frame cache, not on the data
    assert result.to_dict()["overall"]["n_tokens"] == m["n_tokens"]


def test_pair_mutual_information():
    a = np.array([0, 1, 2, 3] * 8, dtype=np.int16)
    assert pair_mutual_information([(a, a)], 4) == pytest.approx(2.0)  # B determined by A: log2(4) bits
    assert pair_mutual_information([(a, np.zeros_like(a))], 4) == 0.0  # constant B: nothing shared
    assert pair_mutual_information([], 4) == 0.0


def test_serial_and_process_pool_give_identical_bytes(built, stems_dir, tmp_path):
    result, out, _, _, _ = built
    # no frame cache: everything recomputed from the audio, in two worker processes
    res2 = build_tokens(
        stems_dir,
        tmp_path / "p2",
        cfg=NO_CACHE,
        segment_s=0.5,
        k=4,
        shards=ShardConfig(max_samples=4),
        executor=ExecConfig(backend="process", workers=2),
    )
    assert res2.counts["runs_encoded"] == 15
    files = tree_hashes(out)
    assert any(f.endswith(".tar") for f in files) and {CODEBOOK_FILE, PAIRS_FILE} <= set(files)
    assert tree_hashes(tmp_path / "p2") == files
    assert res2.codebook_sha256 == result.codebook_sha256


def test_frame_cache_hits_give_identical_tokens_without_encoding(built, stems_dir, cfg):
    result, _, _, _, _ = built
    again = build_tokens(stems_dir, None, cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig(max_samples=4))
    assert again.counts["runs_encoded"] == 0 and again.counts["runs_cached"] == 15
    assert again.codebook_sha256 == result.codebook_sha256 and again.tokens.keys() == result.tokens.keys()
    for key, toks in result.tokens.items():
        np.testing.assert_array_equal(again.tokens[key], toks)
    # another segment length reuses the same frames
    other = build_tokens(stems_dir, None, cfg=cfg, segment_s=1.0, k=4, shards=ShardConfig())
    assert other.counts["runs_encoded"] == 0 and len(next(iter(other.tokens.values()))) == 3


def test_resume_after_lost_shard_reproduces_the_same_bytes(built, stems_dir, cfg, tmp_path):
    import shutil

    _, out, _, _, _ = built
    work = tmp_path / "resume"
    shutil.copytree(out, work)
    victim = work / "train-000002.tar"
    victim.write_bytes(victim.read_bytes()[:1000])  # truncated shard -> rebuilt, earlier shards reused
    (work / CODEBOOK_FILE).unlink()
    report = StageReport("tokens")
    build_tokens(stems_dir, work, cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig(max_samples=4), report=report)
    assert report.run_counts["resumed_samples"] == 8 + 3 + 3  # train-000000/1 and the intact held-out shards
    assert tree_hashes(work) == tree_hashes(out)


def test_too_few_training_segments_is_a_clear_error(stems_dir, cfg):
    with pytest.raises(ParamsError) as err:
        build_tokens(stems_dir, None, cfg=cfg, segment_s=0.5, k=100, shards=ShardConfig())
    msg = str(err.value)
    assert err.value.key == "tokens.k" and "k=100" in msg and f"only {N_TRAIN_WINDOWS * SEGMENTS} segments" in msg


def test_bad_stem_windows_are_skipped_with_their_pairs_and_named(stems_dir, cfg, tmp_path):
    bad, wrong_rate = "trk-d_w000_s01", "trk-e_w000_s00"
    src = tmp_path / "stems"
    info = read_artifact_info(stems_dir)
    prov = Provenance.from_dict(info["provenance"])
    with ArtifactWriter(src, fingerprint="bad", provenance=prov, shards=ShardConfig()) as w:
        for s in iter_samples(stems_dir):
            members = {"flac": s["flac"], "json": s["json"]}
            if s["__key__"] == bad:
                members["flac"] = b"not a flac file"
            if s["__key__"] == wrong_rate:
                members["flac"] = encode_flac(decode_audio(s["flac"])[0], 22050)
            w.write(s["__split__"], Sample(s["__key__"], members))
        (src / "pairs.parquet").write_bytes((stems_dir / "pairs.parquet").read_bytes())
    report = StageReport("tokens")
    result = build_tokens(src, None, cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig(), report=report)
    reasons = {s["item"]: s["reason"] for s in report.skipped}
    assert reasons == {
        bad: f"bad stem audio: {bad}: undecodable audio (Error opening audio bytes: Format not recognised.)",
        wrong_rate: f"bad stem audio: {wrong_rate}: sample rate mismatch: json declares 16000 Hz, the flac is 22050 Hz",
    }
    assert bad not in result.tokens and len(result.tokens) == N_WINDOWS - 2
    assert result.counts["pairs_kept"] == N_PAIRS - 4 - 4  # each bad window was in 4 ordered pairs
    assert all(bad not in (p.a_key, p.b_key) for p in result.pairs)
    with pytest.raises(InputError, match=wrong_rate):  # the first in stream order (test shards first)
        build_tokens(src, None, cfg=dataclasses.replace(cfg, strict=True), segment_s=0.5, k=4, shards=ShardConfig())


def test_summary_reads_flat_metrics(tmp_path, built):
    _, _, _, _, report = built
    assert grid_names("chroma_stft", [0.5, 0.25], [4, 8]) == [
        "chroma_stft-s0.5-k4",
        "chroma_stft-s0.5-k8",
        "chroma_stft-s0.25-k4",
        "chroma_stft-s0.25-k8",
    ]
    report.write(tmp_path / "chroma_stft-s0.5-k4.json")
    summary = summarize(tmp_path, ["chroma_stft-s0.5-k4"])
    entry = summary["configs"]["chroma_stft-s0.5-k4"]
    assert summary["n_configs"] == 1 and entry["k"] == 4 and entry["usage"] == report.metrics()["usage"]
    with pytest.raises(Exception, match="logmel-s0.5-k8"):
        summarize(tmp_path, ["logmel-s0.5-k8"])
    assert json.loads((tmp_path / "chroma_stft-s0.5-k4.json").read_text())["k"] == 4


def test_registry_embedder_frames_feed_the_condenser(stems_dir):
    # logmel with stats off yields 50 frames/s log-mel frames through the embed registry
    cfg = TokensConfig(
        encoder="embedder",
        embedder="logmel",
        embedder_params={"stats": False},
        frames_cache="",
        max_iter=10,
        batch_size=64,
    )
    enc = make_encoder(cfg, "embedder")
    assert enc.frame_rate == 50.0 and enc.describe()["embedder"]["id"] == "logmel"
    result = build_tokens(stems_dir, None, cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig())
    assert result.codebook.shape == (4, 64)
    assert all(len(t) == 6 and t.dtype == np.int16 for t in result.tokens.values())
    # an embedder without time frames cannot be condensed: clear error naming the key
    with pytest.raises(ParamsError, match=r"tokens\.embedder"):
        make_encoder(dataclasses.replace(cfg, embedder_params={"stats": True}))


def test_musicnn_frames_feed_the_condenser(stems_dir, tmp_path):
    from mgdata.musicnn.model import wheel_dir

    try:
        wheel_dir()
    except InputError as exc:
        pytest.skip(str(exc))
    cfg = dataclasses.replace(NO_CACHE, encoder="musicnn", frames_cache=str(tmp_path / "cache"))
    first = build_tokens(stems_dir, None, cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig())
    assert first.codebook.shape == (4, 64)  # cnn3
    assert first.tokens and all(len(t) == SEGMENTS and t.dtype == np.int16 for t in first.tokens.values())
    again = build_tokens(stems_dir, None, cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig())  # from the frame cache
    assert np.array_equal(first.codebook, again.codebook)
    assert all(np.array_equal(first.tokens[key], again.tokens[key]) for key in first.tokens)


@pytest.mark.slow
def test_build_with_tiny_random_wav2vec2(stems_dir, tmp_path):
    from mgdata.embed.testing_models import make_tiny_wav2vec2

    model = make_tiny_wav2vec2(tmp_path / "w2v")
    cfg = TokensConfig(
        encoder="embedder",
        embedder="hf",
        embedder_params={"model": str(model), "layers": [-1]},
        frames_cache="",
        max_iter=10,
        batch_size=64,
    )
    a = build_tokens(stems_dir, tmp_path / "a", cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig())
    b = build_tokens(stems_dir, tmp_path / "b", cfg=cfg, segment_s=0.5, k=4, shards=ShardConfig())
    assert a.codebook.shape == (4, 32) and a.codebook_sha256 == b.codebook_sha256
    assert all(len(t) == 6 and t.dtype == np.int16 and t.max() < 4 for t in a.tokens.values())
    for p in sorted((tmp_path / "a").glob("*.tar")):
        assert p.read_bytes() == (tmp_path / "b" / p.name).read_bytes()


def test_stage_functions_through_stage_main(tmp_path):
    """stems -> tokens@0.5-4 -> tokens_summary through the pipeline's stage_main (registry specs)."""
    import yaml

    from mgdata.pipeline import stage_main
    from mgdata.testing import make_corpus_artifact

    corpus = make_corpus_artifact(tmp_path / "corpus", n_tracks=6, n_stems=3, duration_s=4.0, sr=SR)
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "stems": {"sample_rate": SR, "window_s": 2.0, "overlap_s": 0.5},
                "tokens": {"segment_s": [0.5], "k": [4], "max_iter": 10, "batch_size": 64, "frames_cache": ""},
                "shards": {"max_samples": 16},
                "executor": {"backend": "serial"},
            }
        )
    )
    common = ["--params", str(params), "--no-progress"]
    stems = tmp_path / "stems"
    assert (
        stage_main(
            "stems",
            [
                *common,
                "--corpus-stems",
                str(corpus / "stems"),
                "--manifest",
                str(corpus / "manifest.parquet"),
                "--out-dir",
                str(stems),
                "--metrics",
                str(tmp_path / "m" / "stems.json"),
            ],
        )
        == 0
    )
    m = json.loads((tmp_path / "m" / "stems.json").read_text())
    assert m["stem_windows"] > 0 and m["pairs"] == len(read_pairs(stems))
    assert all(isinstance(v, (int, float)) for v in m.values())
    assert (
        stage_main(
            "tokens",
            [
                *common,
                "--segment-s",
                "0.5",
                "--k",
                "4",
                "--stems",
                str(stems),
                "--out-root",
                str(tmp_path / "tokens"),
                "--metrics",
                str(tmp_path / "m" / "tokens" / "chroma_stft-s0.5-k4.json"),
                "--report",
                str(tmp_path / "r" / "tokens" / "chroma_stft-s0.5-k4.json"),
            ],
        )
        == 0
    )
    assert (tmp_path / "tokens" / "chroma_stft-s0.5-k4" / CODEBOOK_FILE).exists()
    tm = json.loads((tmp_path / "m" / "tokens" / "chroma_stft-s0.5-k4.json").read_text())
    # The metrics file keeps the headline; every number is in the stage report.
    assert set(tm) == {"segment_s", "k", "usage", "entropy_bits", "pair_mi_bits", "pair_mi_shuffled_bits", "skipped"}
    tr = json.loads((tmp_path / "r" / "tokens" / "chroma_stft-s0.5-k4.json").read_text())
    assert tr["k"] == 4 and tr["stem_windows_written"] == m["stem_windows"] and tr["usage"] == tm["usage"]
    assert (
        stage_main(
            "tokens_summary",
            [
                *common,
                "--reports-dir",
                str(tmp_path / "r" / "tokens"),
                "--metrics",
                str(tmp_path / "m" / "tokens.json"),
                "--plots",
                str(tmp_path / "plots" / "tokens" / "stats.csv"),
            ],
        )
        == 0
    )
    summary = json.loads((tmp_path / "m" / "tokens.json").read_text())
    assert summary["n_configs"] == 1
    table = (tmp_path / "plots" / "tokens" / "stats.csv").read_text().splitlines()
    assert table[0].startswith("config,") and table[1].startswith("chroma_stft-s0.5-k4,")
