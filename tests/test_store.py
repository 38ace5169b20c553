"""Shard store: determinism, caps, atomic crash-resume, streaming reader, inspect."""

import hashlib
import json
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mgdata.audio import decode_audio, encode_flac
from mgdata.cli import main as cli_main
from mgdata.config import ShardConfig
from mgdata.errors import MgdataError, ShardError
from mgdata.provenance import Provenance
from mgdata.store import (
    ArtifactWriter,
    Sample,
    decode_json,
    decode_npy,
    encode_json,
    encode_npy,
    inspect_artifact,
    iter_samples,
    list_shards,
    make_key,
)
from mgdata.testing import tone

PROV = Provenance(builder="test", source="synthetic", source_version="1", licence="CC0", seed=0, params_hash="x")


def _samples(n, sr=8000):
    for i in range(n):
        audio = tone(220.0 * (1 + i % 5), 0.25, sr)
        yield (
            ("train" if i % 5 else "test"),
            Sample(
                f"s{i:04d}",
                {
                    "flac": encode_flac(audio, sr),
                    "json": encode_json({"i": i, "provenance": PROV.sample_dict()}),
                    "npy": encode_npy(np.arange(i)),
                },
                seconds=0.25,
                labels=(f"c{i % 3}",),
            ),
        )


def _write(out, n=40, caps=ShardConfig(max_samples=7, max_bytes=1 << 20)):
    with ArtifactWriter(out, fingerprint="fp", provenance=PROV, shards=caps) as w:
        for split, s in _samples(n):
            if s.key not in w.done_keys:
                w.write(split, s)
    return w.summary


def _digests(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(d).iterdir())}


def test_byte_identical_across_runs(tmp_path):
    _write(tmp_path / "a")
    _write(tmp_path / "b")
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")


def test_tar_members_are_normalised(tmp_path):
    _write(tmp_path / "a", n=6)
    with tarfile.open(tmp_path / "a" / "train-000000.tar") as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos[:3]] == ["s0001.flac", "s0001.json", "s0001.npy"]
    assert all(i.mtime == 0 and i.uid == 0 and i.gid == 0 and i.mode == 0o644 for i in infos)


def test_caps_on_samples_and_bytes(tmp_path):
    summary = _write(tmp_path / "a", n=40, caps=ShardConfig(max_samples=7, max_bytes=1 << 20))
    assert summary["splits"]["train"]["samples"] == 32
    assert len(summary["splits"]["train"]["shards"]) == 5  # ceil(32 / 7)
    small = _write(tmp_path / "b", n=40, caps=ShardConfig(max_samples=100, max_bytes=8192))
    for shard in list_shards(tmp_path / "b"):
        idx = json.loads(Path(str(shard) + ".idx").read_text())
        assert shard.stat().st_size <= 8192 + 10240 or idx["samples"] == 1  # tar pads to a record
        assert idx["bytes"] == shard.stat().st_size
    assert small["samples"] == 40


def test_streaming_reader_round_trip(tmp_path):
    _write(tmp_path / "a", n=40, caps=ShardConfig(max_samples=3, max_bytes=1 << 20))
    assert len(list_shards(tmp_path / "a")) > 10
    got = list(iter_samples(tmp_path / "a", verify=True))
    assert len(got) == 40
    by_key = {s["__key__"]: s for s in got}
    x, sr = decode_audio(by_key["s0007"]["flac"])
    assert sr == 8000 and x.shape == (2000,)
    assert decode_json(by_key["s0007"]["json"])["i"] == 7
    np.testing.assert_array_equal(decode_npy(by_key["s0007"]["npy"]), np.arange(7))
    assert {s["__split__"] for s in got} == {"train", "test"}
    assert len(list(iter_samples(tmp_path / "a", split="test"))) == 8


def test_reader_works_with_webdataset_library(tmp_path):
    wds = pytest.importorskip("webdataset")
    _write(tmp_path / "a", n=10)
    urls = [str(p) for p in list_shards(tmp_path / "a", split="train")]
    keys = [s["__key__"] for s in wds.WebDataset(urls, shardshuffle=False)]
    assert keys == [s["__key__"] for s in iter_samples(tmp_path / "a", split="train")]


def test_members_must_match_and_keys_valid(tmp_path):
    with pytest.raises(MgdataError, match="lowercase|must match"):
        Sample("Bad.Key", {"json": b"{}"})
    assert make_key("Bach", "BWV 66.6") == "bach_bwv-66-6"
    with pytest.raises(MgdataError, match="members"):
        with ArtifactWriter(tmp_path, fingerprint="f", provenance=PROV, shards=ShardConfig()) as w:
            w.write("train", Sample("a", {"json": b"{}"}))
            w.write("train", Sample("b", {"json": b"{}", "flac": b""}))
    with pytest.raises(MgdataError, match="duplicate"):
        with ArtifactWriter(tmp_path / "d", fingerprint="f", provenance=PROV, shards=ShardConfig()) as w:
            w.write("train", Sample("a", {"json": b"{}"}))
            w.write("train", Sample("a", {"json": b"{}"}))


WRITER_SCRIPT = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {tests!r})
    from test_store import _samples, PROV
    from mgdata.config import ShardConfig
    from mgdata.store import ArtifactWriter
    out, kill_at = sys.argv[1], int(sys.argv[2])
    with ArtifactWriter(out, fingerprint="fp", provenance=PROV, shards=ShardConfig(max_samples=7, max_bytes=1 << 20)) as w:
        for n, (split, s) in enumerate(_samples(40)):
            if n == kill_at:
                os.kill(os.getpid(), 9)   # hard kill mid-shard: no cleanup runs
            if s.key not in w.done_keys:
                w.write(split, s)
    """
)


def test_crash_resume_matches_uninterrupted_run(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT.format(tests=str(Path(__file__).parent)))
    out = tmp_path / "crashed"
    proc = subprocess.run([sys.executable, str(script), str(out), "24"])
    assert proc.returncode == -9
    assert not (out / "artifact.json").exists()
    assert any(p.name.endswith(".tmp") for p in out.iterdir())  # a half-written shard was left behind
    # Corrupt one committed shard too: it must not be taken as done.
    victim = out / "train-000001.tar"
    victim.write_bytes(victim.read_bytes()[:-2000])
    resumed = _write(out)
    _write(tmp_path / "clean")
    assert _digests(out) == _digests(tmp_path / "clean")
    assert resumed["samples"] == 40


def test_resume_skips_done_work(tmp_path):
    _write(tmp_path / "a")
    with ArtifactWriter(
        tmp_path / "a", fingerprint="fp", provenance=PROV, shards=ShardConfig(max_samples=7, max_bytes=1 << 20)
    ) as w:
        assert len(w.done_keys) == 40
    # another fingerprint: nothing is reused
    with ArtifactWriter(tmp_path / "a", fingerprint="other", provenance=PROV, shards=ShardConfig()) as w:
        assert not w.done_keys


def test_verify_detects_corruption(tmp_path):
    _write(tmp_path / "a", n=10)
    shard = tmp_path / "a" / "train-000000.tar"
    data = bytearray(shard.read_bytes())
    data[700] ^= 0xFF  # flip a byte inside the first member's payload
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="train-000000.tar"):
        list(iter_samples(tmp_path / "a", verify=True))
    assert len(list(iter_samples(tmp_path / "a", verify=False))) == 10  # without verify the bytes still parse


def test_inspect_counts_and_json_cli(tmp_path, capsys):
    _write(tmp_path / "a", n=40)
    report = inspect_artifact(tmp_path / "a")
    assert report["ok"] and report["samples"] == 40
    assert report["splits"] == {"test": 8, "train": 32}
    assert report["labels"] == {"c0": 14, "c1": 13, "c2": 13}
    assert report["seconds"] == pytest.approx(10.0)
    assert cli_main(["shards", "inspect", str(tmp_path / "a"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"shards", "samples", "seconds", "splits", "labels", "ok"} <= set(out)


def test_inspect_truncated_shard_exits_nonzero_naming_it(tmp_path, capsys):
    _write(tmp_path / "a", n=40)
    shard = tmp_path / "a" / "train-000002.tar"
    shard.write_bytes(shard.read_bytes()[:3000])
    code = cli_main(["shards", "inspect", str(tmp_path / "a"), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    out = json.loads(captured.out)
    assert out["ok"] is False
    assert "train-000002.tar" in captured.err
    assert out["errors"][0]["shard"].endswith("train-000002.tar")


def test_inspect_cli_as_subprocess(tmp_path):
    _write(tmp_path / "a", n=10)
    (tmp_path / "a" / "test-000000.tar").write_bytes(b"\0" * 100)
    proc = subprocess.run(
        [sys.executable, "-m", "mgdata", "shards", "inspect", str(tmp_path / "a")], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "test-000000.tar" in proc.stderr


def test_flac_roundtrip_and_determinism():
    x = tone([440, 660], 0.5, 16000)
    assert encode_flac(x, 16000) == encode_flac(x, 16000)
    y, sr = decode_audio(encode_flac(x, 16000))
    assert sr == 16000 and np.max(np.abs(x - y)) < 1e-4
    with pytest.raises(ValueError, match="non-finite"):
        encode_flac(np.array([np.nan], dtype=np.float32), 16000)


def test_inspect_requires_provenance(tmp_path):
    with ArtifactWriter(tmp_path / "a", fingerprint="f", provenance=PROV, shards=ShardConfig()) as w:
        w.write("train", Sample("a", {"json": encode_json({"provenance": PROV.sample_dict()})}))
        w.write("train", Sample("b", {"json": encode_json({"provenance": {"source": "x", "seed": 0}})}))
    report = inspect_artifact(tmp_path / "a")
    assert not report["ok"]
    assert "sample b: json provenance lacks licence" in report["errors"][0]["error"]
    # A generated clip made from a text prompt (compose, MusicGen text mode) names its prompt instead of a source.
    with ArtifactWriter(tmp_path / "t", fingerprint="f", provenance=PROV, shards=ShardConfig()) as w:
        w.write(
            "train",
            Sample("p", {"json": encode_json({"provenance": {"prompt": "style=bach", "licence": "l", "seed": 1}})}),
        )
        w.write("train", Sample("q", {"json": encode_json({"provenance": {"licence": "l", "seed": 1}})}))
    errors = inspect_artifact(tmp_path / "t")["errors"]
    assert len(errors) == 1 and "sample q: json provenance lacks source" in errors[0]["error"]
    with pytest.raises(MgdataError, match="licence"):
        Provenance(builder="b", source="s", source_version="1", licence="", seed=0, params_hash="h")


def test_long_keys_round_trip(tmp_path):
    key = "k" + "x" * 150  # longer than a ustar name: written as a GNU long-name record
    with ArtifactWriter(tmp_path / "a", fingerprint="f", provenance=PROV, shards=ShardConfig()) as w:
        w.write("train", Sample(key, {"json": encode_json({"provenance": PROV.sample_dict()})}))
    got = list(iter_samples(tmp_path / "a", verify=True))
    assert [s["__key__"] for s in got] == [key]
    with tarfile.open(tmp_path / "a" / "train-000000.tar") as tar:  # and the stdlib agrees
        assert tar.getnames() == [f"{key}.json"]
