"""Stem-pair windows: window arithmetic, pairing, exclusion, silence, splits, determinism, bad input."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from mgdata.audio import decode_audio, encode_flac
from mgdata.config import ShardConfig, from_dict
from mgdata.errors import MgdataError, ParamsError
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.sources.multitrack import MultitrackTrack, TrackError, iter_corpus_tracks, list_corpus_track_ids
from mgdata.splits import assign_splits
from mgdata.stems.build import build_stem_pairs, build_stems_stage
from mgdata.stems.config import StemsConfig
from mgdata.stems.pairs import is_excluded, ordered_pairs
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


def make_track(track_id: str, names=("soprano", "alto", "tenor", "bass"), dur_s=2.0, split=None, silent=()):
    """Tones per stem; stems in ``silent`` are zero in [1.0 s, end)."""
    stems = {}
    for i, name in enumerate(names):
        x = tone(220.0 * (i + 1), dur_s, SR, 0.2)
        if name in silent:
            x[SR:] = 0.0
        stems[name] = x
    return MultitrackTrack(track_id, stems, SR, {n: f"inst-{n}" for n in names}, source="test",
                           licence="CC0", split=split)


def cfg_small(**kw) -> StemsConfig:
    return StemsConfig(**{**SMALL, **kw})


def test_pair_counts_per_window_minus_silent():
    # 2 s, 1 s windows, 0.5 s hop -> windows at 0, 0.5, 1.0 s. "tenor" is silent from 1.0 s: window 2.
    track = make_track("t0", silent=("tenor",), split="train")
    report = StageReport("stems")
    res = build_stem_pairs([track], None, cfg=cfg_small(), shards=ShardConfig(), report=report)
    assert res.windows == 3 and res.silent_stem_windows == 1 and res.silent_by_stem == {"tenor": 1}
    assert res.pairs == 12 + 12 + 6 == len(res.samples)
    per_window = {}
    for s in res.samples:
        meta = decode_json(s.members["json"])
        per_window.setdefault(meta["window_index"], []).append((meta["stem_a"], meta["stem_b"]))
    assert {k: len(v) for k, v in per_window.items()} == {0: 12, 1: 12, 2: 6}
    assert all("tenor" not in p for p in per_window[2])
    s = res.samples[0]
    assert s.key == "t0_w0000_soprano_alto" and sorted(s.members) == ["a.flac", "b.flac", "json"]
    meta = decode_json(s.members["json"])
    assert set(meta) == {"pair_key", "track_id", "window_index", "start_s", "length_s", "stem_a", "stem_b",
                         "instrument_a", "instrument_b", "split", "source", "sample_rate", "provenance"}
    assert (meta["pair_key"], meta["instrument_b"], meta["start_s"], meta["length_s"]) == (
        s.key, "inst-alto", 0.0, 1.0)
    assert {"source", "licence", "seed"} <= set(meta["provenance"])
    a, _ = decode_audio(s.members["a.flac"])
    b, _ = decode_audio(s.members["b.flac"])
    np.testing.assert_allclose(a, track.stems["soprano"][:SR], atol=1e-4)
    np.testing.assert_allclose(b, track.stems["alto"][:SR], atol=1e-4)
    assert report.to_dict()["pairs_per_split"] == {"train": 30}


def test_excluded_stem_types_never_paired():
    track = make_track("t0", names=("vocals", "Drums", "bass", "FX", "percussion"), split="train")
    res = build_stem_pairs([track], None, cfg=cfg_small(), shards=ShardConfig())
    stems = {decode_json(s.members["json"])["stem_a"] for s in res.samples}
    assert stems == {"vocals", "bass"} and res.pairs == 3 * 2
    assert res.excluded_stems == {"drums": 1, "fx": 1, "percussion": 1}
    res2 = build_stem_pairs([track], None, cfg=cfg_small(exclude_stems=["vocals"]), shards=ShardConfig())
    assert res2.pairs == 3 * 4 * 3


def test_short_track_and_too_few_stems_are_counted():
    tracks = [make_track("short", dur_s=0.9, split="train"), make_track("solo", names=("vocals", "drums"),
                                                                      split="train"),
              make_track("ok", split="train")]
    report = StageReport("stems")
    res = build_stem_pairs(tracks, None, cfg=cfg_small(), shards=ShardConfig(), report=report)
    assert res.tracks_in == 3 and res.tracks_used == 1 and res.tracks_too_short == 1
    reasons = {s["item"]: s["reason"] for s in report.skipped}
    assert reasons["short"].startswith("shorter than one window") and reasons["solo"].startswith("too few stems")


def test_keep_partial_pads_last_window():
    track = make_track("t0", dur_s=2.25, split="train")
    res = build_stem_pairs([track], None, cfg=cfg_small(keep_partial=True), shards=ShardConfig())
    last = [s for s in res.samples if decode_json(s.members["json"])["window_index"] == 3]
    assert len(last) == 12
    a, _ = decode_audio(last[0].members["a.flac"])
    assert a.shape == (SR,) and np.all(a[SR // 4 * 3 + 10:] == 0) and np.any(a[: SR // 2] != 0)


def test_split_isolation_and_fractions():
    tracks = [make_track(f"trk{i:02d}", names=("a", "b")) for i in range(20)]
    res = build_stem_pairs(tracks, None, cfg=cfg_small(seed=3), shards=ShardConfig())
    split_of = {}
    for s in res.samples:
        meta = decode_json(s.members["json"])
        assert split_of.setdefault(meta["track_id"], meta["split"]) == meta["split"]
    assert split_of == assign_splits([t.track_id for t in tracks], seed=3)
    assert res.tracks_per_split == {"train": 16, "validation": 2, "test": 2}
    # A source split is kept unless keep_source_split is false.
    src = [make_track("x", split="test"), make_track("y", split="test")]
    assert build_stem_pairs(src, None, cfg=cfg_small(), shards=ShardConfig()).tracks_per_split == {"test": 2}
    res3 = build_stem_pairs(src, None, cfg=cfg_small(keep_source_split=False), shards=ShardConfig())
    expected = {}
    for split in assign_splits(["x", "y"], seed=0).values():
        expected[split] = expected.get(split, 0) + 1
    assert res3.tracks_per_split == expected != {"test": 2}


def test_loud_track_is_rescaled_not_clipped():
    track = make_track("t0", names=("a", "b"), split="train")
    track.stems["a"] = track.stems["a"] * 10.0  # peak 2.0
    res = build_stem_pairs([track], None, cfg=cfg_small(), shards=ShardConfig())
    assert res.tracks_rescaled == 1
    a, _ = decode_audio(res.samples[0].members["a.flac"])
    b, _ = decode_audio(res.samples[0].members["b.flac"])
    assert np.max(np.abs(a)) <= 1.0 and np.max(np.abs(a)) > 0.95
    assert np.max(np.abs(a)) / np.max(np.abs(b)) == pytest.approx(10.0, rel=1e-2)


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


def write_stem_artifact(out: Path, stems_by_track: dict[str, list[bytes]]) -> Path:
    """A corpus-layout stems artifact with the given flac bytes per stem."""
    prov = Provenance(builder="testing", source="t", source_version="1", licence="CC0", seed=0, params_hash="x")
    with ArtifactWriter(out, fingerprint="fp", provenance=prov, shards=ShardConfig()) as w:
        for track_id, flacs in sorted(stems_by_track.items()):
            for i, data in enumerate(flacs):
                meta = {"track_id": track_id, "stem_index": i, "stem": f"part{i}", "instrument": "Organ",
                        "program": 19, "split": "train", "sample_rate": SR, "duration_s": 2.0,
                        "provenance": prov.sample_dict()}
                w.write("train", Sample(f"{track_id}_s{i:02d}", {"flac": data, "json": encode_json(meta)}))
    return out


@pytest.mark.parametrize("case", ["unreadable", "short"])
def test_corpus_bad_stem_skips_track_naming_key(tmp_path, case):
    good = [encode_flac(tone(220.0 * (i + 1), 2.0, SR), SR) for i in range(3)]
    bad = list(good)
    bad[1] = b"fLaC garbage" if case == "unreadable" else encode_flac(tone(330.0, 1.5, SR), SR)
    art = write_stem_artifact(tmp_path / "stems", {"a-ok": good, "b-bad": bad, "c-ok": good})
    report = StageReport("stems")
    tracks = list(iter_corpus_tracks(art, report=report))
    assert [t.track_id for t in tracks] == ["a-ok", "c-ok"]
    (skip,) = report.skipped
    assert skip["item"] == "b-bad" and "b-bad_s01" in skip["reason"]
    assert skip["reason"].startswith("unreadable audio" if case == "unreadable" else "stem length mismatch")
    with pytest.raises(TrackError, match="b-bad_s01"):
        list(iter_corpus_tracks(art, fail_on_error=True))


def _load_stage():
    spec = importlib.util.spec_from_file_location("stage_stems", REPO / "stages" / "stems.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_stage_on_corpus_default_windows(tmp_path):
    # The default 15/5 windows on 30 s corpus tracks: 2 windows per track (0-15 s, 10-25 s).
    corpus = make_corpus_artifact(tmp_path / "corpus", n_tracks=3, n_stems=2, duration_s=30.0, sr=SR)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"stems": {"sample_rate": SR}, "shards": {"max_samples": 4}}))
    out, metrics = tmp_path / "stems", tmp_path / "metrics" / "stems.json"
    rc = _load_stage().main(["--params", str(params), "--corpus-stems", str(corpus / "stems"),
                             "--out-dir", str(out), "--metrics", str(metrics)])
    assert rc == 0
    m = json.loads(metrics.read_text())
    assert m["windows"] == 6 and m["pairs"] == 6 * 2 and m["source"] == "corpus"
    corpus_split = {t: s for t, s in assign_splits([f"synth-{i:03d}" for i in range(3)], seed=0).items()}
    samples = list(iter_samples(out, verify=True))
    assert len(samples) == 12
    for s in samples:
        meta = decode_json(s["json"])
        assert meta["split"] == corpus_split[meta["track_id"]] == s["__split__"]
        assert meta["start_s"] in (0.0, 10.0) and meta["length_s"] == 15.0
    info = read_artifact_info(out)
    assert info["provenance"]["extra"]["upstream_provenance"]["source"] == "mgdata.testing"
    assert sum(v["samples"] for v in info["splits"].values()) == 12


def test_deterministic_and_resumable(tmp_path):
    corpus = make_corpus_artifact(tmp_path / "corpus", n_tracks=5, n_stems=3, duration_s=3.0, sr=16000)
    cfg = cfg_small(sample_rate=16000)
    shards = ShardConfig(max_samples=7)
    outs = []
    for name in ("one", "two"):
        build_stems_stage(cfg, shards, corpus_stems_dir=corpus / "stems", out_dir=tmp_path / name, progress=False)
        outs.append({p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())})
    assert outs[0] == outs[1] and any(k.endswith(".tar") for k in outs[0])
    # Interrupted run: drop the last train shard; the rebuild reuses the rest and gives the same bytes.
    shard = sorted((tmp_path / "one").glob("train-*.tar"))[-1]
    shard.unlink()
    report = StageReport("stems")
    build_stems_stage(cfg, shards, corpus_stems_dir=corpus / "stems", out_dir=tmp_path / "one", report=report,
                      progress=False)
    assert report.run_counts["resumed_samples"] > 0
    assert {p.name: p.read_bytes() for p in sorted((tmp_path / "one").iterdir())} == outs[0]
    # A params change changes the fingerprint.
    other = build_stems_stage(cfg_small(sample_rate=16000, silence_db=-20.0), shards,
                              corpus_stems_dir=corpus / "stems", out_dir=None, progress=False)
    assert other.fingerprint != read_artifact_info(tmp_path / "one")["fingerprint"]


def test_silence_is_judged_on_real_audio_not_padding():
    # 1.1 s, 1 s windows without overlap: the partial window holds 0.1 s of audio (-17 dBFS tone);
    # with its 0.9 s of padding it would measure -27 dBFS and fall below -20 dBFS.
    track = make_track("t0", names=("a", "b"), dur_s=1.1, split="train")
    cfg = StemsConfig(window_s=1.0, overlap_s=0.0, keep_partial=True, silence_db=-20.0)
    res = build_stem_pairs([track], None, cfg=cfg, shards=ShardConfig())
    assert res.windows == 2 and res.silent_stem_windows == 0 and res.pairs == 4
