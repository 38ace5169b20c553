"""What an artifact publishes, how its files are identified, and checks on what a pull brings in.

An artifact on the Hub is exactly its local folder's *listed* content: the shards
and their ``.tar.idx`` indexes named in ``artifact.json``, the side files recorded
under ``artifact.json["files"]``, ``artifact.json`` itself and the dataset card as
``README.md``. Nothing else in the folder (``.tmp`` leftovers, logs) is published.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mgdata.errors import InputError, ShardError
from mgdata.store import ARTIFACT_JSON, INDEX_SUFFIX, read_artifact_info, sha256_file, verify_shard

CARD_NAME = "README.md"
LOCK_NAME = "hub.lock.json"


@dataclass(frozen=True)
class LocalFile:
    """One file to publish.

    Attributes:
        path_in_repo: Repo-relative POSIX path.
        sha256: Hex digest of the content (the LFS oid on the Hub).
        size: Bytes.
        git_oid: The git blob id (what the Hub reports for a non-LFS file).
        source: The local path, or None when ``data`` holds the content.
        data: In-memory content (the rendered card).
    """

    path_in_repo: str
    sha256: str
    size: int
    git_oid: str
    source: Path | None = None
    data: bytes | None = None

    @classmethod
    def from_path(cls, name: str, path: Path) -> LocalFile:
        return cls(name, sha256_file(path), path.stat().st_size, git_blob_sha1_file(path), source=path)

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> LocalFile:
        return cls(name, hashlib.sha256(data).hexdigest(), len(data), git_blob_sha1(data), data=data)


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def git_blob_sha1_file(path: Path, chunk: int = 1 << 20) -> str:
    """:func:`git_blob_sha1` of a file, read in chunks."""
    h = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def artifact_files(artifact_dir: str | Path, *, verify: bool = True) -> dict[str, Path]:
    """Repo path -> local path of every file an artifact publishes (the card excluded).

    Args:
        artifact_dir: A complete artifact (has ``artifact.json``).
        verify: Check each shard against its index and each side file against
            its recorded sha256 first: a corrupt artifact is never published.

    Raises:
        MgdataError: Incomplete artifact; ShardError naming a shard or side file
            that does not match its record.
    """
    root = Path(artifact_dir)
    info = read_artifact_info(root)
    files: dict[str, Path] = {ARTIFACT_JSON: root / ARTIFACT_JSON}
    for split in info.get("splits", {}).values():
        for shard in split.get("shards", []):
            tar = root / shard
            if verify and verify_shard(tar) is None:
                raise ShardError(str(tar), "missing, or does not match its .tar.idx (rebuild the artifact)")
            files[shard] = tar
            files[shard + INDEX_SUFFIX] = tar.with_name(tar.name + INDEX_SUFFIX)
    for name, rec in sorted((info.get("files") or {}).items()):
        path = root / name
        check_repo_path(name, where=str(root / ARTIFACT_JSON))
        if not path.is_file():
            raise InputError(str(path), "side file listed in artifact.json is missing")
        if verify and (path.stat().st_size != rec.get("size") or sha256_file(path) != rec.get("sha256")):
            raise ShardError(str(path), "side file does not match the sha256/size recorded in artifact.json")
        files[name] = path
    return dict(sorted(files.items()))


def check_repo_path(name: str, *, where: str) -> str:
    """Refuse a repo path that could land outside its destination folder.

    Raises:
        InputError: Absolute path, a ``..`` part, a backslash or an empty part (names it).
    """
    p = PurePosixPath(name)
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or p.is_absolute()
        or any(part in ("..", "", ".") for part in name.split("/"))
    ):
        raise InputError(where, f"unsafe path {name!r}: absolute, '..' or empty parts are refused")
    return name


def check_tar_members(tar_path: str | Path) -> int:
    """Check that extracting a tar could not write outside its folder; returns the member count.

    Every member must be a regular file with a relative path without ``..``:
    absolute paths, parent references, symlinks, hard links, devices and fifos
    are refused. Directories are allowed only with safe names.

    Raises:
        ShardError: Names the shard and the offending member.
    """
    tar_path = Path(tar_path)
    n = 0
    try:
        with tarfile.open(tar_path, "r:") as tar:
            for m in tar:
                n += 1
                name = m.name
                if name.startswith("/") or PurePosixPath(name).is_absolute() or "\\" in name:
                    raise ShardError(str(tar_path), f"member {name!r} has an absolute path: refused")
                if ".." in name.split("/"):
                    raise ShardError(str(tar_path), f"member {name!r} refers to a parent folder (..): refused")
                if m.issym() or m.islnk():
                    kind = "symlink" if m.issym() else "hard link"
                    raise ShardError(str(tar_path), f"member {name!r} is a {kind} (to {m.linkname!r}): refused")
                if not (m.isfile() or m.isdir()):
                    raise ShardError(str(tar_path), f"member {name!r} is not a regular file: refused")
    except tarfile.TarError as exc:
        raise ShardError(str(tar_path), f"unreadable tar ({exc})") from None
    return n


def read_lock(folder: str | Path) -> dict[str, Any] | None:
    """The ``hub.lock.json`` of a pulled folder (repo, requested revision, resolved commit, files), or None."""
    import json

    path = Path(folder) / LOCK_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
