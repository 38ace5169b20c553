"""Stems stored once: window arithmetic, stem-windows + pair index, exclusion, silence, near-duplicates, splits,
labels, executors, determinism, bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from mgdata.audio import decode_audio, encode_flac
from mgdata.config import ShardConfig, from_dict
from mgdata.errors import MgdataError, ParamsError
from mgdata.exec import ExecConfig
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.sources.multitrack import MultitrackTrack, TrackError, iter_corpus_tracks, list_corpus_track_ids
from mgdata.splits import assign_splits
from mgdata.stems.build import PAIRS_FILE, build_stems, build_stems_stage, chroma_correlation
from mgdata.stems.config import StemsConfig
from mgdata.stems.pairs import is_excluded, ordered_pairs
from mgdata.stems.records import PairRecord, StemWindowRecord, TrackLabels, read_pairs
from mgdata.stems.windows import Window, cut_window, plan_windows, window_samples
from mgdata.store import ArtifactWriter, Sample, decode_json, encode_json, iter_samples, read_artifact_info
from mgdata.testing import make_corpus_artifact, tone

REPO = Path(__file__).resolve().parents[1]
SR = 22050
SMALL = dict(window_s=1.0, overlap_s=0.5)  # hop 0.5 s: fast tests with the same arithmetic


# ----------------------------------------------------------------------------- windows


def starts_s(windows, sr=SR):
    return [w.start_s(sr) for w in windows]


def test_default_windows_on_30s_track():
    n = 30 * SR
    wins = plan_windows(n, SR, window_s=15.0, overlap_s=5.0)
    assert starts_s(wins) == [0.0, 10.0]
    assert all(w.length == 15 * SR and w.valid == w.length for w in wins)
    padded = plan_windows(n, SR, window_s=15.0, overlap_s=5.0, keep_partial=True)
    assert starts_s(padded) == [0.0, 10.0, 20.0]
    assert padded[-1].partial and padded[-1].valid == 10 * SR and padded[-1].index == 2


@pytest.mark.parametrize("keep_partial", [False, True])
def test_exact_multiple_has_no_partial(keep_partial):
    # 25 s = window + 1 hop: the 10-25 s window reaches the end, nothing is left over.
    wins = plan_windows(25 * SR, SR, window_s=15.0, overlap_s=5.0, keep_partial=keep_partial)
    assert starts_s(wins) == [0.0, 10.0] and not any(w.partial for w in wins)
    assert len(plan_windows(15 * SR, SR, window_s=15.0, overlap_s=5.0, keep_partial=keep_partial)) == 1


@pytest.mark.parametrize("keep_partial", [False, True])
def test_shorter_than_one_window_gives_none(keep_partial):
    assert plan_windows(15 * SR - 1, SR, window_s=15.0, overlap_s=5.0, keep_partial=keep_partial) == []
    assert plan_windows(0, SR, window_s=15.0, overlap_s=5.0, keep_partial=keep_partial) == []


def test_one_sample_past_a_multiple():
    win, hop = window_samples(15.0, 5.0, SR)
    assert (win, hop) == (330750, 220500)
    assert len(plan_windows(win + 1, SR, window_s=15.0, overlap_s=5.0)) == 1
    wins = plan_windows(win + 1, SR, window_s=15.0, overlap_s=5.0, keep_partial=True)
    assert [w.start for w in wins] == [0, hop] and wins[1].valid == win + 1 - hop


def test_window_rounding_and_validation():
    # 0.1 s at 44100 Hz is 4410.000000000001 samples as a float product.
    assert window_samples(0.3, 0.2, 44100) == (13230, 4410)
    for bad in [(0.0, 0.0), (1.0, 1.0), (1.0, -0.1)]:
        with pytest.raises(ValueError):
            window_samples(*bad, SR)
    with pytest.raises(ValueError):
        Window(0, 0, 10, 11)
    assert Window.from_dict(Window(1, 5, 10, 7).to_dict()) == Window(1, 5, 10, 7)


def test_cut_window_pads_partial():
    x = np.arange(10, dtype=np.float32) + 1
    seg = cut_window(x, Window(1, 6, 8, 4))
    np.testing.assert_array_equal(seg, [7, 8, 9, 10, 0, 0, 0, 0])
    with pytest.raises(ValueError):
        cut_window(x, Window(0, 6, 8, 8))


# ----------------------------------------------------------------------------- pairs, config


def test_ordered_pairs_and_exclusion():
    for n in range(5):
        names = [f"s{i}" for i in range(n)]
        pairs = ordered_pairs(names)
        assert len(pairs) == n * (n - 1) == len(set(pairs)) and all(a != b for a, b in pairs)
    assert ordered_pairs(["a", "b"]) == [("a", "b"), ("b", "a")]
    with pytest.raises(ValueError):
        ordered_pairs(["a", "a"])
    excluded = ["drums", "Percussion", "FX", "other keys"]
    assert is_excluded("DRUMS", excluded) and is_excluded("percussion", excluded)
    assert is_excluded("fx", excluded) and is_excluded("other_keys", excluded)
    assert not is_excluded("drums_2", excluded) and not is_excluded("bass", excluded)


def test_config_defaults_match_params_file_and_validate():
    data = yaml.safe_load((REPO / "params.yaml").read_text())["stems"]
    assert from_dict(StemsConfig, data, "stems") == StemsConfig()
    assert StemsConfig().hop_s == 10.0
    with pytest.raises(ParamsError, match="stems.overlap_s"):
        from_dict(StemsConfig, {"overlap_s": 15.0}, "stems")
    with pytest.raises(ParamsError, match="stems.moisesdb_root"):
        from_dict(StemsConfig, {"source": "moisesdb"}, "stems")
    with pytest.raises(ParamsError, match="stems.source"):
        from_dict(StemsConfig, {"source": "musdb"}, "stems")


# ----------------------------------------------------------------------------- builder

# Distinct pitch classes (C, E, G, B flat, D): no two stems double each other.
SEMITONES = (0, 4, 7, 10, 2)


def make_track(
    track_id: str,
    names=("soprano", "alto", "tenor", "bass"),
    dur_s=2.0,
    split=None,
    silent=(),
    instruments=None,
    meta=None,
):
    """Tones at distinct pitch classes per stem; stems in ``silent`` are zero in [1.0 s, end)."""
    stems = {}
    for i, name in enumerate(names):
        x = tone(261.63 * 2 ** (SEMITONES[i % len(SEMITONES)] / 12), dur_s, SR, 0.2)
        if name in silent:
            x[SR:] = 0.0
        stems[name] = x
    return MultitrackTrack(
        track_id,
        stems,
        SR,
        instruments or {n: f"inst-{n}" for n in names},
        source="test",
        licence="CC0",
        split=split,
        meta=meta or {},
    )


def cfg_small(**kw) -> StemsConfig:
    return StemsConfig(**{**SMALL, **kw})


def records(res) -> list[StemWindowRecord]:
    return [StemWindowRecord.from_dict(decode_json(s.members["json"])) for s in res.samples]


def test_stem_windows_stored_once_and_pairs_indexed_minus_silent():
    # 2 s, 1 s windows, 0.5 s hop -> windows at 0, 0.5, 1.0 s. "tenor" is silent from 1.0 s: window 2.
    track = make_track(
        "t0",
        silent=("tenor",),
        split="train",
        meta={"quadrant": "activated_pleasant", "mood": ["happy"], "style": "bach"},
    )
    report = StageReport("stems")
    res = build_stems([track], None, cfg=cfg_small(), shards=ShardConfig(), report=report)
    assert res.windows == 3 and res.silent_stem_windows == 1 and res.silent_by_stem == {"tenor": 1}
    assert res.stem_windows == 4 + 4 + 3 == len(res.samples)
    assert res.n_pairs == 12 + 12 + 6 == len(res.pairs)
    s = res.samples[0]
    assert s.key == "t0_w000_s00" and sorted(s.members) == ["flac", "json"]
    rec = records(res)[0]
    assert set(rec.to_dict()) == {
        "key",
        "track_id",
        "window_index",
        "start_s",
        "length_s",
        "stem_index",
        "stem",
        "instrument",
        "split",
        "quadrant",
        "mood",
        "style",
        "source",
        "sample_rate",
        "provenance",
    }
    assert (rec.key, rec.stem, rec.instrument, rec.start_s, rec.length_s) == (
        "t0_w000_s00",
        "soprano",
        "inst-soprano",
        0.0,
        1.0,
    )
    assert (rec.quadrant, rec.mood, rec.style) == ("activated_pleasant", ["happy"], "bach")
    assert StemWindowRecord.from_dict(rec.to_dict()) == rec
    assert {"source", "licence", "seed"} <= set(rec.provenance)
    a, _ = decode_audio(s.members["flac"])
    np.testing.assert_allclose(a, track.stems["soprano"][:SR], atol=1e-4)
    # The pair index: ordered pairs, both directions, keys of stored stem-windows of the same window.
    keys = {r.key for r in records(res)}
    by_window = {}
    for p in res.pairs:
        assert p.a_key in keys and p.b_key in keys and p.track_id == "t0" and p.split == "train"
        by_window.setdefault(p.window_index, set()).add((p.stem_a, p.stem_b))
    assert {w: len(v) for w, v in by_window.items()} == {0: 12, 1: 12, 2: 6}
    assert all((b, a) in v for v in by_window.values() for a, b in v)
    assert all("tenor" not in p for p in by_window[2])
    assert res.pairs[0] == PairRecord(
        "t0_w000_s00_s01", "t0_w000_s00", "t0_w000_s01", "t0", 0, "soprano", "alto", "train"
    )
    assert report.values["pairs_per_split"] == {"train": 30} and report.values["pairs_train"] == 30


def test_excluded_stem_types_never_stored_or_paired():
    track = make_track(
        "t0",
        names=("vocals", "Drums", "bass", "FX", "percussion", "organ"),
        split="train",
        instruments={"organ": "Timpani"},
    )
    res = build_stems([track], None, cfg=cfg_small(), shards=ShardConfig())
    assert {r.stem for r in records(res)} == {"vocals", "bass"} and res.n_pairs == 3 * 2
    # "organ" is excluded through its instrument (GM timpani: unpitched), listed under its stem name.
    assert res.excluded_stems == {"drums": 1, "fx": 1, "percussion": 1, "organ": 1}
    res2 = build_stems([track], None, cfg=cfg_small(exclude_stems=["vocals"]), shards=ShardConfig())
    assert res2.n_pairs == 3 * 5 * 4


def test_near_duplicate_pairs_are_dropped_and_counted():
    t = np.arange(2 * SR) / SR
    melody = np.where(t < 1.0, 261.63, 392.0)  # C then G
    phase = 2 * np.pi * np.cumsum(melody) / SR
    stems = {
        "a": 0.2 * np.sin(phase),
        "b": 0.2 * np.sin(2 * phase),  # b doubles a an octave higher
        "c": 0.2 * np.sin(2 * np.pi * 329.63 * t),
    }  # c holds an E
    track = MultitrackTrack("dup", {k: v.astype(np.float32) for k, v in stems.items()}, SR, split="train")
    res = build_stems([track], None, cfg=cfg_small(), shards=ShardConfig())
    assert res.pairs_near_duplicate == 2 * res.windows  # (a, b) and (b, a) in every window
    assert {(p.stem_a, p.stem_b) for p in res.pairs} == {("a", "c"), ("c", "a"), ("b", "c"), ("c", "b")}
    keep_all = build_stems([track], None, cfg=cfg_small(duplicate_corr=1.0), shards=ShardConfig())
    assert keep_all.pairs_near_duplicate == 0 and keep_all.n_pairs == 6 * keep_all.windows
    # The statistic itself: identical chroma -> 1, silent frames ignored, no common sounding frame -> nan.
    x = np.abs(np.random.default_rng(0).standard_normal((5, 12)))
    assert chroma_correlation(x, x) == pytest.approx(1.0)
    assert np.isnan(chroma_correlation(x, np.zeros_like(x)))


def test_unpaired_stem_windows_are_not_stored():
    track = make_track("t0", names=("a", "b"), silent=("b",), split="train")
    res = build_stems([track], None, cfg=cfg_small(), shards=ShardConfig())
    # window 2 has only "a": nothing to pair it with, so it is counted and not stored
    assert res.stem_windows == 4 and res.stem_windows_unpaired == 1 and res.n_pairs == 4


def test_short_track_too_few_stems_and_nan_audio_are_skipped_with_reasons():
    nan = make_track("nan", split="train")
    nan.stems["alto"][100] = np.nan
    tracks = [
        make_track("short", dur_s=0.9, split="train"),
        make_track("solo", names=("vocals", "drums"), split="train"),
        nan,
        make_track("ok", split="train"),
    ]
    report = StageReport("stems")
    res = build_stems(tracks, None, cfg=cfg_small(), shards=ShardConfig(), report=report)
    assert res.tracks_in == 4 and res.tracks_used == 1 and res.tracks_too_short == 1 and res.tracks_bad_audio == 1
    assert res.silent_stem_windows == 0  # NaN is bad audio, never "silent"
    reasons = {s["item"]: s["reason"] for s in report.skipped}
    assert reasons == {
        "short": "shorter than one window: 0.900 s < 1.0 s",
        "solo": "too few stems to pair: 1 left after excluding unpitched/excluded types",
        "nan": "bad audio: stem 'alto' has NaN or inf samples",
    }


def test_keep_partial_pads_last_window():
    track = make_track("t0", dur_s=2.25, split="train")
    res = build_stems([track], None, cfg=cfg_small(keep_partial=True), shards=ShardConfig())
    last = [s for s, r in zip(res.samples, records(res)) if r.window_index == 3]
    assert len(last) == 4
    a, _ = decode_audio(last[0].members["flac"])
    assert a.shape == (SR,) and np.all(a[SR // 4 * 3 + 10 :] == 0) and np.any(a[: SR // 2] != 0)


def test_split_isolation_and_fractions():
    tracks = [make_track(f"trk{i:02d}", names=("a", "b")) for i in range(20)]
    res = build_stems(tracks, None, cfg=cfg_small(seed=3), shards=ShardConfig())
    split_of = {}
    for r in records(res):
        assert split_of.setdefault(r.track_id, r.split) == r.split
    assert split_of == assign_splits([t.track_id for t in tracks], seed=3)
    assert all(p.split == split_of[p.track_id] for p in res.pairs)
    assert res.tracks_per_split == {"train": 16, "validation": 2, "test": 2}
    src = [make_track("x", split="test"), make_track("y", split="test")]
    assert build_stems(src, None, cfg=cfg_small(), shards=ShardConfig()).tracks_per_split == {"test": 2}
    res3 = build_stems(src, None, cfg=cfg_small(keep_source_split=False), shards=ShardConfig())
    expected = {}
    for split in assign_splits(["x", "y"], seed=0).values():
        expected[split] = expected.get(split, 0) + 1
    assert res3.tracks_per_split == expected != {"test": 2}


def test_loud_track_is_rescaled_not_clipped():
    track = make_track("t0", names=("a", "b"), split="train")
    track.stems["a"] = track.stems["a"] * 10.0  # peak 2.0
    res = build_stems([track], None, cfg=cfg_small(), shards=ShardConfig())
    assert res.tracks_rescaled == 1
    a, _ = decode_audio(res.samples[0].members["flac"])
    b, _ = decode_audio(res.samples[1].members["flac"])
    assert np.max(np.abs(a)) <= 1.0 and np.max(np.abs(a)) > 0.95
    assert np.max(np.abs(a)) / np.max(np.abs(b)) == pytest.approx(10.0, rel=1e-2)


def test_silence_is_judged_on_real_audio_not_padding():
    # 1.1 s, 1 s windows without overlap: the partial window holds 0.1 s of audio (-17 dBFS tone);
    # with its 0.9 s of padding it would measure -27 dBFS and fall below -20 dBFS.
    track = make_track("t0", names=("a", "b"), dur_s=1.1, split="train")
    cfg = StemsConfig(window_s=1.0, overlap_s=0.0, keep_partial=True, silence_db=-20.0)
    res = build_stems([track], None, cfg=cfg, shards=ShardConfig())
    assert res.windows == 2 and res.silent_stem_windows == 0 and res.n_pairs == 4


def test_multitrack_record_validation_and_roundtrip():
    with pytest.raises(MgdataError, match="same length"):
        MultitrackTrack("t", {"a": np.zeros(10), "b": np.zeros(11)}, SR)
    with pytest.raises(MgdataError, match="mono"):
        MultitrackTrack("t", {"a": np.zeros((2, 10))}, SR)
    t = make_track("t0", split="train")
    back = MultitrackTrack.from_dict(t.to_dict(include_audio=True))
    assert back.to_dict() == t.to_dict() and back.duration_s == 2.0
    np.testing.assert_array_equal(back.stems["alto"], t.stems["alto"])
    assert t.resampled(11025).n_samples == 2 * 11025


# ----------------------------------------------------------------------------- corpus input, stage


def test_corpus_reader_groups_stems(tmp_path):
    corpus = make_corpus_artifact(tmp_path / "corpus", n_tracks=4, n_stems=3, duration_s=2.0, sr=16000)
    report = StageReport("stems")
    tracks = list(iter_corpus_tracks(corpus / "stems", sample_rate=8000, report=report))
    assert len(tracks) == 4 and not report.skipped
    ids = [f"synth-{i:03d}" for i in range(4)]
    assert sorted(t.track_id for t in tracks) == sorted(list_corpus_track_ids(corpus / "stems")) == ids
    t = tracks[0]
    assert list(t.stems) == ["soprano", "alto", "tenor"] and t.sample_rate == 8000 and t.n_samples == 16000
    assert t.split in {"train", "validation", "test"} and t.source == "corpus"
    assert t.licence == "synthetic test audio (CC0)"
    # The stems of each track sum to its mix.
    mix = {s["__key__"]: decode_audio(s["flac"])[0] for s in iter_samples(corpus / "mix")}
    full = list(iter_corpus_tracks(corpus / "stems", report=report))
    for tr in full:
        np.testing.assert_allclose(sum(tr.stems.values()), mix[tr.track_id], atol=3e-4)


def write_stem_artifact(out: Path, stems_by_track: dict[str, list[bytes]], declared_sr: int = SR) -> Path:
    """A corpus-layout stems artifact with the given flac bytes per stem."""
    prov = Provenance(builder="testing", source="t", source_version="1", licence="CC0", seed=0, params_hash="x")
    with ArtifactWriter(out, fingerprint="fp", provenance=prov, shards=ShardConfig()) as w:
        for track_id, flacs in sorted(stems_by_track.items()):
            for i, data in enumerate(flacs):
                meta = {
                    "track_id": track_id,
                    "stem_index": i,
                    "stem": f"part{i}",
                    "instrument": "Organ",
                    "program": 19,
                    "split": "train",
                    "sample_rate": declared_sr,
                    "duration_s": 2.0,
                    "provenance": prov.sample_dict(),
                }
                w.write("train", Sample(f"{track_id}_s{i:02d}", {"flac": data, "json": encode_json(meta)}))
    return out


@pytest.mark.parametrize("case", ["unreadable", "short", "rate"])
def test_corpus_bad_stem_skips_track_naming_key(tmp_path, case):
    good = [encode_flac(tone(220.0 * (i + 1), 2.0, SR), SR) for i in range(3)]
    bad = list(good)
    bad[1] = {
        "unreadable": b"fLaC garbage",
        "short": encode_flac(tone(330.0, 1.5, SR), SR),
        "rate": encode_flac(tone(330.0, 2.0, 16000), 16000),
    }[case]
    art = write_stem_artifact(tmp_path / "stems", {"a-ok": good, "b-bad": bad, "c-ok": good})
    report = StageReport("stems")
    tracks = list(iter_corpus_tracks(art, report=report))
    assert [t.track_id for t in tracks] == ["a-ok", "c-ok"]
    (skip,) = report.skipped
    assert skip["item"] == "b-bad" and "b-bad_s01" in skip["reason"]
    expected = {
        "unreadable": "unreadable audio",
        "short": "stem length mismatch",
        "rate": "sample rate mismatch: b-bad_s01: json declares 22050 Hz, the flac is 16000 Hz",
    }[case]
    assert skip["reason"].startswith(expected)
    assert "0x" not in skip["reason"]  # deterministic text, no object reprs
    with pytest.raises(TrackError, match="b-bad_s01"):
        list(iter_corpus_tracks(art, fail_on_error=True))


def tree_hashes(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_stage_on_corpus_default_windows_with_manifest_labels(tmp_path):
    # The default 15/5 windows on 30 s corpus tracks: 2 windows per track (0-15 s, 10-25 s).
    corpus = make_corpus_artifact(tmp_path / "corpus", n_tracks=3, n_stems=2, duration_s=30.0, sr=SR)
    import polars as pl

    manifest = tmp_path / "manifest.parquet"
    pl.DataFrame(
        {
            "track_id": [f"synth-{i:03d}" for i in range(3)],
            "quadrant": ["a", "b", None],
            "mood": [["happy"], ["sad", "dark"], None],
            "style": ["bach"] * 3,
        }
    ).write_parquet(manifest)
    report = StageReport("stems")
    out = tmp_path / "stems"
    # duplicate_corr=1.0: the synthetic corpus' second stem is the first an octave up (a near-duplicate).
    res = build_stems_stage(
        StemsConfig(sample_rate=SR, duplicate_corr=1.0),
        ShardConfig(max_samples=4),
        corpus_stems_dir=corpus / "stems",
        out_dir=out,
        manifest=manifest,
        report=report,
        progress=False,
    )
    m = report.metrics()
    assert m["windows"] == 6 and m["stem_windows"] == 12 and m["pairs"] == 12 and res.n_pairs == 12
    corpus_split = assign_splits([f"synth-{i:03d}" for i in range(3)], seed=0)
    samples = list(iter_samples(out, verify=True))
    assert len(samples) == 12
    labels = {"synth-000": ("a", ["happy"]), "synth-001": ("b", ["sad", "dark"]), "synth-002": (None, None)}
    for s in samples:
        rec = StemWindowRecord.from_dict(decode_json(s["json"]))
        assert rec.split == corpus_split[rec.track_id] == s["__split__"]
        assert rec.start_s in (0.0, 10.0) and rec.length_s == 15.0
        assert (rec.quadrant, rec.mood) == labels[rec.track_id] and rec.style == "bach"
    info = read_artifact_info(out)
    assert info["provenance"]["extra"]["upstream_provenance"]["source"] == "mgdata.testing"
    pairs = read_pairs(out)
    assert pairs == res.pairs and len(pairs) == 12
    assert info["files"][PAIRS_FILE]["sha256"] == hashlib.sha256((out / PAIRS_FILE).read_bytes()).hexdigest()
    assert not (out / "pairs").exists()


def test_materialized_pairs_match_the_index(tmp_path):
    corpus = make_corpus_artifact(tmp_path / "corpus", n_tracks=3, n_stems=3, duration_s=3.0, sr=16000)
    out = tmp_path / "stems"
    res = build_stems_stage(
        cfg_small(sample_rate=16000, materialize_pairs=True, duplicate_corr=1.0),
        ShardConfig(max_samples=8),
        corpus_stems_dir=corpus / "stems",
        out_dir=out,
        progress=False,
    )
    flac = {s["__key__"]: s["flac"] for s in iter_samples(out)}
    pair_samples = list(iter_samples(out / "pairs", verify=True))
    assert [s["__key__"] for s in pair_samples] == [
        p.pair_key for p in sorted(res.pairs, key=lambda p: ["test", "train", "validation"].index(p.split))
    ]
    by_key = {p.pair_key: p for p in res.pairs}
    for s in pair_samples:
        p = by_key[s["__key__"]]
        assert s["a.flac"] == flac[p.a_key] and s["b.flac"] == flac[p.b_key]
        assert decode_json(s["json"])["stem_b"] == p.stem_b
    # Stored once: the stem-window shards are a fraction of the materialised pairs.
    once = sum(p.stat().st_size for p in out.glob("*.tar"))
    pairs = sum(p.stat().st_size for p in (out / "pairs").glob("*.tar"))
    assert pairs > 2.5 * once
    # Switching the option off removes the stale pair shards.
    build_stems_stage(
        cfg_small(sample_rate=16000, duplicate_corr=1.0),
        ShardConfig(max_samples=8),
        corpus_stems_dir=corpus / "stems",
        out_dir=out,
        progress=False,
    )
    assert not (out / "pairs").exists()


def test_deterministic_resumable_and_executor_independent(tmp_path):
    corpus = make_corpus_artifact(tmp_path / "corpus", n_tracks=5, n_stems=3, duration_s=3.0, sr=16000)
    cfg = cfg_small(sample_rate=16000, materialize_pairs=True)
    shards = ShardConfig(max_samples=7)
    outs = {}
    for name, ex in (("serial", ExecConfig(backend="serial")), ("process2", ExecConfig(backend="process", workers=2))):
        build_stems_stage(
            cfg, shards, corpus_stems_dir=corpus / "stems", out_dir=tmp_path / name, executor=ex, progress=False
        )
        outs[name] = tree_hashes(tmp_path / name)
    assert outs["serial"] == outs["process2"]
    assert any(k.endswith(".tar") for k in outs["serial"]) and PAIRS_FILE in outs["serial"]
    # Interrupted run: drop the last train shard; the rebuild reuses the rest and gives the same bytes.
    shard = sorted((tmp_path / "serial").glob("train-*.tar"))[-1]
    shard.unlink()
    report = StageReport("stems")
    build_stems_stage(
        cfg, shards, corpus_stems_dir=corpus / "stems", out_dir=tmp_path / "serial", report=report, progress=False
    )
    assert report.run_counts["resumed_samples"] > 0
    assert tree_hashes(tmp_path / "serial") == outs["serial"]
    # A params change changes the fingerprint.
    other = build_stems_stage(
        cfg_small(sample_rate=16000, silence_db=-20.0),
        shards,
        corpus_stems_dir=corpus / "stems",
        out_dir=None,
        progress=False,
    )
    assert other.fingerprint != read_artifact_info(tmp_path / "serial")["fingerprint"]


def test_track_labels_roundtrip():
    lab = TrackLabels("activated_pleasant", ("happy",), "bach")
    assert TrackLabels.from_dict(lab.to_dict()) == lab and TrackLabels.from_dict({}) == TrackLabels()


def test_moisesdb_tracks_feed_the_same_builder(tmp_path):
    import json as _json

    import soundfile as sf

    root = tmp_path / "moisesdb"
    sr_file = 44100
    for i in range(10):
        track_dir = root / f"{i:02d}-track"
        entries = []
        stems = {
            "vocals": ("lead_female_singer", tone(440.0, 2.0, sr_file, 0.2)),
            "bass": ("bass_guitar", tone(130.81, 2.0, sr_file, 0.2)),
            "drums": ("kick_drum", np.random.default_rng(i).standard_normal(2 * sr_file).astype(np.float32) * 0.1),
            "guitar": ("acoustic_guitar", tone(329.63, 2.0, sr_file, 0.2)),
        }
        for s_i, (name, (track_type, audio)) in enumerate(stems.items()):
            (track_dir / name).mkdir(parents=True)
            sf.write(track_dir / name / f"t{i}-{s_i}.wav", audio, sr_file, subtype="FLOAT")
            entries.append(
                {
                    "stemName": name,
                    "id": f"stem-{s_i}",
                    "tracks": [{"id": f"t{i}-{s_i}", "trackType": track_type, "extension": "wav"}],
                }
            )
        (track_dir / "data.json").write_text(
            _json.dumps({"song": "S", "artist": "A", "genre": "Pop", "stems": entries})
        )
    cfg = StemsConfig(source="moisesdb", moisesdb_root=str(root), window_s=1.0, overlap_s=0.5, sample_rate=SR)
    out = tmp_path / "stems"
    res = build_stems_stage(cfg, ShardConfig(max_samples=16), out_dir=out, progress=False)
    # 2 s tracks, 1 s windows, 0.5 s hop -> 3 windows; drums excluded -> 3 stems -> 6 pairs per window.
    assert res.tracks_used == 10 and res.windows == 30 and res.stem_windows == 90 and res.n_pairs == 180
    assert res.excluded_stems == {"drums": 10} and res.pairs_near_duplicate == 0
    assert res.pairs_per_split == {"train": 144, "validation": 18, "test": 18}
    info = read_artifact_info(out)
    assert info["provenance"]["source"] == "moisesdb"
    rec = StemWindowRecord.from_dict(decode_json(next(iter_samples(out))["json"]))
    assert rec.source == "moisesdb" and rec.style == "Pop" and rec.quadrant is None and rec.sample_rate == SR
    assert rec.instrument in {"lead_female_singer", "bass_guitar", "acoustic_guitar"}
    assert len(read_pairs(out)) == 180
