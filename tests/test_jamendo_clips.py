"""Tests of the MTG-Jamendo clips artifact (corpus mix format) and its stage script."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from mgdata.audio import decode_audio
from mgdata.config import ShardConfig
from mgdata.errors import InputError, ParamsError
from mgdata.generate.build import scan_corpus
from mgdata.labels.relabel import JAMENDO_LICENCE, read_manifest_tracks
from mgdata.report import StageReport
from mgdata.sources.jamendo import JamendoConfig
from mgdata.sources.jamendo_clips import build_jamendo_clips, track_key
from mgdata.store import decode_json, inspect_artifact, iter_samples, list_shards
from mgdata.testing import tone

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "jamendo" / "splits" / "split-0"
SPLITS = ("train", "validation", "test")
ROWS_PER_SPLIT = 3
MP3_SR = 22050
TRACK_S = 3.0
SHORT_S = 1.5  # one track shorter than the clip


@pytest.fixture(scope="module")
def jamendo_tree(tmp_path_factory):
    """Metadata (3 rows per split from the committed slice) + MP3s; one missing, one garbage, one short."""
    root = tmp_path_factory.mktemp("jamendo")
    split_dir = root / "data" / "splits" / "split-0"
    split_dir.mkdir(parents=True)
    audio = root / "audio"
    rows: dict[str, list[list[str]]] = {}
    for split in SPLITS:
        lines = (FIXTURE / f"autotagging_moodtheme-{split}.tsv").read_text().splitlines()
        kept = lines[1 : 1 + ROWS_PER_SPLIT]
        (split_dir / f"autotagging_moodtheme-{split}.tsv").write_text("\n".join([lines[0], *kept]) + "\n")
        rows[split] = [line.split("\t") for line in kept]
    all_rows = [r for split in SPLITS for r in rows[split]]
    missing = rows["train"][1]
    garbage = rows["validation"][0]
    short = rows["test"][2]
    for i, row in enumerate(all_rows):
        path = audio / row[3]
        path.parent.mkdir(parents=True, exist_ok=True)
        if row is missing:
            continue
        if row is garbage:
            path.write_bytes(b"not an mp3 at all " * 64)
            continue
        x = tone(220.0 * (1 + i), SHORT_S if row is short else TRACK_S, MP3_SR)
        sf.write(path, x, MP3_SR, format="MP3")
    return {
        "root": root,
        "metadata_dir": root / "data",
        "audio_root": audio,
        "rows": rows,
        "missing": audio / missing[3],
        "garbage": audio / garbage[3],
        "short": short[0],
    }


def _cfg(tree, **kw) -> JamendoConfig:
    base = dict(
        metadata_dir=str(tree["metadata_dir"]),
        audio_root=str(tree["audio_root"]),
        clip_s=2.0,
        clip_position="middle",
        sample_rate=8000,
    )
    return JamendoConfig(**{**base, **kw})


SHARDS = ShardConfig(max_samples=2)


@pytest.fixture(scope="module")
def built(jamendo_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("jamendo_out")
    report = StageReport("jamendo")
    result = build_jamendo_clips(out, cfg=_cfg(jamendo_tree), shards=SHARDS, report=report, progress=False)
    return out, result, report


def test_artifact_verifies_with_provenance_and_per_split_counts(built):
    out, result, report = built
    info = inspect_artifact(out)
    assert info["ok"], info["errors"]
    assert info["splits"] == {"train": 2, "validation": 2, "test": 3}
    assert result.per_split == {"train": 2, "validation": 2, "test": 3}
    summary = json.loads((out / "mix" / "artifact.json").read_text())
    prov = summary["provenance"]
    assert prov["builder"] == "jamendo" and prov["source"] == "mtg-jamendo autotagging_moodtheme split-0"
    assert prov["licence"] == JAMENDO_LICENCE and prov["seed"] == 0 and len(prov["source_version"]) == 64
    assert summary["members"] == ["flac", "json"]
    m = report.to_dict()
    assert m["tracks"] == 7 and m["tracks_in_split_files"] == 9 and m["tracks_per_split"]["test"] == 3


def test_missing_and_unreadable_files_are_skipped_and_named(built, jamendo_tree):
    _, result, report = built
    items = {s["item"]: s["reason"] for s in report.skipped}
    assert set(items) == {str(jamendo_tree["missing"]), str(jamendo_tree["garbage"])}
    assert "not found" in items[str(jamendo_tree["missing"])]
    assert "unreadable" in items[str(jamendo_tree["garbage"])]
    assert result.skipped_tracks == 2 and report.to_dict()["tracks_skipped"] == 2


def test_fail_on_error_raises_naming_the_file(jamendo_tree, tmp_path):
    with pytest.raises(InputError, match=str(jamendo_tree["missing"].name)):
        build_jamendo_clips(tmp_path, cfg=_cfg(jamendo_tree, fail_on_error=True), shards=SHARDS, progress=False)


def test_json_fields_clip_length_and_sample_rate(built, jamendo_tree):
    out, _, _ = built
    samples = list(iter_samples(out / "mix", verify=True))
    assert sorted(s["__split__"] for s in samples) == sorted(["train"] * 2 + ["validation"] * 2 + ["test"] * 3)
    by_split: dict[str, list[str]] = {}
    for s in samples:
        meta = decode_json(s["json"])
        by_split.setdefault(meta["split"], []).append(meta["track_id"])
        assert s["__key__"] == track_key(meta["track_id"]) and s["__key__"].startswith("jamendo_track_")
        assert meta["split"] == s["__split__"]
        assert meta["tags_full"] and all(t.startswith("mood/theme---") for t in meta["tags_full"])
        assert meta["tags"] == [t.split("---")[1] for t in meta["tags_full"]] == meta["mood_tags"]
        assert meta["path"].endswith(".mp3") and meta["artist_id"].startswith("artist_")
        assert meta["album_id"].startswith("album_") and meta["sample_rate"] == 8000
        prov = meta["provenance"]
        assert prov["source"] == "mtg-jamendo" and prov["licence"] == JAMENDO_LICENCE and prov["seed"] == 0
        x, sr = decode_audio(s["flac"])
        assert sr == 8000 and x.ndim == 1
        assert meta["duration_s"] == pytest.approx(x.size / sr, abs=1e-6)
        if meta["track_id"] == jamendo_tree["short"]:  # shorter than the clip: whole track, no padding
            assert meta["clip_start_s"] == 0.0 and meta["duration_s"] == pytest.approx(SHORT_S, abs=0.06)
        else:  # 2 s centred in a 3 s track
            assert x.size == 2 * 8000 and meta["clip_start_s"] == pytest.approx(0.5, abs=0.06)
            assert np.abs(x).max() > 0.1
    for _split, ids in by_split.items():  # deterministic order: split, then track id
        assert ids == sorted(ids)
    assert "track_0000950" not in by_split["train"]  # the missing file


def test_manifest_columns_and_relabel_compatibility(built):
    out, result, _ = built
    df = pl.read_parquet(out / "manifest.parquet")
    assert {"track_id", "split", "tags", "mood_tags", "duration_s", "sample_rate"} <= set(df.columns)
    assert df.schema["tags"] == pl.List(pl.String) and df.schema["mood_tags"] == pl.List(pl.String)
    assert df.height == 7 and df["split"].to_list() == ["train"] * 2 + ["validation"] * 2 + ["test"] * 3
    tracks = read_manifest_tracks(out / "manifest.parquet")
    assert len(tracks) == 7 and all(t["tags"] for t in tracks)
    assert result.manifest().equals(df)


def test_generate_reads_it_like_the_corpus_mix(built):
    out, _, _ = built
    labels = {t: "activated_pleasant" for t in pl.read_parquet(out / "manifest.parquet")["track_id"]}
    tracks, licences = scan_corpus(out / "mix", labels)
    assert len(tracks) == 2 and all(t.split == "train" for t in tracks)
    assert set(licences.values()) == {JAMENDO_LICENCE}


def test_rebuild_is_byte_identical_and_resumes(built, jamendo_tree, tmp_path):
    out, _, _ = built
    cfg = _cfg(jamendo_tree)
    second = build_jamendo_clips(tmp_path, cfg=cfg, shards=SHARDS, progress=False)
    names = sorted(p.name for p in (out / "mix").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "mix").iterdir())
    for name in names + ["../manifest.parquet"]:
        assert (out / "mix" / name).read_bytes() == (tmp_path / "mix" / name).read_bytes(), name
    assert second.resumed_tracks == 0
    # Crash simulation: lose the last test shard; a rerun decodes only its tracks.
    last = list_shards(tmp_path / "mix", "test")[-1]
    last.unlink()
    third = build_jamendo_clips(tmp_path, cfg=cfg, shards=SHARDS, progress=False)
    assert third.resumed_tracks == 6 and len(third.records) == 7
    for name in names + ["../manifest.parquet"]:
        assert (out / "mix" / name).read_bytes() == (tmp_path / "mix" / name).read_bytes(), name


def test_missing_params_fail_before_any_work(jamendo_tree, tmp_path):
    with pytest.raises(ParamsError, match=r"relabel\.jamendo\.metadata_dir"):
        build_jamendo_clips(tmp_path / "a", cfg=_cfg(jamendo_tree, metadata_dir=None), shards=SHARDS)
    with pytest.raises(ParamsError, match="audio_root"):
        build_jamendo_clips(tmp_path / "b", cfg=_cfg(jamendo_tree, audio_root=None), shards=SHARDS)
    with pytest.raises(ParamsError, match="audio_root"):
        build_jamendo_clips(tmp_path / "c", cfg=_cfg(jamendo_tree, audio_root=str(tmp_path / "nope")), shards=SHARDS)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_in_memory_build_matches(built, jamendo_tree):
    out, result, _ = built
    mem = build_jamendo_clips(None, cfg=_cfg(jamendo_tree), shards=SHARDS, progress=False)
    assert mem.records == result.records
    on_disk = {s["__key__"]: s["flac"] for s in iter_samples(out / "mix")}
    assert {s.key: s.members["flac"] for _, s in mem.samples} == on_disk


def test_stage_script(jamendo_tree, tmp_path):
    from mgdata.pipeline import stage_main

    params = tmp_path / "params.yaml"
    params.write_text(
        "relabel:\n  jamendo:\n"
        f"    metadata_dir: {jamendo_tree['metadata_dir']}\n    audio_root: {jamendo_tree['audio_root']}\n"
        "    clip_s: 1.0\n    sample_rate: 8000\nshards:\n  max_samples: 4\n"
    )
    metrics = tmp_path / "metrics" / "jamendo.json"
    report = tmp_path / "report.json"
    assert (
        stage_main(
            "jamendo",
            [
                "--params",
                str(params),
                "--out-dir",
                str(tmp_path / "data"),
                "--metrics",
                str(metrics),
                "--report",
                str(report),
                "--no-progress",
            ],
        )
        == 0
    )
    m = json.loads(metrics.read_text())
    assert m["tracks"] == 7 and m["skipped"] == 2
    assert json.loads(report.read_text())["tracks_per_split"] == {"train": 2, "validation": 2, "test": 3}
    assert inspect_artifact(tmp_path / "data")["ok"]
    assert "sh stages/py stages/jamendo.py" in (ROOT / "stages" / "jamendo.py").read_text()


def test_embed_reads_it_like_the_corpus_mix(built):
    from mgdata.embed.build import build_embeddings
    from mgdata.embed.config import EmbedConfig

    out, _, _ = built
    res = build_embeddings(out / "mix", None, cfg=EmbedConfig(), embedder="logmel", scenario="clean")
    assert res.samples == {"train": 2, "validation": 2, "test": 3}
    labels = {lab for table in res.tables.values() for labs in table["labels"].to_list() for lab in labs}
    assert labels == {"background", "calm", "melodic", "meditative"}
