"""What a pull brings in is checked before it is used: unsafe tar members, unsafe URIs, shards that do not match
their index; a corrupt local artifact is never pushed."""

import io
import json
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from mgdata.errors import InputError, ShardError
from mgdata.hub import artifact_files, check_tar_members, parse_hub_uri
from mgdata.testing import make_corpus_artifact
from mgdata.testing.hub_server import HubServer

FAKE_TOKEN = "hf_mgdataFAKEsafety000000000000000"


def make_tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for m in members:
            tar.addfile(m, io.BytesIO(b"x" * m.size) if m.isfile() else None)
    return path


def info(name: str, kind=tarfile.REGTYPE, linkname: str = "", size: int = 1) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = linkname
    ti.size = size if kind == tarfile.REGTYPE else 0
    return ti


@pytest.mark.parametrize(
    "bad, message",
    [
        (info("../evil.json"), r"member '\.\./evil\.json' refers to a parent folder"),
        (info("a/../../evil.json"), r"member 'a/\.\./\.\./evil\.json' refers to a parent folder"),
        (info("/etc/evil.json"), r"member '/etc/evil\.json' has an absolute path"),
        (info("k.flac", tarfile.SYMTYPE, "/etc/passwd"), r"member 'k\.flac' is a symlink \(to '/etc/passwd'\)"),
        (info("k.json", tarfile.LNKTYPE, "../x"), r"member 'k\.json' is a hard link"),
        (info("k.fifo", tarfile.FIFOTYPE), r"member 'k\.fifo' is not a regular file"),
    ],
)
def test_unsafe_tar_members_are_refused_by_name(tmp_path, bad, message):
    tar = make_tar(tmp_path / "train-000000.tar", [info("ok.json"), bad])
    with pytest.raises(ShardError, match=message) as exc:
        check_tar_members(tar)
    assert str(tar) in str(exc.value)


def test_safe_shards_pass(tmp_path):
    art = make_corpus_artifact(tmp_path / "c", n_tracks=3, n_stems=1, duration_s=1.0) / "mix"
    assert sum(check_tar_members(p) for p in art.glob("*.tar")) == 2 * 3


@pytest.mark.parametrize(
    "uri, where",
    [
        ("hf://datasets/org/name@v1", ("dataset", "org/name", "v1", "")),
        ("hf://datasets/org/name", ("dataset", "org/name", "main", "")),
        (
            "hf://datasets/org/name@0123456789abcdef0123456789abcdef01234567/mix",
            ("dataset", "org/name", "0123456789abcdef0123456789abcdef01234567", "mix"),
        ),
        ("hf://datasets/org/na.me-1@v1.2/a/b/", ("dataset", "org/na.me-1", "v1.2", "a/b")),
    ],
)
def test_parse_hub_uri(uri, where):
    h = parse_hub_uri(uri)
    assert (h.repo_type, h.repo_id, h.revision, h.path) == where
    assert h.pinned == (len(h.revision) == 40)
    assert ".." not in h.local_name() and not h.local_name().startswith("/")


@pytest.mark.parametrize(
    "uri",
    [
        "datasets/org/name",
        "hf://org/name",
        "hf://datasets/org",
        "hf://datasets/org/n@v1/../x",
        "hf://datasets/../n@v1",
        "hf://datasets/org/name@v1//x",
    ],
)
def test_bad_uris_are_refused(uri):
    with pytest.raises(InputError, match="hf://|unsafe path"):
        parse_hub_uri(uri)


def test_corrupt_artifact_is_never_pushed(tmp_path):
    art = make_corpus_artifact(tmp_path / "c", n_tracks=3, n_stems=1, duration_s=1.0) / "mix"
    tar = next(art.glob("train-*.tar"))
    data = bytearray(tar.read_bytes())
    data[600] ^= 0xFF
    tar.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=f"{tar.name}: missing, or does not match its .tar.idx"):
        artifact_files(art)


UPLOAD = textwrap.dedent("""
    import sys
    from huggingface_hub import HfApi
    api = HfApi()
    api.create_repo(sys.argv[1], repo_type="dataset", exist_ok=True)
    api.upload_folder(repo_id=sys.argv[1], repo_type="dataset", folder_path=sys.argv[2], commit_message="raw")
""")


def upload_raw(hub: HubServer, repo: str, folder: Path, home: Path) -> None:
    """Put a folder on the Hub with plain huggingface_hub (bypassing mgdata's checks, as a hostile repo would)."""
    env = hub.client_env(FAKE_TOKEN) | {"HF_HOME": str(home)}
    r = subprocess.run(
        [sys.executable, "-c", UPLOAD, repo, str(folder)], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-2000:]


def pull(hub: HubServer, uri: str, out: Path, home: Path) -> subprocess.CompletedProcess:
    env = hub.client_env(FAKE_TOKEN) | {"HF_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "mgdata", "hub", "pull", uri, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_hostile_or_corrupt_repo_is_refused_and_nothing_lands(tmp_path):
    with HubServer(tmp_path / "server") as hub:
        evil = tmp_path / "evil"
        evil.mkdir()
        make_tar(evil / "train-000000.tar", [info("a.json"), info("a.flac", tarfile.SYMTYPE, "../../../etc/passwd")])
        upload_raw(hub, "org/evil", evil, tmp_path / "home")
        out = tmp_path / "dest" / "evil"
        r = pull(hub, "hf://datasets/org/evil@main", out, tmp_path / "home")
        assert r.returncode == 2 and "member 'a.flac' is a symlink" in r.stderr, r.stderr[-2000:]
        assert not out.exists()  # nothing was moved into the destination

        art = make_corpus_artifact(tmp_path / "c", n_tracks=3, n_stems=1, duration_s=1.0) / "mix"
        idx = next(art.glob("train-*.tar.idx"))
        index = json.loads(idx.read_text())
        index["sha256"] = "0" * 64
        idx.write_text(json.dumps(index))
        upload_raw(hub, "org/corrupt", art, tmp_path / "home")
        out2 = tmp_path / "dest" / "corrupt"
        r = pull(hub, "hf://datasets/org/corrupt@main", out2, tmp_path / "home")
        assert r.returncode == 2 and "train-000000.tar: does not match its .tar.idx" in r.stderr, r.stderr[-2000:]
        assert not out2.exists()
        assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == [".corrupt.hub-partial", ".evil.hub-partial"]
