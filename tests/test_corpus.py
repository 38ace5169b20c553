"""Tests of the chorale corpus stage: real music21 chorales rendered with tinysoundfont.

Builds use three short Bach chorales cut to a few seconds, so the whole file runs
in seconds. The shared build also includes two bad score ids (one that does not
exist, one with a single part) to check they are skipped and counted.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mgdata.audio import decode_audio
from mgdata.config import ShardConfig, from_dict
from mgdata.corpus import build as corpus_build
from mgdata.corpus.build import MANIFEST_SCHEMA, StemRecord, TrackRecord, build_corpus, draw_programs
from mgdata.corpus.config import CorpusConfig
from mgdata.corpus.moods import MOOD_RULE, arousal_class, mood_tags
from mgdata.corpus.render import SoundFontRenderer, default_soundfont_path
from mgdata.corpus.scores import BadScore, is_unpitched_part, parse_score, selection_order, track_id_of
from mgdata.errors import DependencyError, InputError, ParamsError
from mgdata.exec import ExecConfig
from mgdata.labels import relabel_tracks
from mgdata.report import StageReport
from mgdata.store import decode_json, iter_samples, read_artifact_info

GOOD = ["bach/bwv66.6", "bach/bwv6.6", "bach/bwv330"]
BAD_MISSING = "bach/no-such-chorale"
BAD_ONE_PART = "ciconia/quod_jactatur.xml"  # a one-part canon melody in music21's corpus
SHARDS = ShardConfig(max_samples=2)  # several shards per split even for a tiny corpus


def small_cfg(**kw) -> CorpusConfig:
    base = dict(
        score_ids=[*GOOD, BAD_MISSING, BAD_ONE_PART],
        n_tracks=10,
        max_duration_s=4.0,
        sample_rate=16000,
        fractions={"train": 0.34, "validation": 0.33, "test": 0.33},
        split_seed=0,  # puts the three chorales in three different splits (checked in test_split_isolation)
    )
    base.update(kw)
    return CorpusConfig(**base)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "a"
    report = StageReport("corpus")
    result = build_corpus(out, cfg=small_cfg(), shards=SHARDS, report=report, progress=False)
    return out, result, report


def _tars(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.tar"))}


def _sha256_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------- build outputs


def test_bad_scores_skipped_and_counted(built):
    out, result, report = built
    assert len(result.tracks) == 3
    assert report.skipped_by_reason == {"parse_failed": 1, "too_few_parts": 1}
    # Skipped items and reasons (strings) live in report.json beside the data, not in the metrics.
    side = json.loads((out / "mix" / "report.json").read_text())
    files = read_artifact_info(out / "mix")["files"]  # side files checksummed in artifact.json
    assert set(files) == {"manifest.parquet", "report.json", "scores.json.gz"}
    # The symbolic source of every kept track, exactly as parsed (what the compose generator trains on).
    from mgdata.generate.compose_model import read_scores

    scores = read_scores(out / "mix" / "scores.json.gz")
    assert sorted(scores) == sorted(t.track_id for t in result.tracks)
    assert all(s.parts and s.parts[0].notes for s in scores.values())
    assert files["manifest.parquet"]["sha256"] == hashlib.sha256((out / "manifest.parquet").read_bytes()).hexdigest()
    assert {s["item"] for s in side["skipped_items"]} == {BAD_MISSING, BAD_ONE_PART}
    assert side["skipped_by_reason"] == {"parse_failed": 1, "too_few_parts": 1}
    assert report.values["tracks"] == 3 and report.values["scores_considered"] == 5


def _numbers_only(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _numbers_only(v) for k, v in value.items())
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def test_metrics_are_numbers_only(built):
    _, _, report = built
    assert report.values and all(_numbers_only(v) for v in report.values.values()), report.values
    for key in ("split_quadrant_counts", "split_style_counts", "quadrant_style_counts", "unpitched_parts_excluded"):
        assert key in report.values
    assert sum(report.values["quadrant_counts"].values()) == 3


def test_stems_sum_to_mix_after_flac(built):
    out, result, _ = built
    stems = defaultdict(list)
    for s in iter_samples(out / "stems", verify=True):
        meta = decode_json(s["json"])
        stems[meta["track_id"]].append((meta["stem_index"], decode_audio(s["flac"])[0]))
    n_mix = 0
    for s in iter_samples(out / "mix", verify=True):
        mix, sr = decode_audio(s["flac"])
        parts = [x for _, x in sorted(stems[s["__key__"]], key=lambda t: t[0])]
        assert len(parts) >= 2
        assert all(p.shape == mix.shape for p in parts)
        assert sr == 16000
        assert np.sqrt(np.mean(mix**2)) > 1e-3  # real audio, not silence
        # Each of the n stems and the mix is rounded to PCM_16 once: <= (n + 1) LSB apart.
        assert np.max(np.abs(np.sum(parts, axis=0) - mix)) <= (len(parts) + 1) / 32768.0 + 1e-7
        assert np.max(np.abs(mix)) <= 10 ** (-1.0 / 20) + 1 / 32768.0  # anti-clipping ceiling held
        n_mix += 1
    assert n_mix == 3


def test_stems_consecutive_and_ordered(built):
    out, _, _ = built
    for split in ("train", "validation", "test"):
        keys = [s["__key__"] for s in iter_samples(out / "stems", split=split)]
        order = [(k.rsplit("_s", 1)[0], int(k.rsplit("_s", 1)[1])) for k in keys]
        assert order == sorted(order)


def test_split_isolation(built):
    out, result, _ = built
    mix_split = {}
    for s in iter_samples(out / "mix"):
        meta = decode_json(s["json"])
        assert meta["split"] == s["__split__"]
        assert s["__key__"] not in mix_split
        mix_split[s["__key__"]] = s["__split__"]
    for s in iter_samples(out / "stems"):
        meta = decode_json(s["json"])
        assert s["__split__"] == mix_split[meta["track_id"]]
    assert sorted(set(mix_split.values())) == ["test", "train", "validation"]
    manifest = pl.read_parquet(out / "manifest.parquet")
    assert dict(zip(manifest["track_id"], manifest["split"])) == mix_split


def test_metadata_fields_and_mood_rule(built):
    out, result, _ = built
    cfg = small_cfg()
    fields = {
        "track_id",
        "score_id",
        "composer",
        "style",
        "title",
        "split",
        "quadrant",
        "mood",
        "tags",
        "mood_tags",
        "key",
        "mode",
        "tempo_class",
        "tempo_bpm",
        "velocity",
        "duration_s",
        "sample_rate",
        "parts",
        "instruments",
        "programs",
        "unpitched_parts",
        "provenance",
    }
    for s in iter_samples(out / "mix"):
        meta = decode_json(s["json"])
        assert set(meta) == fields
        assert TrackRecord.from_dict(meta).to_dict() == {k: v for k, v in meta.items() if k != "provenance"}
        assert meta["score_id"].startswith("bach/") and meta["composer"] == "bach" and meta["style"] == "bach"
        assert meta["mode"] in ("major", "minor") and meta["key"].endswith(meta["mode"])
        # Arousal class from (seed, track id); tempo and velocity inside that class's ranges.
        assert meta["tempo_class"] == arousal_class(meta["track_id"], cfg.seed)
        fast = meta["tempo_class"] == "fast"
        lo, hi = cfg.fast_tempo_bpm if fast else cfg.slow_tempo_bpm
        assert lo <= meta["tempo_bpm"] <= hi
        vlo, vhi = cfg.fast_velocity if fast else cfg.slow_velocity
        assert vlo <= meta["velocity"] <= vhi
        assert meta["mood_tags"] == meta["mood"] == list(MOOD_RULE[(meta["mode"], meta["tempo_class"])])
        assert meta["tags"] == ["bach", *meta["mood_tags"]]
        assert len(meta["parts"]) == len(meta["instruments"]) == len(meta["programs"]) >= 2
        assert len(set(meta["programs"])) == len(meta["programs"])  # distinct while the list lasts
        assert all(p in cfg.programs for p in meta["programs"])
        assert 0 < meta["duration_s"] <= 4.0
        prov = meta["provenance"]
        assert prov["source"] == "music21-corpus" and "TimGM6mb" in prov["licence"] and prov["seed"] == 0
    # bwv66.6 is in F# minor (music21's analysis), four voices.
    meta = {t.track_id: t for t in result.tracks}["bach-bwv66-6"]
    assert meta.key == "F# minor" and meta.parts == ["soprano", "alto", "tenor", "bass"]
    manifest = pl.read_parquet(out / "manifest.parquet")
    assert dict(manifest.schema) == MANIFEST_SCHEMA
    assert manifest.height == 3
    info = read_artifact_info(out / "mix")
    assert info["provenance"]["source"] == "music21-corpus"
    assert info["labels"]["bach"] == 3


def test_deterministic_byte_identical(built, tmp_path):
    out, _, _ = built
    build_corpus(tmp_path / "b", cfg=small_cfg(), shards=SHARDS, progress=False)
    a, b = _tars(out), _tars(tmp_path / "b")
    assert len(a) >= 6 and a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a)
    assert (out / "manifest.parquet").read_bytes() == (tmp_path / "b" / "manifest.parquet").read_bytes()


def test_resume_after_crash_matches_uninterrupted(built, tmp_path, monkeypatch):
    out, _, _ = built
    calls = {"n": 0}
    real = SoundFontRenderer.render_track
    monkeypatch.setattr(corpus_build, "RENDER_BATCH", 1)  # one track per task: each is written before the next

    def crashing(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated crash")
        return real(self, *a, **kw)

    # One split, one sample per shard: tracks 1 (and part of 2) are committed before the crash.
    cfg = small_cfg(fractions={"train": 1.0})
    shards = ShardConfig(max_samples=1)
    monkeypatch.setattr(SoundFontRenderer, "render_track", crashing)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(tmp_path / "c", cfg=cfg, shards=shards, progress=False)
    monkeypatch.setattr(SoundFontRenderer, "render_track", real)
    assert not (tmp_path / "c" / "mix" / "artifact.json").exists()
    result = build_corpus(tmp_path / "c", cfg=cfg, shards=shards, progress=False)
    assert result.resumed_tracks >= 1
    ref = build_corpus(tmp_path / "d", cfg=cfg, shards=shards, progress=False)
    assert ref.resumed_tracks == 0
    assert _tars(tmp_path / "c") == _tars(tmp_path / "d")


def test_different_seed_changes_draws(tmp_path):
    a = build_corpus(None, cfg=small_cfg(score_ids=GOOD[:2], seed=0), shards=SHARDS, progress=False)
    b = build_corpus(None, cfg=small_cfg(score_ids=GOOD[:2], seed=1), shards=SHARDS, progress=False)
    assert [(t.tempo_bpm, t.programs) for t in a.tracks] != [(t.tempo_bpm, t.programs) for t in b.tracks]
    # In memory: audio returned, stems sum exactly to the mix in float.
    for t in a.tracks:
        audio = a.audio[t.track_id]
        assert audio.stems.shape == (t.n_stems, int(round(t.duration_s * 16000)))
        np.testing.assert_allclose(audio.stems.sum(0), audio.mix, atol=1e-6)


# --------------------------------------------------------------------------- bad input and errors


def test_silent_render_skipped(tmp_path):
    report = StageReport("corpus")
    # A 0 dBFS threshold makes every rendering count as silent.
    result = build_corpus(
        None, cfg=small_cfg(score_ids=GOOD[:1], silence_db=0.0), shards=SHARDS, report=report, progress=False
    )
    assert result.tracks == []
    assert report.skipped_by_reason == {"silent": 1}


def test_fail_on_bad_score_raises():
    with pytest.raises(InputError, match="no-such-chorale"):
        build_corpus(
            None, cfg=small_cfg(score_ids=[BAD_MISSING, *GOOD], fail_on_bad_score=True), shards=SHARDS, progress=False
        )


def test_missing_soundfont_dependency_error(tmp_path):
    with pytest.raises(DependencyError, match=r"pip install --no-deps tinysoundfont.*corpus\.soundfont"):
        build_corpus(tmp_path / "x", cfg=small_cfg(soundfont=str(tmp_path / "nope.sf2")), shards=SHARDS, progress=False)
    assert not (tmp_path / "x").exists()  # failed before any work


def test_missing_renderer_dependency_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tinysoundfont", None)  # import fails as if not installed
    with pytest.raises(DependencyError, match="pip install --no-deps tinysoundfont"):
        SoundFontRenderer()


def test_unknown_composer_params_error():
    with pytest.raises(ParamsError, match="corpus.composers"):
        build_corpus(None, cfg=CorpusConfig(composers=["nobody"]), shards=SHARDS, progress=False)


def test_config_validation_names_key():
    with pytest.raises(ParamsError, match=r"corpus\.slow_tempo_bpm"):
        from_dict(CorpusConfig, {"slow_tempo_bpm": [84, 60]}, "corpus")
    with pytest.raises(ParamsError, match=r"corpus\.fast_tempo_bpm.*not overlap"):
        from_dict(CorpusConfig, {"fast_tempo_bpm": [80, 140]}, "corpus")
    with pytest.raises(ParamsError, match=r"corpus\.fast_velocity"):
        from_dict(CorpusConfig, {"fast_velocity": [65, 110]}, "corpus")
    with pytest.raises(ParamsError, match=r"corpus\.programs\[1\]"):
        from_dict(CorpusConfig, {"programs": [1, "x"]}, "corpus")
    with pytest.raises(ParamsError, match=r"corpus\.programs"):
        from_dict(CorpusConfig, {"programs": [0, 200]}, "corpus")
    cfg = from_dict(CorpusConfig, {"slow_tempo_bpm": [80, 90], "composers": ["bach", "monteverdi"]}, "corpus")
    assert cfg.slow_tempo_bpm == (80.0, 90.0)


# --------------------------------------------------------------------------- units


def test_mood_rule():
    assert mood_tags("major", "fast") == ["happy", "uplifting"]
    assert mood_tags("major", "slow") == ["calm", "relaxing"]
    assert mood_tags("minor", "fast") == ["dark", "dramatic"]
    assert mood_tags("minor", "slow") == ["sad", "melancholic"]
    with pytest.raises(ValueError):
        mood_tags("dorian", "fast")
    with pytest.raises(ValueError):
        mood_tags("major", "medium")


def test_arousal_class_balanced_and_seeded():
    ids = [f"t{i}" for i in range(4000)]
    fast = [arousal_class(i, 0) == "fast" for i in ids]
    assert 0.46 < np.mean(fast) < 0.54  # p = 0.5 per track
    assert fast != [arousal_class(i, 1) == "fast" for i in ids]
    assert arousal_class("t1", 0) == arousal_class("t1", 0)


def test_selection_order_seeded_round_robin():
    cands = {"a": [f"a/{i}" for i in range(5)], "b": [f"b/{i}" for i in range(2)]}
    o1, o2, o3 = selection_order(cands, 0), selection_order(cands, 0), selection_order(cands, 1)
    assert o1 == o2 and o1 != o3 and sorted(o1) == sorted(cands["a"] + cands["b"])
    assert {s[0] for s in o1[:2]} == {"a", "b"} and {s[0] for s in o1[2:4]} == {"a", "b"}


def test_track_ids_and_programs():
    assert track_id_of("bach/bwv66.6.mxl") == "bach-bwv66-6"
    assert track_id_of("trecento/PMFC_01-Lugentium siccentur.xml") == "trecento-pmfc_01-lugentium-siccentur"
    rng = np.random.default_rng(0)
    assert len(set(draw_programs(rng, [1, 2, 3, 4], 4))) == 4
    assert sorted(set(draw_programs(rng, [1, 2], 5))) == [1, 2]


def test_parse_score_reasons():
    with pytest.raises(BadScore) as e:
        parse_score(BAD_ONE_PART)
    assert e.value.reason == "too_few_parts"
    with pytest.raises(BadScore) as e:
        parse_score(BAD_MISSING)
    assert e.value.reason == "parse_failed"


def test_render_pitch_and_length():
    sr = 16000
    r = SoundFontRenderer(default_soundfont_path(), sr)
    x = r.render_notes([(0.1, 0.9, 69)], program=73, n_samples=sr * 2)  # flute A4
    assert x.dtype == np.float32 and x.shape == (sr * 2,)
    seg = x[int(0.3 * sr) : int(0.8 * sr)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    f0 = np.fft.rfftfreq(len(seg), 1 / sr)[np.argmax(spec)]
    assert abs(f0 - 440.0) < 6.0
    assert np.max(np.abs(x[: int(0.09 * sr)])) == 0.0  # nothing before the onset
    assert np.sqrt(np.mean(x[int(1.8 * sr) :] ** 2)) < 0.1 * np.sqrt(np.mean(seg**2))  # released
    y = r.render_notes([(0.1, 0.9, 69)], program=73, n_samples=sr * 2)
    assert np.array_equal(x, y)  # no state leaks between renderings


def test_render_track_gain_guard():
    r = SoundFontRenderer(None, 16000)
    chord = [[(0.0, 1.0, p)] for p in (48, 55, 60, 64, 67, 72)]
    t = r.render_track(chord, [19] * 6, 16000, velocity=127, peak_dbfs=-6.0)
    assert t.gain < 1.0
    assert np.max(np.abs(t.mix)) <= 10 ** (-6 / 20) + 1e-6
    np.testing.assert_allclose(t.stems.sum(0), t.mix, atol=1e-6)


def test_params_fragment_matches_defaults():
    import yaml

    path = Path(__file__).resolve().parents[1] / "params.yaml"
    cfg = from_dict(CorpusConfig, yaml.safe_load(path.read_text())["corpus"], "corpus")
    assert cfg == CorpusConfig()


# --------------------------------------------------------------------------- labels, executor, unpitched parts


def test_quadrant_agrees_with_relabel_stage(built):
    out, result, _ = built
    manifest = pl.read_parquet(out / "manifest.parquet")
    rows = [
        {"track_id": r["track_id"], "tags": r["mood_tags"], "split": r["split"], "duration_s": r["duration_s"]}
        for r in manifest.iter_rows(named=True)
    ]
    relabelled = relabel_tracks(rows, mapping="paper1").table
    assert dict(zip(relabelled["track_id"], relabelled["quadrant"])) == dict(
        zip(manifest["track_id"], manifest["quadrant"])
    )
    assert manifest["mood"].to_list() == manifest["mood_tags"].to_list()


def test_stem_json_carries_labels(built):
    out, result, _ = built
    by_id = {t.track_id: t for t in result.tracks}
    n = 0
    for s in iter_samples(out / "stems"):
        meta = decode_json(s["json"])
        rec = StemRecord.from_dict(meta)
        track = by_id[rec.track_id]
        assert s["__key__"] == rec.key
        assert (rec.split, rec.quadrant, rec.mood, rec.style) == (track.split, track.quadrant, track.mood, track.style)
        assert rec.stem == track.parts[rec.stem_index] and rec.program == track.programs[rec.stem_index]
        n += 1
    assert n == sum(t.n_stems for t in result.tracks)


def test_serial_and_process_pool_byte_identical(built, tmp_path):
    out, _, _ = built
    build_corpus(
        tmp_path / "p",
        cfg=small_cfg(),
        shards=SHARDS,
        progress=False,
        executor=ExecConfig(backend="process", workers=2),
    )
    serial, pooled = _sha256_tree(out), _sha256_tree(tmp_path / "p")
    assert len(serial) >= 10 and "manifest.parquet" in serial and "mix/report.json" in serial
    assert serial == pooled  # every file: shards, artifact.json, manifest, report


def test_split_file_overrides_hash(tmp_path):
    split_file = tmp_path / "splits.csv"
    split_file.write_text("track_id,split\nbach-bwv66-6,test\nbach-bwv6-6,test\nnot-in-corpus,train\n")
    report = StageReport("corpus")
    result = build_corpus(
        None, cfg=small_cfg(score_ids=GOOD, split_file=str(split_file)), shards=SHARDS, report=report, progress=False
    )
    splits = {t.track_id: t.split for t in result.tracks}
    assert splits["bach-bwv66-6"] == splits["bach-bwv6-6"] == "test"
    assert report.values["split_file_tracks"] == 2
    split_file.write_text("track_id,split\nbach-bwv66-6,holdout\n")
    with pytest.raises(InputError, match=r"splits\.csv:2: unknown split 'holdout'"):
        build_corpus(None, cfg=small_cfg(score_ids=GOOD, split_file=str(split_file)), shards=SHARDS, progress=False)


def _score_with_percussion(path: Path) -> Path:
    from music21 import instrument, meter, note, stream

    score = stream.Score()
    for name, inst, pitched in (
        ("Flute", instrument.Flute(), True),
        ("Violin", instrument.Violin(), True),
        ("Drums", instrument.SnareDrum(), False),
        ("Timpani", instrument.Timpani(), True),
    ):
        part = stream.Part()
        part.partName = name
        part.insert(0, inst)
        part.append(meter.TimeSignature("4/4"))
        for i in range(8):
            part.append(
                note.Note(60 + 2 * i + (7 if name == "Violin" else 0), quarterLength=1.0)
                if pitched
                else note.Unpitched(quarterLength=1.0)
            )
        score.insert(0, part)
    score.write("musicxml", fp=str(path))
    return path


def test_unpitched_parts_excluded(tmp_path):
    path = _score_with_percussion(tmp_path / "perc.musicxml")
    parsed = parse_score(str(path))
    assert [p.name for p in parsed.parts] == ["flute", "violin"]
    assert parsed.excluded_parts == ("drums", "timpani")
    # GM channel 10 marks a part as percussion whatever its instrument.
    from music21 import instrument, note, stream

    part = stream.Part([note.Note(60)])
    piano = instrument.Piano()
    piano.midiChannel = 9
    part.insert(0, piano)
    assert is_unpitched_part(part)
    assert not is_unpitched_part(stream.Part([instrument.Piano(), note.Note(60)]))


def test_unpitched_parts_counted_in_metrics(tmp_path):
    path = _score_with_percussion(tmp_path / "perc.musicxml")
    report = StageReport("corpus")
    result = build_corpus(None, cfg=small_cfg(score_ids=[str(path)]), shards=SHARDS, report=report, progress=False)
    assert [t.unpitched_parts for t in result.tracks] == [["drums", "timpani"]]
    assert result.tracks[0].n_stems == 2
    assert report.values["unpitched_parts_excluded"] == 2
