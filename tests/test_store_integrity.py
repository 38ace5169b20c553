"""Shard store integrity: full index verification, verifying readers, unsafe members, lock, side files, inspect.

Each test here failed on the single-module store (before the package): edited
indexes passed, readers did not verify, unsafe members passed, two writers raced,
side files were not recorded.
"""

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from mgdata.cli import main as cli_main
from mgdata.config import ShardConfig
from mgdata.errors import MgdataError, ShardError
from mgdata.provenance import Provenance
from mgdata.store import (
    ARTIFACT_JSON,
    JOURNAL_NAME,
    LOCK_NAME,
    ArtifactWriter,
    DecodeError,
    Sample,
    decode_json,
    decode_sample_json,
    encode_json,
    inspect_artifact,
    iter_samples,
    iter_shard,
    list_shards,
    read_artifact_info,
)

PROV = Provenance(builder="test", source="synthetic", source_version="1", licence="CC0", seed=0, params_hash="x")
CAPS = ShardConfig(max_samples=4, max_bytes=1 << 20)


def _sample(i: int) -> tuple[str, Sample]:
    payload = hashlib.sha256(str(i).encode()).digest() * (20 + i)  # varied sizes, not block aligned
    meta = encode_json({"i": i, "provenance": PROV.sample_dict()})
    return ("train" if i % 4 else "test"), Sample(
        f"s{i:03d}", {"bin": payload, "json": meta}, seconds=0.5, labels=(f"c{i % 2}",)
    )


def _write(out, n=16, fp="fp", files=None, caps=CAPS):
    with ArtifactWriter(out, fingerprint=fp, provenance=PROV, shards=caps) as w:
        for i in range(n):
            split, s = _sample(i)
            if s.key not in w.done_keys:
                w.write(split, s)
        for name, data in (files or {}).items():
            w.add_file(name, data)
    return w


def _digests(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(d).iterdir())}


def _edit_index(shard: Path, fn) -> None:
    idx = Path(str(shard) + ".idx")
    index = json.loads(idx.read_text())
    fn(index)
    idx.write_text(json.dumps(index, indent=1, sort_keys=True))


def _rename_first_key(index):
    index["keys"][0] = "s999"


def _labels_plus_five(index):
    label = sorted(index["labels"])[0]
    index["labels"][label] += 5


# --------------------------------------------------------------------------- hole 1: edited indexes


@pytest.mark.parametrize("edit", [_rename_first_key, _labels_plus_five], ids=["renamed-key", "label-plus-5"])
def test_valid_json_index_edit_fails_inspect(tmp_path, edit, capsys):
    _write(tmp_path / "a")
    shard = tmp_path / "a" / "train-000001.tar"
    _edit_index(shard, edit)
    report = inspect_artifact(tmp_path / "a")
    assert not report["ok"] and not report["verified"]
    assert [e["shard"] for e in report["errors"]] == [str(shard)]
    assert cli_main(["shards", "inspect", str(tmp_path / "a")]) == 1
    out = capsys.readouterr()
    assert "verified" not in out.out and "FAILED" in out.out and "train-000001.tar" in out.err
    with pytest.raises(ShardError, match="train-000001.tar"):
        list(iter_samples(tmp_path / "a"))


@pytest.mark.parametrize("edit", [_rename_first_key, _labels_plus_five], ids=["renamed-key", "label-plus-5"])
def test_resume_rebuilds_shard_with_edited_index(tmp_path, edit):
    _write(tmp_path / "clean")
    _write(tmp_path / "a")
    _edit_index(tmp_path / "a" / "train-000001.tar", edit)
    w = _write(tmp_path / "a")
    assert "s999" not in w.done_keys
    assert w.resumed_shards == 2  # test-000000, train-000000 kept; train-000001 and after rebuilt
    keys = [s["__key__"] for s in iter_samples(tmp_path / "a")]
    assert len(keys) == len(set(keys)) == 16
    assert _digests(tmp_path / "a") == _digests(tmp_path / "clean")


def test_index_edit_with_recomputed_digest_caught_by_artifact_json(tmp_path):
    """An editor who also fixes the index's own digest is caught by the digest artifact.json recorded."""
    from mgdata.store import index_digest

    _write(tmp_path / "clean")
    _write(tmp_path / "a")

    def sneaky(index):
        _labels_plus_five(index)
        index["index_sha256"] = index_digest(index)

    _edit_index(tmp_path / "a" / "train-000000.tar", sneaky)
    report = inspect_artifact(tmp_path / "a")
    assert not report["ok"] and "artifact.json" in report["errors"][0]["error"]
    _write(tmp_path / "a")
    assert _digests(tmp_path / "a") == _digests(tmp_path / "clean")


def test_index_digest_recorded_in_artifact_json(tmp_path):
    _write(tmp_path / "a")
    info = read_artifact_info(tmp_path / "a")
    assert sorted(info["indexes"]) == [p.name for p in list_shards(tmp_path / "a")]
    assert info["files"] == {}


# --------------------------------------------------------------------------- hole 2/3: readers verify, one line


def test_reader_verifies_by_default_before_yielding_corrupt_sample(tmp_path):
    _write(tmp_path / "a")
    shard = tmp_path / "a" / "train-000000.tar"
    data = bytearray(shard.read_bytes())
    data[600] ^= 0x10  # inside the first sample's first payload
    shard.write_bytes(bytes(data))
    got = []
    with pytest.raises(ShardError, match=r"train-000000.tar: sample 's001': sha256 mismatch"):
        for s in iter_samples(tmp_path / "a", split="train"):
            got.append(s["__key__"])
    assert got == []  # the corrupt sample never reached the consumer
    assert len(list(iter_samples(tmp_path / "a", verify=False))) == 16  # documented opt-out


def test_reader_names_missing_shard_listed_in_artifact_json(tmp_path):
    _write(tmp_path / "a")
    (tmp_path / "a" / "train-000001.tar").unlink()
    with pytest.raises(ShardError, match="train-000001.tar: listed in artifact.json but missing"):
        list(iter_samples(tmp_path / "a"))
    report = inspect_artifact(tmp_path / "a")
    assert not report["ok"] and any("train-000001.tar" in e["shard"] for e in report["errors"])


def test_corrupt_json_member_is_one_line_error_naming_shard(tmp_path):
    with ArtifactWriter(tmp_path / "a", fingerprint="f", provenance=PROV, shards=CAPS) as w:
        w.write("train", Sample("a", {"json": b"\xff\xfe not json"}))
    sample = next(iter_samples(tmp_path / "a"))
    with pytest.raises(MgdataError, match=r"train-000000.tar: sample a member json: not valid UTF-8 JSON") as exc:
        decode_sample_json(sample)
    assert "\n" not in str(exc.value)
    with pytest.raises(DecodeError):
        decode_json(b"{")
    with pytest.raises(ValueError):  # still a ValueError for callers that catch that
        decode_json(b"\xff")


def test_truncated_artifact_json_is_one_line_naming_it(tmp_path, capsys):
    _write(tmp_path / "a")
    info = tmp_path / "a" / ARTIFACT_JSON
    info.write_bytes(info.read_bytes()[:100])
    with pytest.raises(MgdataError, match=r"artifact.json: corrupt or truncated JSON") as exc:
        read_artifact_info(tmp_path / "a")
    assert "\n" not in str(exc.value)
    with pytest.raises(MgdataError, match="artifact.json"):
        list(iter_samples(tmp_path / "a"))
    assert cli_main(["shards", "inspect", str(tmp_path / "a")]) == 1
    assert "artifact.json: corrupt or truncated JSON" in capsys.readouterr().err
    _write(tmp_path / "a")  # a rerun repairs it
    assert inspect_artifact(tmp_path / "a")["ok"]


# --------------------------------------------------------------------------- hole 4: unsafe members


def _evil_tar(path: Path, kind: str) -> str:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        ok = tarfile.TarInfo("a.json")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"{}"))
        if kind in ("dotdot", "absolute"):
            name = "../../evil.json" if kind == "dotdot" else "/tmp/evil.json"
            ti = tarfile.TarInfo(name)
            ti.size = 2
            tar.addfile(ti, io.BytesIO(b"{}"))
            return name
        ti = tarfile.TarInfo("b.json")
        ti.type = {
            "symlink": tarfile.SYMTYPE,
            "hardlink": tarfile.LNKTYPE,
            "device": tarfile.CHRTYPE,
            "fifo": tarfile.FIFOTYPE,
        }[kind]
        ti.linkname = "/etc/passwd" if kind in ("symlink", "hardlink") else ""
        tar.addfile(ti)
        return "b.json"


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "device", "fifo"])
def test_unsafe_members_refused_by_reader_and_inspect(tmp_path, kind, capsys):
    art = tmp_path / "a"
    art.mkdir()
    shard = art / "train-000000.tar"
    name = _evil_tar(shard, kind)
    with pytest.raises(ShardError, match=f"unsafe tar member {name!r}"):
        list(iter_shard(shard, verify=False))
    assert cli_main(["shards", "inspect", str(art)]) == 1
    err = capsys.readouterr().err
    assert f"unsafe tar member {name!r}" in err
    assert not (tmp_path.parent / "evil.json").exists()


# --------------------------------------------------------------------------- hole 6: lock


def test_second_writer_fails_naming_folder_and_pid(tmp_path):
    out = tmp_path / "a"
    with ArtifactWriter(out, fingerprint="fp", provenance=PROV, shards=CAPS) as w:
        w.write("train", _sample(1)[1])
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
        with pytest.raises(MgdataError, match=rf"{out}: another writer \(pid {os.getpid()}\)"):
            with ArtifactWriter(out, fingerprint="other", provenance=PROV, shards=CAPS):
                pass
        w.write("train", _sample(2)[1])
    assert not (out / LOCK_NAME).exists()  # nothing of the lock stays in the output
    assert sorted(p.name for p in out.iterdir()) == ["artifact.json", "train-000000.tar", "train-000000.tar.idx"]
    assert inspect_artifact(out)["ok"]


def test_lock_released_on_error_and_stale_lock_file_ignored(tmp_path):
    out = tmp_path / "a"
    with pytest.raises(RuntimeError):
        with ArtifactWriter(out, fingerprint="fp", provenance=PROV, shards=CAPS):
            raise RuntimeError("builder failed")
    assert not (out / LOCK_NAME).exists()
    (out / LOCK_NAME).write_text("12345\n")  # left by a SIGKILLed writer: no flock on it any more
    _write(out)
    assert not (out / LOCK_NAME).exists()
    _write(tmp_path / "clean")
    assert _digests(out) == _digests(tmp_path / "clean")


# --------------------------------------------------------------------------- side files


def test_add_file_records_and_inspect_verifies(tmp_path, capsys):
    src = tmp_path / "table.parquet"
    src.write_bytes(b"PAR1 not really")
    w = _write(tmp_path / "a", files={"pairs.parquet": src, "codebook.npy": b"\x93NUMPY", "train.npy": str(src)})
    files = read_artifact_info(tmp_path / "a")["files"]
    assert list(files) == ["codebook.npy", "pairs.parquet", "train.npy"]
    assert files["codebook.npy"] == {"sha256": hashlib.sha256(b"\x93NUMPY").hexdigest(), "size": 6}
    assert files["pairs.parquet"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert w.summary["files"] == files
    assert not (tmp_path / "a" / JOURNAL_NAME).exists()
    report = inspect_artifact(tmp_path / "a")
    assert report["ok"] and report["artifacts"][str(tmp_path / "a")]["files"]["pairs.parquet"]["ok"]
    # determinism: a second build is byte-identical, side files included
    _write(tmp_path / "b", files={"pairs.parquet": src, "codebook.npy": b"\x93NUMPY", "train.npy": str(src)})
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    # corruption and deletion are each named
    (tmp_path / "a" / "codebook.npy").write_bytes(b"\x93NUMPX")
    (tmp_path / "a" / "train.npy").unlink()
    assert cli_main(["shards", "inspect", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "codebook.npy: side file sha256 does not match" in err
    assert "train.npy: side file listed in artifact.json is missing" in err


def test_add_file_in_place_and_name_rules(tmp_path):
    out = tmp_path / "a"
    with ArtifactWriter(out, fingerprint="fp", provenance=PROV, shards=CAPS) as w:
        (out / "manifest.parquet").write_bytes(b"rows")
        assert w.add_file("manifest.parquet", out / "manifest.parquet")["size"] == 4
        assert w.add_file("manifest.parquet", b"rows2")["size"] == 5  # re-adding replaces: one record
        for bad in ("../x", "a/b", ".hidden", "artifact.json", "train-000000.tar", "x.tar.idx", "x.tmp", ""):
            with pytest.raises(MgdataError, match="side file name"):
                w.add_file(bad, b"x")
        with pytest.raises(MgdataError, match="no such file"):
            w.add_file("y.bin", tmp_path / "missing")
    assert list(w.summary["files"]) == ["manifest.parquet"]
    with pytest.raises(MgdataError, match="already closed"):
        w.add_file("late.bin", b"x")


def test_side_files_survive_resume_and_stale_ones_are_removed(tmp_path):
    out = tmp_path / "a"
    with pytest.raises(RuntimeError):  # a crash after add_file, before artifact.json
        with ArtifactWriter(out, fingerprint="fp", provenance=PROV, shards=CAPS) as w:
            w.write("train", _sample(1)[1])
            w.add_file("codebook.npy", b"cb")
            raise RuntimeError("killed")
    assert (out / JOURNAL_NAME).exists() and not (out / ARTIFACT_JSON).exists()
    with ArtifactWriter(out, fingerprint="fp", provenance=PROV, shards=CAPS) as w:
        assert w.done_files == {"codebook.npy"}
        w.write("train", _sample(1)[1])
    assert list(w.summary["files"]) == ["codebook.npy"]  # not lost
    with ArtifactWriter(out, fingerprint="fp", provenance=PROV, shards=CAPS) as w:  # complete artifact rerun
        assert w.done_files == {"codebook.npy"} and w.done_keys == {"s001"}
        w.add_file("codebook.npy", b"cb")  # a builder that re-adds: still one record
    assert w.summary["files"] == {"codebook.npy": {"sha256": hashlib.sha256(b"cb").hexdigest(), "size": 2}}
    with ArtifactWriter(out, fingerprint="other", provenance=PROV, shards=CAPS) as w:  # other params
        assert not w.done_files
        w.write("train", _sample(1)[1])
    assert not (out / "codebook.npy").exists() and w.summary["files"] == {}


# --------------------------------------------------------------------------- inspect polish


def test_inspect_reports_hours_per_artifact_not_summed(tmp_path, capsys):
    _write(tmp_path / "data" / "mix", n=8)
    _write(tmp_path / "data" / "stems", n=16)
    report = inspect_artifact(tmp_path / "data")
    assert report["ok"] and report["samples"] == 24
    arts = report["artifacts"]
    assert arts[str(tmp_path / "data" / "mix")]["seconds"] == pytest.approx(4.0)
    assert arts[str(tmp_path / "data" / "stems")]["seconds"] == pytest.approx(8.0)
    assert report["hours"] is None and report["seconds"] is None
    assert cli_main(["shards", "inspect", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'data' / 'mix'}: 3 shards, 8 samples, 0.001 h audio" in out
    assert "checksums: verified" in out


def test_inspect_missing_path_is_one_line(tmp_path, capsys):
    assert cli_main(["shards", "inspect", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope: no such file or directory" in err


def test_inspect_stray_shard_not_in_artifact_json(tmp_path):
    _write(tmp_path / "a")
    extra = tmp_path / "a" / "train-000009.tar"
    extra.write_bytes((tmp_path / "a" / "train-000000.tar").read_bytes())
    report = inspect_artifact(tmp_path / "a")
    assert not report["ok"] and report["errors"][0]["shard"] == str(extra)


def test_every_tar_byte_is_covered_padding_and_end_blocks(tmp_path):
    """Bytes outside payloads (padding, end-of-archive) are bound by layout_sha256."""
    _write(tmp_path / "a")
    shard = tmp_path / "a" / "train-000000.tar"
    index = json.loads(Path(str(shard) + ".idx").read_text())
    first = index["member_sizes"][0][0]  # first member payload starts at byte 512
    data = bytearray(shard.read_bytes())
    assert first % 512 and data[512 + first] == 0
    data[512 + first] = 1  # a padding byte after the first payload
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="train-000000.tar: tar headers, padding or size do not match"):
        list(iter_samples(tmp_path / "a"))
    data[512 + first] = 0
    data[-1] = 7  # the record padding at the very end
    shard.write_bytes(bytes(data))
    assert not inspect_artifact(tmp_path / "a")["ok"]


def test_add_file_move_and_removed_carried_over_file(tmp_path):
    out = tmp_path / "a"
    with ArtifactWriter(out, fingerprint="fp", provenance=PROV, shards=CAPS) as w:
        part = out / ".train.npy.part"
        part.write_bytes(b"matrix")
        rec = w.add_file("train.npy", part, move=True)
        assert not part.exists() and (out / "train.npy").read_bytes() == b"matrix"
        w.add_file("test.npy", b"t")
    assert rec == {"sha256": hashlib.sha256(b"matrix").hexdigest(), "size": 6}
    with ArtifactWriter(out, fingerprint="fp", provenance=PROV, shards=CAPS) as w:
        assert w.done_files == {"train.npy", "test.npy"}
        (out / "test.npy").unlink()  # a builder clearing stale outputs: the record goes with the file
    assert list(w.summary["files"]) == ["train.npy"]
    assert inspect_artifact(out)["ok"]
    with pytest.raises(MgdataError, match="removed or changed before close"):
        with ArtifactWriter(out, fingerprint="fp", provenance=PROV, shards=CAPS) as w:
            w.add_file("x.bin", b"x")
            (out / "x.bin").unlink()


HOLDER = """
import sys
from mgdata.config import ShardConfig
from mgdata.provenance import Provenance
from mgdata.store import ArtifactWriter
prov = Provenance(builder="t", source="s", source_version="1", licence="CC0", seed=0, params_hash="x")
with ArtifactWriter(sys.argv[1], fingerprint="fp", provenance=prov, shards=ShardConfig()):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_lock_across_processes_names_the_holder_pid(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "a"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(MgdataError, match=rf"{out}: another writer \(pid {holder.pid}\)"):
            _write(out)
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    _write(out)  # free again once the holder finished
    assert inspect_artifact(out)["ok"]
