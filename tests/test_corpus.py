"""Tests of the chorale corpus stage: real music21 chorales rendered with tinysoundfont.

Builds use three short Bach chorales cut to a few seconds, so the whole file runs
in seconds. The shared build also includes two bad score ids (one that does not
exist, one with a single part) to check they are skipped and counted.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mgdata.audio import decode_audio
from mgdata.config import ShardConfig, from_dict
from mgdata.corpus.build import MANIFEST_SCHEMA, build_corpus, draw_programs
from mgdata.corpus.config import CorpusConfig
from mgdata.corpus.moods import MOOD_RULE, mood_tags
from mgdata.corpus.render import SoundFontRenderer, default_soundfont_path
from mgdata.corpus.scores import BadScore, parse_score, selection_order, track_id_of
from mgdata.errors import DependencyError, InputError, ParamsError
from mgdata.report import StageReport
from mgdata.store import decode_json, iter_samples, read_artifact_info

GOOD = ["bach/bwv66.6", "bach/bwv6.6", "bach/bwv330"]
BAD_MISSING = "bach/no-such-chorale"
BAD_ONE_PART = "ciconia/quod_jactatur.xml"  # a one-part canon melody in music21's corpus
SHARDS = ShardConfig(max_samples=2)  # several shards per split even for a tiny corpus


def small_cfg(**kw) -> CorpusConfig:
    base = dict(score_ids=[*GOOD, BAD_MISSING, BAD_ONE_PART], n_tracks=10, max_duration_s=4.0,
                sample_rate=16000, tempo_bpm=(70.0, 130.0), fractions={"train": 0.34, "validation": 0.33,
                                                                        "test": 0.33})
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


# --------------------------------------------------------------------------- build outputs


def test_bad_scores_skipped_and_counted(built):
    _, result, report = built
    assert len(result.tracks) == 3
    m = report.to_dict()
    assert m["skipped_by_reason"] == {"parse_failed": 1, "too_few_parts": 1}
    items = {s["item"] for s in m["skipped_items"]}
    assert BAD_MISSING in items and BAD_ONE_PART in items
    assert m["tracks"] == 3


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
        assert np.sqrt(np.mean(mix ** 2)) > 1e-3  # real audio, not silence
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
    fields = {"track_id", "score_id", "composer", "style", "title", "split", "tags", "mood_tags", "key", "mode",
              "tempo_bpm", "duration_s", "sample_rate", "parts", "instruments", "programs", "provenance"}
    for s in iter_samples(out / "mix"):
        meta = decode_json(s["json"])
        assert set(meta) == fields
        assert meta["score_id"].startswith("bach/") and meta["composer"] == "bach" and meta["style"] == "bach"
        assert meta["mode"] in ("major", "minor") and meta["key"].endswith(meta["mode"])
        assert 70.0 <= meta["tempo_bpm"] <= 130.0
        fast = meta["tempo_bpm"] >= cfg.fast_tempo_bpm
        assert meta["mood_tags"] == list(MOOD_RULE[(meta["mode"], "fast" if fast else "slow")])
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
    result = build_corpus(None, cfg=small_cfg(score_ids=GOOD[:1], silence_db=0.0), shards=SHARDS,
                          report=report, progress=False)
    assert result.tracks == []
    assert report.skipped_by_reason == {"silent": 1}


def test_fail_on_bad_score_raises():
    with pytest.raises(InputError, match="no-such-chorale"):
        build_corpus(None, cfg=small_cfg(score_ids=[BAD_MISSING, *GOOD], fail_on_bad_score=True),
                     shards=SHARDS, progress=False)


def test_missing_soundfont_dependency_error(tmp_path):
    with pytest.raises(DependencyError, match=r"pip install --no-deps tinysoundfont.*corpus\.soundfont"):
        build_corpus(tmp_path / "x", cfg=small_cfg(soundfont=str(tmp_path / "nope.sf2")), shards=SHARDS,
                     progress=False)
    assert not (tmp_path / "x").exists()  # failed before any work


def test_missing_renderer_dependency_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tinysoundfont", None)  # import fails as if not installed
    with pytest.raises(DependencyError, match="pip install --no-deps tinysoundfont"):
        SoundFontRenderer()


def test_unknown_composer_params_error():
    with pytest.raises(ParamsError, match="corpus.composers"):
        build_corpus(None, cfg=CorpusConfig(composers=["nobody"]), shards=SHARDS, progress=False)


def test_config_validation_names_key():
    with pytest.raises(ParamsError, match=r"corpus\.tempo_bpm"):
        from_dict(CorpusConfig, {"tempo_bpm": [140, 60]}, "corpus")
    with pytest.raises(ParamsError, match=r"corpus\.programs\[1\]"):
        from_dict(CorpusConfig, {"programs": [1, "x"]}, "corpus")
    with pytest.raises(ParamsError, match=r"corpus\.programs"):
        from_dict(CorpusConfig, {"programs": [0, 200]}, "corpus")
    cfg = from_dict(CorpusConfig, {"tempo_bpm": [80, 90], "composers": ["bach", "monteverdi"]}, "corpus")
    assert cfg.tempo_bpm == (80.0, 90.0)


# --------------------------------------------------------------------------- units


def test_mood_rule():
    assert mood_tags("major", 120, 100) == ["happy", "uplifting"]
    assert mood_tags("major", 99.9, 100) == ["calm", "relaxing"]
    assert mood_tags("minor", 100, 100) == ["dark", "dramatic"]
    assert mood_tags("minor", 60, 100) == ["sad", "melancholic"]
    with pytest.raises(ValueError):
        mood_tags("dorian", 100, 100)


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
    seg = x[int(0.3 * sr): int(0.8 * sr)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    f0 = np.fft.rfftfreq(len(seg), 1 / sr)[np.argmax(spec)]
    assert abs(f0 - 440.0) < 6.0
    assert np.max(np.abs(x[: int(0.09 * sr)])) == 0.0  # nothing before the onset
    assert np.sqrt(np.mean(x[int(1.8 * sr):] ** 2)) < 0.1 * np.sqrt(np.mean(seg ** 2))  # released
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
