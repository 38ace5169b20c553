"""Tests of the stable split rule (mgdata.splits) and of the corpus plan's splits.

The growth test plans the corpus at 60 then 120 tracks with music21 parsing
replaced by a fast stand-in (the split rule never looks at the score), so it
runs in seconds; the default-world test parses the real default corpus and is
marked slow.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mgdata.config import from_dict
from mgdata.corpus import build as corpus_build
from mgdata.corpus.build import plan_records
from mgdata.corpus.config import CorpusConfig
from mgdata.corpus.scores import BadScore, ParsedScore, PartNotes, composer_of, selection_order, track_id_of
from mgdata.errors import InputError
from mgdata.exec import ExecConfig
from mgdata.labels import QUADRANTS
from mgdata.splits import read_split_file, stable_split, stable_splits, unit_hash

FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}


def fake_parse(score_id: str, *, min_parts: int = 2) -> ParsedScore:
    """A stand-in for music21 parsing: mode and notes derived from the id; every 9th score is bad."""
    if unit_hash("bad", score_id) < 1 / 9:
        raise BadScore(score_id, "parse_failed", "synthetic failure")
    mode = "major" if unit_hash("mode", score_id) < 0.6 else "minor"
    parts = tuple(PartNotes(f"part{i + 1}", tuple((float(q), 1.0, 60 + 4 * i) for q in range(16))) for i in range(3))
    return ParsedScore(
        score_id=score_id,
        track_id=track_id_of(score_id),
        composer=composer_of(score_id),
        title=score_id,
        key=f"C {mode}",
        mode=mode,
        parts=parts,
    )


# --------------------------------------------------------------------------- the rule


def test_stable_split_is_pure_and_follows_fractions():
    ids = [f"track-{i:05d}" for i in range(20000)]
    a = stable_splits(ids, seed=0, fractions=FRACTIONS)
    # Pure: the same id gets the same split whatever else is asked for, and in any order.
    assert a == stable_splits(list(reversed(ids)), seed=0, fractions=FRACTIONS)
    assert all(stable_split(i, seed=0, fractions=FRACTIONS) == a[i] for i in ids[:500])
    assert {i: a[i] for i in ids[:50]} == stable_splits(ids[:50], seed=0, fractions=FRACTIONS)
    shares = {k: v / len(ids) for k, v in Counter(a.values()).items()}
    for name, share in FRACTIONS.items():
        assert abs(shares[name] - share) < 0.015
    b = stable_splits(ids, seed=1, fractions=FRACTIONS)
    assert sum(a[i] != b[i] for i in ids) > 5000  # the seed matters
    # Fractions are normalised; a zero share never receives a track.
    c = stable_splits(ids[:2000], seed=0, fractions={"train": 7, "validation": 0, "test": 3})
    assert set(c.values()) == {"train", "test"}
    with pytest.raises(ValueError):
        stable_split("x", seed=0, fractions={"train": -1, "test": 2})


def test_overrides_win():
    out = stable_splits(["a", "b", "c"], seed=0, fractions=FRACTIONS, overrides={"b": "validation", "zz": "test"})
    assert out["b"] == "validation" and set(out) == {"a", "b", "c"}


def test_adding_a_repertoire_keeps_the_other_draw_orders():
    cands = {"a": [f"a/{i}" for i in range(6)], "b": [f"b/{i}" for i in range(4)]}
    more = {**cands, "0first": [f"0first/{i}" for i in range(3)]}
    order, bigger = selection_order(cands, 0), selection_order(more, 0)
    for composer in ("a", "b"):
        assert [s for s in order if s.startswith(composer)] == [s for s in bigger if s.startswith(composer)]


# --------------------------------------------------------------------------- split files


def test_read_split_file(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("# my split\ntrack_id,split\na,train\n\nb, test\n")
    assert read_split_file(path, FRACTIONS) == {"a": "train", "b": "test"}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("track_id,split\na,train\nb,holdout\n", r"s\.csv:3: unknown split 'holdout' for 'b'"),
        ("track_id,split\na,train\nb,test\na,test\n", r"s\.csv:4: duplicate track id 'a' \(first on line 2\)"),
        ("id,fold\na,train\n", r"s\.csv:1: expected the header 'track_id,split'"),
        ("track_id,split\na,train,extra\n", r"s\.csv:2: expected 'track_id,split'"),
        ("", r"s\.csv: empty split file"),
    ],
)
def test_split_file_errors_name_file_and_line(tmp_path, text, match):
    path = tmp_path / "s.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as exc:
        read_split_file(path, FRACTIONS)
    assert "\n" not in str(exc.value)


def test_missing_split_file(tmp_path):
    with pytest.raises(InputError, match="nope.csv: cannot read split file"):
        read_split_file(tmp_path / "nope.csv", FRACTIONS)


# --------------------------------------------------------------------------- the corpus plan


def test_growing_the_corpus_keeps_every_split(monkeypatch):
    monkeypatch.setattr(corpus_build, "parse_score", fake_parse)
    cfg = CorpusConfig(composers=["bach", "monteverdi", "trecento"], n_tracks=60, fractions=FRACTIONS)
    _, small = plan_records(cfg)
    _, large = plan_records(CorpusConfig(**{**cfg.__dict__, "n_tracks": 120}))
    assert len(small) == 60 and len(large) == 120
    grown = {r.track_id: r for r in large}
    assert set(grown) >= {r.track_id for r in small}
    for r in small:  # split and every per-track draw unchanged
        g = grown[r.track_id]
        assert (g.split, g.quadrant, g.tempo_bpm, g.velocity, g.programs) == (
            r.split,
            r.quadrant,
            r.tempo_bpm,
            r.velocity,
            r.programs,
        )
    # Adding a repertoire keeps the existing tracks (per-composer draw order) and their splits.
    _, wider = plan_records(
        CorpusConfig(**{**cfg.__dict__, "composers": ["bach", "monteverdi", "trecento", "palestrina"], "n_tracks": 160})
    )
    wider_ids = {r.track_id: r.split for r in wider}
    assert all(wider_ids[r.track_id] == r.split for r in small)


def test_plan_is_the_same_for_serial_and_process(monkeypatch):
    # Fork workers inherit the patched parser, so the comparison covers batching and ordering only.
    monkeypatch.setattr(corpus_build, "parse_score", fake_parse)
    cfg = CorpusConfig(composers=["bach", "palestrina"], n_tracks=30, fractions=FRACTIONS)
    _, serial = plan_records(cfg)
    _, pooled = plan_records(cfg, executor=ExecConfig(backend="process", workers=2))
    assert [r.to_dict() for r in serial] == [r.to_dict() for r in pooled]


def default_cfg() -> CorpusConfig:
    import yaml

    path = Path(__file__).resolve().parents[1] / "params.yaml"
    return from_dict(CorpusConfig, yaml.safe_load(path.read_text())["corpus"], "corpus")


@pytest.mark.slow
def test_default_world_has_three_per_quadrant_and_style_in_held_out_splits():
    cfg = default_cfg()
    _, records = plan_records(cfg, executor=ExecConfig(backend="process", workers=2))
    assert len(records) == cfg.n_tracks >= 200
    styles = sorted({r.style for r in records})
    assert styles == sorted(cfg.composers)
    for split in ("validation", "test"):
        held = [r for r in records if r.split == split]
        quadrants, by_style = Counter(r.quadrant for r in held), Counter(r.style for r in held)
        assert all(quadrants[q] >= 3 for q in QUADRANTS), (split, quadrants)
        assert all(by_style[s] >= 3 for s in styles), (split, by_style)
    assert sum(r.split == "test" for r in records) >= 40
