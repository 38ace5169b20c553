"""The generate builder: budget per class, provenance, determinism, resume, retries, regeneration."""

import argparse
import json
import math
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mgdata.audio import decode_audio, rms_db
from mgdata.config import ShardConfig
from mgdata.errors import ParamsError
from mgdata.generate import build as gbuild
from mgdata.generate.base import GENERATORS
from mgdata.generate.build import build_generated, load_labels
from mgdata.generate.config import GenerateConfig, ResynthConfig
from mgdata.generate.policy import derive_seed
from mgdata.report import StageReport
from mgdata.store import decode_json, iter_samples
from mgdata.testing import make_corpus_artifact

SHARDS = ShardConfig(max_samples=3)
CFG = GenerateConfig(fraction=0.5, sample_s=1.0, seed=7, resynth=ResynthConfig(sample_rate=16000))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Corpus mix with 10 tracks of 4 s, and a hand-made labels frame.

    Labels: training tracks alternate a/b except one left unlabelled; class "c"
    only labels a non-training track (an empty class for the budget).
    """
    root = make_corpus_artifact(tmp_path_factory.mktemp("gen_corpus"), n_tracks=10, n_stems=2, duration_s=4.0)
    metas = [decode_json(s["json"]) for s in iter_samples(root / "mix")]
    train = sorted(m["track_id"] for m in metas if m["split"] == "train")
    other = sorted(m["track_id"] for m in metas if m["split"] != "train")
    rows = [(t, "ab"[i % 2]) for i, t in enumerate(train[:-1])]  # train[-1] unlabelled
    rows.append((other[0], "c"))
    labels = pl.DataFrame(
        {
            "track_id": [r[0] for r in rows],
            "quadrant": [r[1] for r in rows],
            "split": [next(m["split"] for m in metas if m["track_id"] == r[0]) for r in rows],
            "duration_s": [4.0] * len(rows),
        }
    )
    return {"mix": root / "mix", "labels": labels, "train": train, "metas": {m["track_id"]: m for m in metas}}


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("gen_out") / "resynth"
    report = StageReport("generate/resynth")
    result = build_generated(corpus["mix"], corpus["labels"], out, cfg=CFG, shards=SHARDS, report=report)
    return {"out": out, "result": result, "report": report.to_dict()}


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def test_budget_per_class_and_report(corpus, built):
    result, report = built["result"], built["report"]
    labelled_train = corpus["train"][:-1]
    train_s = 4.0 * len(labelled_train)
    b = result.plan.budget
    assert b.train_seconds == pytest.approx(train_s)
    assert b.classes == ("a", "b")
    n = math.floor(0.5 * train_s / 2 / 1.0)
    assert b.samples_per_class == n and result.n_samples == 2 * n
    secs = [result.per_class[c]["seconds"] for c in b.classes]
    assert max(secs) - min(secs) <= CFG.sample_s  # equal within one sample
    assert b.budget_s - 2 * CFG.sample_s < result.seconds <= b.budget_s + 1e-9
    assert report["per_class"]["a"]["samples"] == n and report["per_class"]["a"]["sources_used"] >= 1
    assert report["tracks_unlabelled"] == 1
    assert report["budget"]["samples_per_class"] == n
    assert any(s["item"] == "class c" and "empty class" in s["reason"] for s in report["skipped_items"])
    assert report["retries"] == 0 and report["samples_generated"] == 2 * n


def test_samples_carry_label_split_and_provenance(corpus, built):
    samples = list(iter_samples(built["out"], verify=True))
    assert len(samples) == built["result"].n_samples
    assert {s["__split__"] for s in samples} == {"train"}
    used = Counter()
    for s in samples:
        meta = decode_json(s["json"])
        prov = meta["provenance"]
        src = prov["source"]
        assert meta["split"] == "train" and meta["label"] == prov["label"]
        # The label is the class of the source, a labelled training track.
        assert src["key"] in corpus["train"] and corpus["metas"][src["key"]]["split"] == "train"
        assert meta["label"] == "ab"[corpus["train"].index(src["key"]) % 2]
        assert 0 <= src["offset_s"] <= 4.0 - src["duration_s"]
        used[(src["key"], src["offset_s"])] += 1
        assert prov["seed"] == meta["seed"] == derive_seed(CFG.seed, "sample", meta["key"])
        assert prov["generator"] == "resynth" and prov["model"] and prov["revision"]
        assert prov["settings"]["settings"]["n_harmonics"] == CFG.resynth.n_harmonics
        assert prov["policy"]["fraction"] == CFG.fraction and prov["params_hash"] == meta["params_hash"]
        assert prov["licence"] and prov["mgdata_version"] and "prompt" in prov
        x, sr = decode_audio(s["flac"])
        assert sr == 16000 and len(x) == 16000 and rms_db(x) > CFG.silence_db
    assert max(used.values()) == 1  # without replacement


def test_build_is_deterministic_and_returns_samples_without_out_dir(corpus, built, tmp_path):
    out2 = tmp_path / "again"
    build_generated(corpus["mix"], corpus["labels"], out2, cfg=CFG, shards=SHARDS)
    assert _files(out2) == _files(built["out"])
    mem = build_generated(corpus["mix"], corpus["labels"], None, cfg=CFG, shards=SHARDS)
    on_disk = {s["__key__"]: s for s in iter_samples(built["out"])}
    assert [s.key for s in mem.samples] == sorted(on_disk)
    assert all(
        s.members["flac"] == on_disk[s.key]["flac"] and s.members["json"] == on_disk[s.key]["json"] for s in mem.samples
    )


def test_resume_after_deleting_a_shard(corpus, built, tmp_path):
    out = tmp_path / "resume"
    shutil.copytree(built["out"], out)
    shards = sorted(out.glob("train-*.tar"))
    assert len(shards) >= 3
    shards[1].unlink()
    result = build_generated(corpus["mix"], corpus["labels"], out, cfg=CFG, shards=SHARDS)
    assert 0 < result.generated < result.n_samples and result.resumed == 3
    assert _files(out) == _files(built["out"])


def test_regenerate_cli_matches_shard_bytes(corpus, built, tmp_path, capsys):
    from mgdata.generate.cli import register_cli

    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers())
    sample = next(iter(iter_samples(built["out"])))
    key = sample["__key__"]
    json_path = tmp_path / f"{key}.json"
    json_path.write_bytes(sample["json"])
    out = tmp_path / "regen.flac"
    for ref in (key, str(json_path)):
        args = parser.parse_args(
            [
                "generate",
                "regenerate",
                ref,
                "--artifact",
                str(built["out"]),
                "--corpus",
                str(corpus["mix"]),
                "--out",
                str(out),
                "--check",
            ]
        )
        assert args.func(args) == 0
        assert out.read_bytes() == sample["flac"]
    assert "matches the shard bytes" in capsys.readouterr().out
    args = parser.parse_args(["generate", "show", key, "--artifact", str(built["out"])])
    assert args.func(args) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["provenance"]["source"]["key"] == json.loads(sample["json"])["source_key"]


class FlakyTextGenerator:
    """Test double: text mode; NaN on every key's first call, silent on the second call of "*_00000"
    keys, and always silent for key "b_00001" (so it fails after all retries)."""

    name = "flaky"
    mode = "text"
    sample_rate = 8000

    def __init__(self, cfg=None):
        self.calls = Counter()

    def describe(self):
        return {"model": "flaky-test-double", "revision": "1"}

    def prompt_for(self, request):
        return request.prompt or f"A {request.label} track."

    def generate(self, requests):
        out = []
        for r in requests:
            self.calls[r.key] += 1
            n = int(r.duration_s * self.sample_rate)
            if self.calls[r.key] == 1:
                out.append(np.full(n, np.nan, np.float32))
            elif r.key == "b_00001" or (self.calls[r.key] == 2 and r.key.endswith("_00000")):
                out.append(np.zeros(n, np.float32))
            else:
                t = np.arange(n) / self.sample_rate
                out.append((0.3 * np.sin(2 * np.pi * (200 + r.seed % 300) * t)).astype(np.float32))
        return out


def test_nan_and_silent_output_are_retried_with_next_seed(corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(GENERATORS, "flaky", f"{__name__}:FlakyTextGenerator")
    cfg = GenerateConfig(fraction=0.5, sample_s=1.0, seed=1, max_retries=3)
    report = StageReport("generate/flaky")
    # Text mode needs no audio: corpus None takes split/duration from the labels table.
    result = build_generated(
        None, corpus["labels"], tmp_path / "flaky", cfg=cfg, shards=SHARDS, report=report, generator="flaky"
    )
    n_planned = len(result.plan.items)
    assert result.failed == ["b_00001"]
    assert result.n_samples == n_planned - 1
    # 1 retry for each successful key, +1 more for the two *_00000 keys, 3 for the failing key.
    assert result.retries == (n_planned - 1) + 2 + 3
    rep = report.to_dict()
    assert rep["retries"] == result.retries and rep["samples_failed"] == 1
    assert any(s["item"] == "b_00001" and "generation failed" in s["reason"] for s in rep["skipped_items"])
    for s in iter_samples(tmp_path / "flaky"):
        meta = decode_json(s["json"])
        base = derive_seed(cfg.seed, "sample", meta["key"])
        extra = 2 if meta["key"].endswith("_00000") else 1
        assert meta["seed"] == base + extra == meta["provenance"]["seed"]
        assert meta["provenance"]["retries"] == extra and meta["prompt"] == f"A {meta['label']} track."
        x, sr = decode_audio(s["flac"])
        assert sr == 8000 and np.all(np.isfinite(x)) and rms_db(x) > cfg.silence_db


def test_shortage_error_and_bad_label_column(corpus, tmp_path):
    with pytest.raises(ParamsError, match="on_shortage: class 'b' has 12 training clips of 1 s .* 14 are needed"):
        build_generated(
            corpus["mix"],
            corpus["labels"],
            None,
            shards=SHARDS,
            cfg=GenerateConfig(fraction=1.0, sample_s=1.0, on_shortage="error"),
        )
    with pytest.raises(ParamsError, match="label_column"):
        build_generated(
            corpus["mix"], corpus["labels"], None, shards=SHARDS, cfg=GenerateConfig(label_column="valence")
        )


def test_load_labels_skips_nulls_and_rejects_conflicts(tmp_path):
    df = pl.DataFrame({"track_id": ["x", "y", "z"], "quadrant": ["a", None, "b"]})
    mapping, h = load_labels(df, "quadrant")
    assert mapping == {"x": "a", "z": "b"} and len(h) == 64
    path = tmp_path / "labels.parquet"
    df.write_parquet(path)
    assert load_labels(path, "quadrant")[0] == mapping
    with pytest.raises(gbuild.InputError, match="two labels"):
        load_labels(pl.DataFrame({"track_id": ["x", "x"], "quadrant": ["a", "b"]}), "quadrant")


def test_stage_script_writes_artifact_and_metrics(corpus, built, tmp_path):
    import yaml

    from mgdata.pipeline import stage_main

    params = tmp_path / "params.yaml"
    # The executor section reaches the builder (2 worker processes here).
    params.write_text(
        yaml.safe_dump(
            {
                "generate": {"fraction": 0.5, "sample_s": 1.0, "seed": 7},
                "shards": {"max_samples": 3},
                "executor": {"backend": "process", "workers": 2},
            }
        )
    )
    labels = tmp_path / "labels.parquet"
    corpus["labels"].write_parquet(labels)
    out, metrics = tmp_path / "data/generate/resynth", tmp_path / "metrics/generate/resynth.json"
    assert (
        stage_main(
            "generate",
            [
                "--params",
                str(params),
                "--generator",
                "resynth",
                "--corpus",
                str(corpus["mix"]),
                "--labels",
                str(labels),
                "--out-dir",
                str(out),
                "--metrics",
                str(metrics),
                "--no-progress",
            ],
        )
        == 0
    )
    # Metrics hold numbers only; the full report (per class) sits beside them.
    rep = json.loads(metrics.with_name(metrics.stem + ".report.json").read_text())
    assert rep["total_samples"] == built["result"].n_samples and set(rep["per_class"]) == {"a", "b"}
    # Same params and inputs as the fixture build: same shard bytes (labels hash is the file's here,
    # so compare the audio members rather than the fingerprint-bearing json).
    flacs = {s["__key__"]: s["flac"] for s in iter_samples(out)}
    assert flacs == {s["__key__"]: s["flac"] for s in iter_samples(built["out"])}


@pytest.fixture(scope="module")
def tiny_musicgen(tmp_path_factory):
    tm = pytest.importorskip("mgdata.generate.testing_models")
    return tm.make_tiny_musicgen(tmp_path_factory.mktemp("tiny_musicgen") / "model")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["text", "primed"])
def test_musicgen_through_the_builder_and_regenerate(corpus, tiny_musicgen, tmp_path, mode):
    from mgdata.generate.config import MusicgenConfig

    labels = corpus["labels"].with_columns(
        pl.col("quadrant").replace({"a": "activated_pleasant", "b": "deactivated_unpleasant"})
    )
    cfg = GenerateConfig(
        fraction=0.25,
        sample_s=0.5,
        seed=2,
        musicgen=MusicgenConfig(model=str(tiny_musicgen), mode=mode, prime_seconds=1.0, batch_size=2, device="cpu"),
    )
    result = build_generated(corpus["mix"], labels, tmp_path / mode, cfg=cfg, shards=SHARDS, generator="musicgen")
    assert result.n_samples == 2 * result.plan.budget.samples_per_class > 0
    samples = list(iter_samples(tmp_path / mode))
    for s in samples:
        meta = decode_json(s["json"])
        prov = meta["provenance"]
        assert meta["prompt"].startswith(f"A {meta['label'].replace('_', ' ')} track.")
        assert prov["model_hash"] and prov["model"] == str(tiny_musicgen)
        assert (prov["prime"] is not None) == (mode == "primed") and prov["source"] is None
        if mode == "primed":
            assert prov["prime"]["key"] in corpus["train"] and prov["prime"]["duration_s"] == 1.0
    meta = decode_json(samples[-1]["json"])
    y, sr = gbuild.regenerate(meta, corpus["mix"])
    from mgdata.audio import encode_flac

    assert encode_flac(y, sr) == samples[-1]["flac"]


# --------------------------------------------------------------------------- executor + labels


def _sha256s(d: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.is_file()}


def test_every_backend_writes_byte_identical_files(corpus, built, tmp_path):
    from mgdata.exec import ExecConfig

    digests = {}
    for name, exe in {
        "process1": ExecConfig(backend="process", workers=1),
        "process2": ExecConfig(backend="process", workers=2, max_pending=1),
    }.items():
        result = build_generated(corpus["mix"], corpus["labels"], tmp_path / name, cfg=CFG, shards=SHARDS, executor=exe)
        assert result.fingerprint == built["result"].fingerprint  # the executor is not fingerprinted
        digests[name] = _sha256s(tmp_path / name)
    assert digests["process1"] == digests["process2"] == _sha256s(built["out"])  # the fixture build is serial
    assert sum(n.endswith(".tar") for n in digests["process2"]) >= 3


def test_generated_samples_carry_the_label_fields_of_their_source(corpus, built):
    for s in iter_samples(built["out"]):
        meta = decode_json(s["json"])
        src = corpus["metas"][meta["provenance"]["source"]["key"]]
        assert meta["track_id"] == src["track_id"] and meta["split"] == "train" == src["split"]
        assert meta["mood"] == src["mood_tags"] and meta["style"] == src["style"]
        # The corpus json has no quadrant here: the labels table's quadrant column gives it.
        assert meta["quadrant"] == meta["label"]


def test_every_generated_json_is_a_generated_record(built):
    from mgdata.errors import InputError
    from mgdata.generate.records import GeneratedRecord

    n = 0
    for s in iter_samples(built["out"]):
        meta = decode_json(s["json"])
        assert GeneratedRecord.from_dict(meta).to_dict() == meta  # the record is the schema of the json
        n += 1
    assert n > 0
    with pytest.raises(InputError, match="generated json lacks seed"):
        GeneratedRecord.from_dict({k: v for k, v in meta.items() if k != "seed"})
    with pytest.raises(InputError, match="training data"):
        GeneratedRecord.from_dict({**meta, "split": "test"})


def test_text_mode_samples_have_the_class_quadrant_and_no_source_fields(corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(GENERATORS, "flaky", f"{__name__}:FlakyTextGenerator")
    cfg = GenerateConfig(fraction=0.5, sample_s=1.0, seed=1, max_retries=3)
    build_generated(None, corpus["labels"], tmp_path / "flaky", cfg=cfg, shards=SHARDS, generator="flaky")
    for s in iter_samples(tmp_path / "flaky"):
        meta = decode_json(s["json"])
        assert meta["quadrant"] == meta["label"] and meta["split"] == "train"
        assert meta["track_id"] is None and meta["mood"] is None and meta["style"] is None
