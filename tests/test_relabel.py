"""Tests of emotion relabelling: mapping files, the first-mapped-tag rule, counters, CLI and stage."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import polars as pl
import pytest

from mgdata.config import from_dict
from mgdata.errors import InputError, ParamsError
from mgdata.labels.cli import main as cli_main
from mgdata.labels.cli import register_cli
from mgdata.labels.config import RelabelConfig
from mgdata.labels.relabel import (
    COLUMNS,
    QUADRANTS,
    TagMapping,
    available_mappings,
    build_relabel,
    load_mapping,
    relabel_tracks,
)
from mgdata.labels.stats import quadrant_table, table_to_dict
from mgdata.report import StageReport
from mgdata.sources.jamendo import read_split, split_files

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "jamendo"
PAPER1 = {
    "activated_pleasant": ["positive", "uplifting", "happy"],
    "deactivated_pleasant": ["relaxing", "calm"],
    "activated_unpleasant": ["dark", "dramatic"],
    "deactivated_unpleasant": ["sad", "melancholic"],
}


def _row(track_id, *tags, split="train", duration_s=60.0):
    return {"track_id": track_id, "tags": list(tags), "split": split, "duration_s": duration_s}


# ---------------------------------------------------------------- mappings


def test_paper1_is_the_published_mapping():
    mapping = load_mapping("paper1")
    assert "paper1" in available_mappings()
    assert mapping.name == "paper1"
    assert {q: [t.split("---")[1] for t in tags] for q, tags in mapping.quadrants.items()} == PAPER1
    assert mapping.quadrant_of("happy") == "activated_pleasant"
    assert mapping.quadrant_of("mood/theme---melancholic") == "deactivated_unpleasant"
    assert mapping.quadrant_of("genre---happy") is None  # another category is not a mood tag
    assert mapping.quadrant_of("film") is None


def test_mapping_unknown_quadrant_error_names_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nquadrants:\n  happy_place: [happy]\n  deactivated_pleasant: [calm]\n")
    with pytest.raises(InputError) as info:
        load_mapping(path)
    assert info.value.where == str(path)
    assert "unknown quadrant 'happy_place'" in str(info.value) and "activated_pleasant" in str(info.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: m\nquadrants:\n  activated_pleasant: [happy]\n  deactivated_pleasant: [happy]\n", "listed under both"),
        ("name: m\nquadrants:\n  activated_pleasant: happy\n", "non-empty list"),
        ("name: m\n", "missing key 'quadrants'"),
        ("name: m\nquadrant: {}\n", "unknown key 'quadrant'"),
        ("- happy\n", "expected a YAML mapping"),
        ("name: m\nquadrants: [\n", "invalid YAML"),
    ],
)
def test_mapping_validation(tmp_path, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        load_mapping(str(path))
    assert str(path) in str(info.value)


def test_mapping_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(ParamsError, match="relabel.mapping.*paper1"):
        load_mapping("paper9")
    with pytest.raises(InputError, match="not found"):
        load_mapping(tmp_path / "nope.yaml")


def test_user_mapping_file(tmp_path):
    path = tmp_path / "two.yml"
    path.write_text(
        "name: two\nquadrants:\n  activated_pleasant: [fun, 'mood/theme---party']\n  deactivated_unpleasant: [Sad]\n"
    )
    mapping = load_mapping(path)
    result = relabel_tracks([_row("a", "party"), _row("b", "sad"), _row("c", "happy")], mapping=mapping)
    assert result.table["quadrant"].to_list() == ["activated_pleasant", "deactivated_unpleasant"]
    assert result.dropped_ids == ("c",)
    assert TagMapping.from_dict(mapping.to_dict(), source="x").tag_to_quadrant == mapping.tag_to_quadrant


# ---------------------------------------------------------------- relabelling


def test_conflict_takes_first_mapped_tag_in_row_order():
    rows = [
        _row("t1", "sad", "happy"),  # row order, not alphabetical or quadrant order
        _row("t2", "happy", "sad"),
        _row("t3", "film", "calm", "dark"),  # unmapped tag first: skipped over
        _row("t4", "happy", "positive"),  # two tags, one quadrant: no conflict
    ]
    result = relabel_tracks(rows, mapping="paper1")
    assert result.table.select("track_id", "quadrant", "tag").rows() == [
        ("t1", "deactivated_unpleasant", "sad"),
        ("t2", "activated_pleasant", "happy"),
        ("t3", "deactivated_pleasant", "calm"),
        ("t4", "activated_pleasant", "happy"),
    ]
    assert result.conflict_ids == ("t1", "t2", "t3")
    assert result.conflicts == 3 and result.dropped == 0


def test_no_mapped_tag_is_dropped_and_counted_unknown_tags_counted():
    rows = [
        _row("keep", "mood/theme---happy"),
        _row("film", "mood/theme---film", "mood/theme---epic"),  # known tags, none mapped
        _row("typo", "hapy", "genre---rock"),  # unknown mood tag + other category
        _row("empty"),
        {"track_id": "null_tags", "tags": None},
    ]
    result = relabel_tracks(rows, mapping="paper1")
    assert result.table["track_id"].to_list() == ["keep"]
    assert result.dropped_ids == ("film", "typo", "empty", "null_tags")
    assert result.unknown_tags == {"hapy": 1}
    assert result.other_category_tags == {"genre---rock": 1}
    summary = result.to_dict()
    assert summary["tracks_in"] == 5 and summary["tracks_dropped"] == 4 and summary["tracks_labelled"] == 1
    assert summary["unknown_tag_occurrences"] == 1
    assert summary["quadrant_counts"] == {
        "activated_pleasant": 1,
        "deactivated_pleasant": 0,
        "activated_unpleasant": 0,
        "deactivated_unpleasant": 0,
    }


def test_bare_and_prefixed_tags_agree_and_duplicates_are_skipped():
    report = StageReport("t")
    result = relabel_tracks(
        [_row("a", "mood/theme---dark"), _row("b", "dark"), _row("a", "happy")], mapping="paper1", report=report
    )
    assert result.table["quadrant"].to_list() == ["activated_unpleasant", "activated_unpleasant"]
    assert result.duplicate_ids == ("a",) and result.n_input == 2
    assert report.skipped[0]["item"] == "a" and "duplicate" in report.skipped[0]["reason"]


def test_relabel_on_committed_slice():
    tracks = read_split(FIXTURE)
    result = relabel_tracks(tracks, mapping="paper1")
    assert tuple(result.table.columns) == COLUMNS
    assert result.n_input == 84 and result.dropped == 24 and result.conflicts == 12
    assert result.quadrant_counts() == {
        "activated_pleasant": 15,
        "deactivated_pleasant": 16,
        "activated_unpleasant": 17,
        "deactivated_unpleasant": 12,
    }
    assert result.unknown_tags == {} and result.other_category_tags == {}
    by_id = {r["track_id"]: r for r in result.table.to_dicts()}
    assert by_id["track_0045570"]["quadrant"] == "activated_unpleasant"  # dark, sad
    assert by_id["track_0045570"]["tag"] == "dark"
    assert by_id["track_0021509"]["quadrant"] == "activated_pleasant"  # positive, relaxing
    assert by_id["track_0366014"] == {  # dark, melancholic, sad (test split)
        "track_id": "track_0366014",
        "quadrant": "activated_unpleasant",
        "split": "test",
        "duration_s": 205.3,
        "tag": "dark",
    }
    # Every labelled track has its split and duration from the metadata.
    assert result.table["split"].null_count() == 0 and result.table["duration_s"].null_count() == 0


def test_quadrant_table_tracks_and_hours():
    rows = [
        _row("a", "happy", duration_s=1800.0),
        _row("b", "happy", duration_s=3600.0),
        _row("c", "sad", split="test", duration_s=900.0),
    ]
    qt = quadrant_table(relabel_tracks(rows).table)
    assert qt.height == 3 * len(QUADRANTS)  # train, test, all
    d = table_to_dict(qt)
    assert d["train"]["activated_pleasant"] == {"tracks": 2, "hours": 1.5}
    assert d["train"]["deactivated_unpleasant"] == {"tracks": 0, "hours": 0.0}
    assert d["test"]["deactivated_unpleasant"] == {"tracks": 1, "hours": 0.25}
    assert d["all"]["activated_pleasant"]["tracks"] == 2 and list(d) == ["train", "test", "all"]


# ---------------------------------------------------------------- CLI


def test_cli_relabel(tmp_path, capsys):
    files = split_files(FIXTURE)
    out = tmp_path / "q.parquet"
    stats = tmp_path / "stats.json"
    argv = ["relabel", "--output", str(out), "--stats", str(stats)]
    for path in files.values():
        argv += ["--input", str(path)]
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    assert "activated_unpleasant" in printed and "17" in printed
    assert "dropped (no mapped tag): 24" in printed and "conflicts (tags in several quadrants): 12" in printed
    df = pl.read_parquet(out)
    assert df.columns == list(COLUMNS) and df.height == 60
    assert set(df["split"].unique()) == {"train", "validation", "test"}
    assert json.loads(stats.read_text())["summary"]["tracks_dropped"] == 24


def test_cli_register_and_errors(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers(dest="command"))
    bad = tmp_path / "bad.tsv"
    bad.write_text(
        "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\nt1\ta\tb\tp.mp3\tx\tsad\nt2\ta\tb\tp.mp3\t5\tsad\n"
    )
    args = parser.parse_args(["relabel", "-i", str(bad), "-o", str(tmp_path / "o.parquet")])
    assert args.func(args) == 1
    assert f"{bad}:2" in capsys.readouterr().err
    args = parser.parse_args(["relabel", "-i", str(bad), "-o", str(tmp_path / "o.parquet"), "--skip-bad-rows"])
    assert args.func(args) == 0
    assert pl.read_parquet(tmp_path / "o.parquet")["track_id"].to_list() == ["t2"]
    args = parser.parse_args(["relabel", "-i", str(bad), "-o", str(tmp_path / "o.parquet"), "-m", "nosuch"])
    assert args.func(args) == 1


# ---------------------------------------------------------------- stage


def _manifest(path: Path) -> Path:
    pl.DataFrame(
        {
            "track_id": ["bach-b", "bach-a", "bach-c", "bach-d"],
            "split": ["train", "train", "test", "validation"],
            "duration_s": [36.0, 72.0, 18.0, 10.0],
            "tags": [["classical", "sad"], ["classical", "happy", "sad"], ["classical", "calm"], ["classical"]],
            "mood_tags": [["sad"], ["happy", "sad"], ["calm"], []],
        }
    ).write_parquet(path)
    return path


def test_build_relabel_corpus_only(tmp_path):
    manifest = _manifest(tmp_path / "manifest.parquet")
    report = StageReport("relabel")
    results = build_relabel(manifest, tmp_path / "out", cfg=RelabelConfig(), report=report)
    assert list(results) == ["corpus"]
    df = pl.read_parquet(tmp_path / "out" / "corpus_quadrants.parquet")
    assert df.rows() == [  # sorted by track id
        ("bach-a", "activated_pleasant", "train", 72.0, "happy"),
        ("bach-b", "deactivated_unpleasant", "train", 36.0, "sad"),
        ("bach-c", "deactivated_pleasant", "test", 18.0, "calm"),
    ]
    assert results["corpus"].dropped_ids == ("bach-d",) and results["corpus"].conflict_ids == ("bach-a",)
    assert not (tmp_path / "out" / "jamendo_quadrants.parquet").exists()
    # The full tag column also works; the style tag then counts as an unknown mood tag.
    alt = build_relabel(manifest, None, cfg=RelabelConfig(corpus_tag_column="tags"))["corpus"]
    assert alt.unknown_tags == {"classical": 4} and alt.table.height == 3


def test_build_relabel_bad_manifest(tmp_path):
    pl.DataFrame({"track_id": ["a"], "split": ["train"]}).write_parquet(tmp_path / "m.parquet")
    with pytest.raises(InputError, match="missing column"):
        build_relabel(tmp_path / "m.parquet", None, cfg=RelabelConfig())
    with pytest.raises(InputError, match="not found"):
        build_relabel(tmp_path / "nope.parquet", None, cfg=RelabelConfig())


def _stage_main():
    from mgdata.pipeline import stage_main

    return lambda argv: stage_main("relabel", argv)


def test_stage_writes_outputs_metrics_and_plot_deterministically(tmp_path, corpus_artifact):
    params = tmp_path / "params.yaml"
    params.write_text(f"relabel:\n  mapping: paper1\n  jamendo:\n    metadata_dir: {FIXTURE}\n")
    main = _stage_main()
    outputs = []
    for run in ("a", "b"):
        d = tmp_path / run
        argv = [
            "--params",
            str(params),
            "--manifest",
            str(corpus_artifact / "manifest.parquet"),
            "--out-dir",
            str(d / "data"),
            "--metrics",
            str(d / "metrics.json"),
            "--plots",
            str(d / "plots"),
            "--report",
            str(d / "report.json"),
        ]
        assert main(argv) == 0
        outputs.append(d)
    a, b = outputs
    for name in (
        "data/corpus_quadrants.parquet",
        "data/jamendo_quadrants.parquet",
        "metrics.json",
        "report.json",
        "plots/hours_per_class.png",
        "plots/hours_per_class.csv",
    ):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    flat = json.loads((a / "metrics.json").read_text())
    assert flat["jamendo_tracks_dropped"] == 24 and all(isinstance(v, (int, float)) for v in flat.values())
    metrics = json.loads((a / "report.json").read_text())
    corpus = pl.read_parquet(a / "data" / "corpus_quadrants.parquet")
    manifest = pl.read_parquet(corpus_artifact / "manifest.parquet")
    assert corpus.height == metrics["corpus"]["tracks_labelled"] == manifest.height  # every synthetic track has moods
    assert set(corpus["split"]) <= {"train", "validation", "test"}
    assert metrics["jamendo"]["tracks_dropped"] == 24 and metrics["jamendo"]["tracks_conflicting"] == 12
    assert metrics["jamendo"]["per_split"]["all"]["activated_unpleasant"]["tracks"] == 17
    hours = sum(v["hours"] for v in metrics["corpus"]["per_split"]["all"].values())
    assert hours == pytest.approx(manifest["duration_s"].sum() / 3600.0, abs=1e-3)
    assert (a / "plots" / "hours_per_class.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_relabel_config_section():
    cfg = from_dict(RelabelConfig, {"mapping": "paper1", "jamendo": {"metadata_dir": "x", "split_index": 2}}, "relabel")
    assert cfg.jamendo.metadata_dir == "x" and cfg.jamendo.split_index == 2
    assert RelabelConfig().jamendo.metadata_dir is None  # no dependency on ../shared by default
    with pytest.raises(ParamsError, match="relabel.corpus_tag_column"):
        from_dict(RelabelConfig, {"corpus_tag_column": "moods"}, "relabel")
    with pytest.raises(ParamsError, match="relabel.jamendo.metadata"):
        from_dict(RelabelConfig, {"jamendo": {"metadata": "x"}}, "relabel")
