"""Embedding builder: logmel embedder, windowing/aggregation, shards + matrices, bad input, determinism."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from mgdata.audio import encode_flac
from mgdata.config import ShardConfig, load_section
from mgdata.embed import embed_clip, get_embedder
from mgdata.embed.base import ShortClipError, window_starts
from mgdata.embed.build import build_embeddings, load_split
from mgdata.embed.config import EmbedConfig, LogMelConfig, ScenarioConfig
from mgdata.errors import InputError, MgdataError, ParamsError
from mgdata.exec import ExecConfig
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.store import ArtifactWriter, Sample, decode_json, decode_npy, encode_json, iter_samples
from mgdata.testing import noise, tone

SR = 16000
REPO = Path(__file__).resolve().parents[1]


def _write_artifact(out: Path, clips: list[tuple[str, str, bytes, dict]]) -> Path:
    """An artifact of (key, split, audio bytes, json) samples in the generated-clip layout."""
    prov = Provenance(builder="test", source="tests", source_version="1", licence="CC0", seed=0, params_hash="x")
    with ArtifactWriter(out, fingerprint="fp-" + out.name, provenance=prov, shards=ShardConfig(max_samples=2)) as w:
        for key, split, audio, meta in clips:
            w.write(split, Sample(key, {"flac": audio, "json": encode_json({"split": split, **meta})}, seconds=1.0))
    return out


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


# --------------------------------------------------------------------------- embedder + windowing


def test_logmel_shapes_dtypes_and_frame_rate():
    x = tone(440.0, 1.0, SR)
    stats = get_embedder("logmel", EmbedConfig())
    f = stats.frames(x)
    assert f.shape == (1, 128) and f.dtype == np.float32 and stats.dim == 128
    assert stats.frame_rate is None
    raw = get_embedder("logmel", {"stats": False, "n_mels": 32})
    g = raw.frames(x)
    assert g.shape == (1 + SR // 320, 32) and g.dtype == np.float32
    assert raw.frame_rate == pytest.approx(50.0)
    # stats = per-band mean and std of the raw frames of the same window
    raw64 = get_embedder("logmel", {"stats": False})
    frames = raw64.frames(x)
    np.testing.assert_allclose(f[0, :64], frames.mean(axis=0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(f[0, 64:], frames.std(axis=0), rtol=1e-4, atol=1e-3)
    assert stats.describe()["id"] == "logmel" and "librosa" in stats.describe()["versions"]


def test_logmel_keeps_absolute_level():
    emb = get_embedder("logmel", EmbedConfig())
    x = tone([220.0, 330.0], 1.0, SR, amp=0.5)
    a, b = emb.frames(x)[0, :64], emb.frames(x * 10 ** (-6 / 20))[0, :64]
    loud = a > -60  # bands well above the -100 dB floor
    assert loud.sum() > 5
    np.testing.assert_allclose(b[loud] - a[loud], -6.0, atol=0.05)


def test_window_starts_cover_the_clip():
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(11, 4, 3) == [0, 3, 6, 7]  # last window aligned to the end
    assert window_starts(4, 4, 2) == [0]
    assert window_starts(3, 4, 2) == []


def test_embed_clip_windows_times_and_resampling():
    emb = get_embedder("logmel", EmbedConfig())
    x = tone(440.0, 5.0, 22050)
    clip = embed_clip(emb, x, 22050, window_s=2.0, hop_s=1.0)
    assert clip.n_windows == 4 and clip.frames.shape == (4, 128)
    np.testing.assert_allclose(clip.times_s, [1.0, 2.0, 3.0, 4.0], atol=1e-6)
    assert clip.window_index.tolist() == [0, 1, 2, 3] and not clip.padded


def test_short_clip_pad_or_skip_and_nan_names_key():
    emb = get_embedder("logmel", EmbedConfig())
    short = tone(440.0, 0.5, SR)
    clip = embed_clip(emb, short, SR, window_s=2.0, hop_s=1.0, short_clip="pad")
    assert clip.padded and clip.n_windows == 1
    with pytest.raises(ShortClipError, match="clip-7"):
        embed_clip(emb, short, SR, window_s=2.0, hop_s=1.0, short_clip="skip", key="clip-7")
    bad = tone(440.0, 3.0, SR)
    bad[100] = np.nan
    with pytest.raises(InputError) as err:
        embed_clip(emb, bad, SR, window_s=2.0, hop_s=1.0, key="track-nan")
    assert err.value.where == "track-nan" and "NaN" in str(err.value)


# --------------------------------------------------------------------------- build


def test_build_writes_shards_and_consolidated_matrices(corpus_artifact, tmp_path):
    cfg = EmbedConfig(dtype="float16")
    out = tmp_path / "emb"
    report = StageReport("embed")
    res = build_embeddings(
        corpus_artifact / "mix",
        out,
        cfg=cfg,
        embedder="logmel",
        scenario="clean",
        shards=ShardConfig(max_samples=2),
        report=report,
    )
    assert sum(res.samples.values()) == 6 and set(res.samples) == {"train", "validation", "test"}
    assert report.counts["embedded"] == 6 and not report.skipped
    info = json.loads((out / "artifact.json").read_text())
    assert info["members"] == ["json", "npy"] and info["samples"] == 6
    by_key = {}
    for raw in iter_samples(out):
        vec, meta = decode_npy(raw["npy"]), decode_json(raw["json"])
        assert vec.shape == (128,) and vec.dtype == np.float16
        assert meta["labels"][0] == "synthetic" and len(meta["labels"]) == 3  # corpus tags carried over
        assert (
            meta["source"]["fingerprint"]
            == json.loads((corpus_artifact / "mix/artifact.json").read_text())["fingerprint"]
        )
        assert meta["embedder"]["id"] == "logmel" and meta["deformation"]["type"] == "none"
        assert meta["provenance"]["builder"] == "embed" and meta["provenance"]["source_provenance"]
        by_key[raw["__key__"]] = vec
    for split, n in res.samples.items():
        matrix, table = load_split(out, split)
        assert matrix.shape == (n, 128) and matrix.dtype == np.float16
        assert table["row"].to_list() == list(range(n)) and set(table["split"]) == {split}
        for row, key in zip(table["row"], table["key"]):
            np.testing.assert_array_equal(matrix[row], by_key[key])
        assert table.schema["labels"] == pl.List(pl.Utf8)


def test_mean_aggregation_equals_mean_of_frames(corpus_artifact):
    mean = build_embeddings(corpus_artifact / "mix", cfg=EmbedConfig(), embedder="logmel")
    frames = build_embeddings(corpus_artifact / "mix", cfg=EmbedConfig(aggregation="none"), embedder="logmel")
    for split in mean.samples:
        table = frames.tables[split]
        assert {"frame_index", "time_s"} <= set(table.columns)
        for i, key in enumerate(mean.tables[split]["key"]):
            rows = table.filter(pl.col("key") == key)["row"].to_numpy()
            assert len(rows) == 5  # 6 s clip, 2 s windows, 1 s hop
            np.testing.assert_allclose(
                mean.matrices[split][i], frames.matrices[split][rows].mean(axis=0), rtol=1e-5, atol=1e-4
            )


def test_deformation_scenario_covers_eval_splits_only(corpus_artifact, tmp_path):
    cfg = EmbedConfig()
    report = StageReport("embed")
    clean = build_embeddings(corpus_artifact / "mix", cfg=cfg, embedder="logmel", scenario="clean")
    noisy = build_embeddings(
        corpus_artifact / "mix", tmp_path / "noisy", cfg=cfg, embedder="logmel", scenario="noise_snr20", report=report
    )
    assert set(noisy.samples) == {"validation", "test"}  # training audio is not deformed nor produced
    assert report.counts["not_evaluated"] == clean.samples["train"]
    assert not list((tmp_path / "noisy").glob("train*"))
    for split in ("validation", "test"):
        assert not np.allclose(
            noisy.matrices.get(split, load_split(tmp_path / "noisy", split)[0]), clean.matrices[split], atol=0.1
        )
    meta = decode_json(next(iter_samples(tmp_path / "noisy"))["json"])
    assert meta["deformation"]["name"] == "noise_snr20" and meta["deformation"]["params"] == {"snr_db": 20.0}
    assert isinstance(meta["deformation"]["seed"], int)


def _mixed_artifact(tmp_path: Path) -> Path:
    bad = tone(330.0, 3.0, SR)
    bad[5] = np.nan
    buf = io.BytesIO()
    sf.write(buf, bad, SR, format="WAV", subtype="FLOAT")  # float WAV keeps the NaN (FLAC cannot hold one)
    return _write_artifact(
        tmp_path / "gen",
        [
            ("gen-a", "test", encode_flac(tone(220.0, 3.0, SR), SR), {"label": "activated_pleasant"}),
            ("gen-b", "test", encode_flac(noise(0.5, SR, 0.1), SR), {"label": "deactivated_pleasant"}),
            ("gen-nan", "test", buf.getvalue(), {"label": "activated_unpleasant"}),
        ],
    )


def test_short_clip_nan_and_labels_in_build(tmp_path):
    art = _mixed_artifact(tmp_path)
    report = StageReport("embed")
    res = build_embeddings(art, cfg=EmbedConfig(short_clip="pad"), embedder="logmel", report=report)
    assert res.tables["test"]["key"].to_list() == ["gen-a", "gen-b"]
    assert res.tables["test"]["label"].to_list() == ["activated_pleasant", "deactivated_pleasant"]
    assert res.tables["test"]["labels"].to_list() == [["activated_pleasant"], ["deactivated_pleasant"]]
    assert report.counts["padded_short_clips"] == 1
    assert [s["item"] for s in report.skipped] == ["gen-nan"] and "NaN" in report.skipped[0]["reason"]

    report = StageReport("embed")
    res = build_embeddings(art, cfg=EmbedConfig(short_clip="skip"), embedder="logmel", report=report)
    assert res.tables["test"]["key"].to_list() == ["gen-a"]
    assert report.skipped_by_reason == {"short clip": 1, "bad audio": 1}

    with pytest.raises(InputError) as err:
        build_embeddings(art, cfg=EmbedConfig(fail_on_error=True), embedder="logmel")
    assert err.value.where == "gen-nan"


def test_two_builds_are_byte_identical_and_resume(corpus_artifact, tmp_path):
    cfg = EmbedConfig(scenario_names=["clean", "mp3_32k"])
    for run in ("a", "b"):
        for scenario in ("clean", "noise_snr20", "mp3_32k"):
            build_embeddings(
                corpus_artifact / "mix",
                tmp_path / run / scenario,
                cfg=cfg,
                embedder="logmel",
                scenario=scenario,
                shards=ShardConfig(max_samples=2),
            )
    for scenario in ("clean", "noise_snr20", "mp3_32k"):
        a, b = _files(tmp_path / "a" / scenario), _files(tmp_path / "b" / scenario)
        assert a.keys() == b.keys() and any(k.endswith(".parquet") for k in a)
        assert a == b, scenario
    report = StageReport("embed")
    build_embeddings(
        corpus_artifact / "mix",
        tmp_path / "a" / "clean",
        cfg=cfg,
        embedder="logmel",
        scenario="clean",
        shards=ShardConfig(max_samples=2),
        report=report,
    )
    assert report.run_counts["resumed"] == 6 and report.counts["embedded"] == 6
    assert "resumed" not in report.to_dict()
    assert _files(tmp_path / "a" / "clean") == _files(tmp_path / "b" / "clean")


def test_missing_artifact_and_unknown_scenario(tmp_path, corpus_artifact):
    with pytest.raises(MgdataError, match="artifact.json"):
        build_embeddings(tmp_path / "nope", cfg=EmbedConfig(), embedder="logmel")
    with pytest.raises(ParamsError, match="no scenario named 'loud'"):
        build_embeddings(corpus_artifact / "mix", cfg=EmbedConfig(), embedder="logmel", scenario="loud")
    with pytest.raises(ParamsError, match="unknown embedder"):
        get_embedder("openl3", EmbedConfig())


# --------------------------------------------------------------------------- params + stage


def test_params_fragment_validates_and_errors_name_keys(tmp_path):
    cfg = load_section(REPO / "params.yaml", "embed", EmbedConfig)
    assert cfg.embedders == ["logmel", "musicfeat", "musicnn"]
    assert [a.name for a in cfg.artifacts] == ["corpus", "resynth", "compose"]
    assert all(n == "clean" or n in cfg.scenarios for n in cfg.scenario_names)
    assert cfg.logmel == LogMelConfig()
    bad = tmp_path / "p.yaml"
    bad.write_text("embed:\n  scenarios:\n    hiss: {type: noise}\n")
    with pytest.raises(ParamsError, match=r"embed\.scenarios\.hiss\.snr_db"):
        load_section(bad, "embed", EmbedConfig)
    bad.write_text("embed:\n  scenario_names: [clean, nope]\n")
    with pytest.raises(ParamsError, match=r"scenario_names\[1\]"):
        load_section(bad, "embed", EmbedConfig)
    with pytest.raises(ParamsError, match="bitrate_kbps"):
        ScenarioConfig(type="mp3", bitrate_kbps=33)


def test_stage_script_writes_artifact_and_metrics(corpus_artifact, tmp_path, monkeypatch):
    from mgdata.pipeline import stage_main

    params = tmp_path / "params.yaml"
    # The executor section reaches the builder (2 worker processes here).
    params.write_text(
        f"embed:\n  artifacts:\n    - {{name: corpus, path: {corpus_artifact / 'mix'}}}\n"
        "shards:\n  max_samples: 3\nexecutor:\n  backend: process\n  workers: 2\n"
    )
    monkeypatch.chdir(tmp_path)
    assert (
        stage_main(
            "embed",
            [
                "--params",
                str(params),
                "--embedder",
                "logmel",
                "--artifact",
                "corpus",
                "--scenario",
                "gain_m6",
                "--no-progress",
            ],
        )
        == 0
    )
    out = tmp_path / "data/embed/logmel/corpus/gain_m6"
    assert (out / "artifact.json").exists() and (out / "test.npy").exists() and (out / "validation.parquet").exists()
    metrics = json.loads((tmp_path / "metrics/embed/logmel-corpus-gain_m6.json").read_text())
    assert metrics == {"embedded": 2, "rows": 2, "dim": 128, "skipped": 0}  # the headline
    report = json.loads((tmp_path / "stage_reports/embed/logmel-corpus-gain_m6.json").read_text())
    assert report["not_evaluated"] == 4 and report["rows_per_split"] == {"test": 1, "validation": 1}


# --------------------------------------------------------------------------- executor + labels


def _sha256s(path: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir()) if p.is_file()}


BACKENDS = {
    "serial": ExecConfig(backend="serial"),
    "process1": ExecConfig(backend="process", workers=1),
    "process2": ExecConfig(backend="process", workers=2),
}


@pytest.mark.parametrize("scenario", ["clean", "noise_snr20"])
def test_every_backend_writes_byte_identical_files(corpus_artifact, tmp_path, scenario):
    digests = {}
    for name, exe in BACKENDS.items():
        out = tmp_path / name
        res = build_embeddings(
            corpus_artifact / "mix",
            out,
            cfg=EmbedConfig(),
            embedder="logmel",
            scenario=scenario,
            shards=ShardConfig(max_samples=2),
            executor=exe,
        )
        digests[name] = _sha256s(out)
        assert sum(res.samples.values()) == (6 if scenario == "clean" else 2)
    assert digests["serial"] == digests["process1"] == digests["process2"]
    assert any(n.endswith(".npy") for n in digests["serial"]) and any(n.endswith(".parquet") for n in digests["serial"])
    # The executor is not part of the fingerprint.
    fps = {json.loads((tmp_path / n / "artifact.json").read_text())["fingerprint"] for n in BACKENDS}
    assert len(fps) == 1


def test_resume_on_workers_rebuilds_the_same_matrices(corpus_artifact, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "resume"
    for path in (ref, out):
        build_embeddings(
            corpus_artifact / "mix",
            path,
            cfg=EmbedConfig(),
            embedder="logmel",
            shards=ShardConfig(max_samples=1),
            executor=BACKENDS["serial"],
        )
    victim = sorted(out.glob("train-*.tar"))[-1]
    victim.unlink()
    report = StageReport("embed")
    build_embeddings(
        corpus_artifact / "mix",
        out,
        cfg=EmbedConfig(),
        embedder="logmel",
        shards=ShardConfig(max_samples=1),
        executor=BACKENDS["process2"],
        report=report,
    )
    assert 0 < report.run_counts["resumed"] < 6
    assert _sha256s(out) == _sha256s(ref)
    assert not list(out.glob(".*.part"))


def test_label_columns_in_jsons_and_tables(corpus_artifact, tmp_path):
    from mgdata.embed.build import label_fields

    out = tmp_path / "emb"
    build_embeddings(corpus_artifact / "mix", out, cfg=EmbedConfig(), embedder="logmel")
    sources = {
        decode_json(s["json"])["track_id"]: decode_json(s["json"]) for s in iter_samples(corpus_artifact / "mix")
    }
    quadrants = {
        "calm": "deactivated_pleasant",
        "dark": "activated_unpleasant",
        "happy": "activated_pleasant",
        "sad": "deactivated_unpleasant",
    }
    seen_splits = set()
    for raw in iter_samples(out):
        meta = decode_json(raw["json"])
        src = sources[meta["track_id"]]
        assert meta["mood"] == src["mood_tags"] and meta["style"] == src["style"] == "synthetic"
        assert meta["split"] == src["split"] == raw["__split__"]
        # paper1 quadrant of the first mapped mood tag; the probe label is that quadrant (was null).
        expected = next(quadrants[t] for t in src["mood_tags"] if t in quadrants)
        assert meta["quadrant"] == meta["label"] == expected
        seen_splits.add(meta["split"])
    for split in seen_splits:
        _, table = load_split(out, split)
        assert table.schema["mood"] == pl.List(pl.Utf8)
        for column in ("quadrant", "style", "split", "track_id", "label"):
            assert table.schema[column] == pl.Utf8 and table[column].null_count() == 0
        row = table.row(0, named=True)
        assert row["mood"] == sources[row["track_id"]]["mood_tags"]
    # A json's own quadrant/mood win over the mapping; missing information stays null.
    own = label_fields({"quadrant": "activated_pleasant", "mood": ["sad"], "split": "test"})
    assert own == {"quadrant": "activated_pleasant", "mood": ["sad"], "style": None, "split": "test", "track_id": None}
    assert label_fields({"mood_tags": ["energetic"]})["quadrant"] is None


def test_side_files_are_recorded_in_artifact_json(corpus_artifact, tmp_path):
    import hashlib

    out = tmp_path / "emb"
    res = build_embeddings(corpus_artifact / "mix", out, cfg=EmbedConfig(), embedder="logmel")
    files = json.loads((out / "artifact.json").read_text())["files"]
    assert set(files) == {f"{s}.{ext}" for s in res.samples for ext in ("npy", "parquet")}
    for name, entry in files.items():
        data = (out / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["size"] == len(data)


# --------------------------------------------------------------------------- clip-level rows


def test_clip_spans_drop_the_remainder_and_keep_short_recordings_whole():
    from mgdata.embed.base import clip_spans

    assert clip_spans(100, 10, 0.0) == [(0, 100)]
    assert clip_spans(100, 10, 4.0) == [(0, 40), (40, 80)]  # 2 s remainder dropped
    assert clip_spans(100, 10, 4.0, 3.0) == [(0, 40), (30, 70), (60, 100)]
    assert clip_spans(25, 10, 4.0) == [(0, 25)]  # shorter than one clip: one clip, the whole recording
    with pytest.raises(ValueError):
        clip_spans(0, 10, 4.0)


def test_clip_rows_are_the_clips_own_embeddings(corpus_artifact, tmp_path):
    """clip_s cuts each 6 s track into 2.5 s clips: one matrix row per clip, each the mean of its own windows."""
    from mgdata.audio import decode_artifact_audio

    cfg = EmbedConfig(clip_s=2.5)
    res = build_embeddings(corpus_artifact / "mix", tmp_path / "clips", cfg=cfg, embedder="logmel")
    emb = get_embedder("logmel", cfg)
    raw = next(iter_samples(corpus_artifact / "mix"))
    key, split = raw["__key__"], raw["__split__"]
    x, sr = decode_artifact_audio(raw["flac"])
    matrix, table = load_split(tmp_path / "clips", split)
    assert res.rows[split] == 2 * res.samples[split]  # 6 s -> clips at 0 and 2.5 s (1 s remainder dropped)
    rows = table.filter(pl.col("key") == key)
    assert rows["clip_index"].to_list() == [0, 1] and rows["start_s"].to_list() == [0.0, 2.5]
    for i, start in enumerate((0.0, 2.5)):
        piece = x[int(start * sr) : int((start + 2.5) * sr)]
        want = embed_clip(emb, piece, sr, window_s=2.0, hop_s=1.0).frames.mean(axis=0)
        np.testing.assert_allclose(matrix[rows["row"][i]], want, rtol=1e-5, atol=1e-5)
    assert set(rows["track_id"].to_list()) == {decode_json(raw["json"])["track_id"]}
    meta = decode_json(next(iter_samples(tmp_path / "clips"))["json"])
    assert meta["clip_starts_s"] == [0.0, 2.5] and meta["windowing"]["clip_s"] == 2.5
    # A clip longer than the track: one row per track, equal to the whole-sample embedding.
    whole = build_embeddings(corpus_artifact / "mix", cfg=EmbedConfig(), embedder="logmel")
    long = build_embeddings(corpus_artifact / "mix", cfg=EmbedConfig(clip_s=10.0), embedder="logmel")
    for s in whole.matrices:
        np.testing.assert_array_equal(long.matrices[s], whole.matrices[s])
    # Every backend writes the same bytes for clip rows too.
    build_embeddings(
        corpus_artifact / "mix",
        tmp_path / "clips2",
        cfg=cfg,
        embedder="logmel",
        executor=ExecConfig(backend="process", workers=2),
    )
    assert _sha256s(tmp_path / "clips") == _sha256s(tmp_path / "clips2")


def test_clip_s_is_validated_with_the_key():
    with pytest.raises(ParamsError, match="clip_s"):
        EmbedConfig(clip_s=4.0, aggregation="none")
    with pytest.raises(ParamsError, match="clip_s"):
        EmbedConfig(clip_s=-1.0)
    with pytest.raises(ParamsError, match=r"clip_s: expected 0 \(whole sample\) or a clip length >= window_s"):
        EmbedConfig(clip_s=1.0)  # shorter than the 2 s analysis window
    with pytest.raises(ParamsError, match="clip_hop_s"):
        EmbedConfig(clip_s=4.0, clip_hop_s=0.0)


def test_every_sample_json_is_an_embedding_record(corpus_artifact, tmp_path):
    from mgdata.embed.records import EmbeddingRecord

    build_embeddings(corpus_artifact / "mix", tmp_path / "e", cfg=EmbedConfig(clip_s=2.5), embedder="logmel")
    for raw in iter_samples(tmp_path / "e"):
        meta = decode_json(raw["json"])
        rec = EmbeddingRecord.from_dict(meta)
        assert rec.to_dict() == meta  # the record is the schema of the sample json
        assert decode_npy(raw["npy"]).shape[0] == rec.n_rows == 2 and "frame_times_s" not in meta
    with pytest.raises(InputError, match="embedding json lacks embedder"):
        EmbeddingRecord.from_dict({k: v for k, v in meta.items() if k != "embedder"})
    with pytest.raises(InputError, match="window"):
        EmbeddingRecord.from_dict({**meta, "n_windows": 0})
    with pytest.raises(InputError, match="embedding json is not an object"):
        EmbeddingRecord.from_dict([meta])
