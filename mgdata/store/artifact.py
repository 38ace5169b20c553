"""One artifact: shards per split, side files, and ``artifact.json`` written last.

:class:`ArtifactWriter` owns its output folder while it is open: it holds an
exclusive lock (``.mgdata.lock`` in the folder, removed on exit), keeps the
prefix of shards that fully verify (same fingerprint; the index recomputed from
the tar bytes; the index digest equal to the one a previous ``artifact.json``
recorded), removes stale shards and side files, and writes ``artifact.json``
only after every shard, index and side file has been fsynced.

Side files (``pairs.parquet``, ``codebook.npy``, ``{split}.npy`` ...) are added
with :meth:`ArtifactWriter.add_file`: written atomically, their sha256 and size
recorded under ``artifact.json["files"]``. Until ``artifact.json`` exists the
records live in a small journal (``.mgdata-files.json``, removed on close), so a
crash-resume neither loses nor duplicates them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgdata.config import ShardConfig
from mgdata.errors import InputError, MgdataError
from mgdata.provenance import Provenance
from mgdata.store.codec import canonical_json, load_json_file, sha256_file
from mgdata.store.files import write_atomic
from mgdata.store.shard import (
    _TAR_END,
    FORMAT,
    INDEX_SUFFIX,
    SHARD_RE,
    OpenShard,
    Sample,
    index_path,
    shard_name,
    verify_shard,
)

ARTIFACT_JSON = "artifact.json"
LOCK_NAME = ".mgdata.lock"
JOURNAL_NAME = ".mgdata-files.json"
SIDE_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_RESERVED_INFO = (
    "format",
    "fingerprint",
    "provenance",
    "members",
    "samples",
    "seconds",
    "splits",
    "labels",
    "indexes",
    "files",
)


@dataclass
class SplitSummary:
    """Counts of one split of an artifact."""

    samples: int = 0
    seconds: float = 0.0
    shards: list[str] = field(default_factory=list)
    labels: Counter = field(default_factory=Counter)

    def add_index(self, index: dict[str, Any]) -> None:
        self.samples += index["samples"]
        self.seconds += index["seconds"]
        self.shards.append(index["shard"])
        self.labels.update(index["labels"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "seconds": round(self.seconds, 6),
            "shards": self.shards,
            "labels": dict(sorted(self.labels.items())),
        }


def check_side_file_name(name: str) -> None:
    """Raise MgdataError unless ``name`` may be a side file of an artifact.

    A plain file name (no slashes, no ``..``, not hidden), and not a name the
    store uses itself (shards, indexes, ``artifact.json``, ``.tmp``).
    """
    problem = ""
    if not isinstance(name, str) or not SIDE_FILE_RE.match(name):
        problem = f"must match {SIDE_FILE_RE.pattern} (a plain file name, no slashes)"
    elif ".." in name:
        problem = "must not contain '..'"
    elif name == ARTIFACT_JSON or SHARD_RE.match(name) or name.endswith((".tar", INDEX_SUFFIX, ".tmp")):
        problem = "is reserved for shards, indexes, temporary files and artifact.json"
    if problem:
        raise MgdataError(f"side file name {name!r} {problem}")


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FolderLock:
    """An exclusive, non-blocking ``flock`` on ``<folder>/.mgdata.lock`` holding the owner's pid.

    The file is removed on release (while still locked), and a taker checks
    that the file it locked is still the one at that path, so removing it never
    lets two writers in. Nothing of it stays in a finished artifact.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise MgdataError(
                    f"{self.folder}: another writer (pid {holder}) is writing this artifact "
                    f"(lock {LOCK_NAME}); wait for it to finish or stop it"
                ) from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed it between our open and flock: take the new one
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = None


class ArtifactWriter:
    """Writes one artifact: per-split shards under caps, side files, resumable, then ``artifact.json``.

    Usage::

        with ArtifactWriter(out, fingerprint=fp, provenance=prov, shards=cfg) as w:
            for key, split, make in plan:          # deterministic order
                if key not in w.done_keys:
                    w.write(split, make())
            w.add_file("pairs.parquet", table_bytes)   # before the block ends
        w.summary                                  # per-split counts

    Args:
        out_dir: Artifact directory (created). The writer owns it: stale shards
            and stale side files in it are removed.
        fingerprint: Hash of everything that determines the content (params,
            upstream fingerprints); shards with another fingerprint are rebuilt.
        provenance: Where the data came from (required: no artifact without it).
        shards: Caps per shard.
        extra_info: More JSON-safe fields for ``artifact.json``.

    Raises:
        MgdataError: Another writer holds the folder (names it and the pid).
    """

    #: fsync each shard as it is committed (True) or every file once, before
    #: ``artifact.json`` (False, the default: same durability of the final
    #: commit, since resume re-verifies every shard it keeps; the kernel writes
    #: back while the builder computes instead of the builder waiting per shard).
    fsync_each_shard: bool = False

    def __init__(
        self,
        out_dir: str | Path,
        *,
        fingerprint: str,
        provenance: Provenance,
        shards: ShardConfig,
        extra_info: dict[str, Any] | None = None,
    ):
        if not isinstance(provenance, Provenance):
            raise MgdataError("ArtifactWriter needs a mgdata.provenance.Provenance")
        clash = sorted(set(extra_info or {}) & set(_RESERVED_INFO))
        if clash:
            raise MgdataError(f"ArtifactWriter extra_info must not set {', '.join(clash)} (written by the store)")
        self.out_dir = Path(out_dir)
        self.fingerprint = fingerprint
        self.provenance = provenance
        self.caps = shards
        self.extra_info = extra_info or {}
        self._open: dict[str, OpenShard] = {}
        self._next_index: dict[str, int] = {}
        self._splits: dict[str, SplitSummary] = {}
        self._indexes: dict[str, str] = {}
        self._files: dict[str, dict[str, Any]] = {}
        self._added: set[str] = set()
        self._written: list[Path] = []
        self._keys: set[str] = set()
        self._members: list[str] | None = None
        self._lock = _FolderLock(self.out_dir)
        self.done_keys: frozenset[str] = frozenset()
        self.done_files: frozenset[str] = frozenset()
        self.resumed_shards = 0
        self.summary: dict[str, Any] | None = None
        self._entered = False

    # -- lifecycle
    def __enter__(self) -> ArtifactWriter:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            old = self._old_info()
            (self.out_dir / ARTIFACT_JSON).unlink(missing_ok=True)
            for tmp in self.out_dir.glob("*.tmp"):
                tmp.unlink()
            same = old is not None and old.get("fingerprint") == self.fingerprint
            trusted = old.get("indexes") if same and isinstance(old.get("indexes"), dict) else None
            self._resume(trusted)
            self._resume_files(old)
        except BaseException:
            self._lock.release()
            raise
        self._entered = True
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            for shard in self._open.values():
                shard.abort()
            self._open.clear()
            self._lock.release()
            return
        try:
            self.close()
        finally:
            self._lock.release()

    def _old_info(self) -> dict[str, Any] | None:
        """The previous ``artifact.json`` if it parses (a corrupt one is only a missing one)."""
        try:
            info = load_json_file(self.out_dir / ARTIFACT_JSON)
        except MgdataError:
            return None
        return info if isinstance(info, dict) else None

    def _resume(self, trusted: dict[str, str] | None) -> None:
        by_split: dict[str, list[tuple[int, Path]]] = {}
        for path in self.out_dir.glob("*.tar"):
            m = SHARD_RE.match(path.name)
            if m:
                by_split.setdefault(m["split"], []).append((int(m["index"]), path))
            else:
                path.unlink()
        for idx in self.out_dir.glob("*.tar" + INDEX_SUFFIX):
            if not idx.with_suffix("").exists():
                idx.unlink()
        done: set[str] = set()
        for split, shards in sorted(by_split.items()):
            shards.sort()
            kept = 0
            for expected, (index, path) in enumerate(shards):
                info = None
                if index == expected == kept and (trusted is None or path.name in trusted):
                    info = verify_shard(path, self.fingerprint, trusted.get(path.name) if trusted else None)
                if info is not None and not done.isdisjoint(info["keys"]):
                    info = None  # a key twice (a tampered index chain): rebuild rather than duplicate it
                if info is None:
                    path.unlink(missing_ok=True)
                    index_path(path).unlink(missing_ok=True)
                    continue
                kept += 1
                self._splits.setdefault(split, SplitSummary()).add_index(info)
                self._indexes[path.name] = info["index_sha256"]
                self._written += [path, index_path(path)]  # a killed run never fsynced them: close() will
                done.update(info["keys"])
                self._members = self._members or info["members"]
            self._next_index[split] = kept
            self.resumed_shards += kept
        self._keys = set(done)
        self.done_keys = frozenset(done)

    def _resume_files(self, old: dict[str, Any] | None) -> None:
        records: dict[str, tuple[Any, Any]] = {}
        if old is not None and isinstance(old.get("files"), dict):
            records.update((name, (old.get("fingerprint"), rec)) for name, rec in old["files"].items())
        try:
            journal = load_json_file(self.out_dir / JOURNAL_NAME)
        except MgdataError:
            journal = None
        if isinstance(journal, dict) and isinstance(journal.get("files"), dict):
            records.update((name, (journal.get("fingerprint"), rec)) for name, rec in journal["files"].items())
        for name, (fp, rec) in sorted(records.items()):
            try:
                check_side_file_name(name)
            except MgdataError:
                continue  # never touch a path the store would not have written
            path = self.out_dir / name
            ok = (
                fp == self.fingerprint
                and isinstance(rec, dict)
                and path.is_file()
                and path.stat().st_size == rec.get("size")
                and sha256_file(path) == rec.get("sha256")
            )
            if ok:
                self._files[name] = {"sha256": rec["sha256"], "size": rec["size"]}
            else:
                path.unlink(missing_ok=True)
        self.done_files = frozenset(self._files)
        self._write_journal()

    def _write_journal(self) -> None:
        journal = self.out_dir / JOURNAL_NAME
        if not self._files:
            journal.unlink(missing_ok=True)
            return
        write_atomic(journal, canonical_json({"fingerprint": self.fingerprint, "files": self._files}) + b"\n")

    # -- writing
    def write(self, split: str, sample: Sample) -> None:
        """Append ``sample`` to ``split``; rolls to a new shard at the caps."""
        self._check_open("write")
        if not re.match(r"^[a-z0-9_]+$", split):
            raise MgdataError(f"split name {split!r} must match [a-z0-9_]+")
        if sample.key in self._keys:
            raise MgdataError(f"duplicate sample key {sample.key!r} in {self.out_dir}")
        names = sorted(sample.members)
        if self._members is None:
            self._members = names
        elif names != self._members:
            raise MgdataError(
                f"sample {sample.key!r} has members {names}, but this artifact's samples have {self._members}"
            )
        shard = self._open.get(split)
        if shard is not None and (
            len(shard.keys) >= self.caps.max_samples or shard.nbytes + sample.nbytes + _TAR_END > self.caps.max_bytes
        ):
            self._commit(split)
            shard = None
        if shard is None:
            index = self._next_index.get(split, 0)
            self._next_index[split] = index + 1
            shard = OpenShard(self.out_dir / shard_name(split, index), split, index, self.fingerprint)
            self._open[split] = shard
        shard.add(sample)
        self._keys.add(sample.key)

    def add_file(self, name: str, data: bytes | str | Path, *, move: bool = False) -> dict[str, Any]:
        """Write a side file into the artifact folder and record it in ``artifact.json["files"]``.

        Atomic (written as ``name.tmp``, fsynced, renamed). Adding a name again
        replaces the file and its record (never two records of one name).

        Args:
            name: Plain file name (``pairs.parquet``, ``train.npy``); no slashes,
                not hidden, not a shard/index name or ``artifact.json``.
            data: The bytes, or the path (``str`` or ``Path``) of a file to copy
                in. A path to ``out_dir/name`` itself is recorded in place.
            move: With a path on the same file system (e.g. a part file in the
                artifact folder): rename it into place instead of copying it (no
                second write of a large matrix); it is hashed and fsynced first.

        Returns:
            ``{"sha256": ..., "size": ...}``.

        Raises:
            MgdataError: Bad name, or called outside the ``with`` block / after ``close()``.
            InputError: ``data`` names a file that does not exist.
        """
        self._check_open("add_file")
        check_side_file_name(name)
        dest = self.out_dir / name
        h = hashlib.sha256()
        size = 0
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data)
            h.update(data)
            size = len(data)
            write_atomic(dest, data)
        elif isinstance(data, (str, Path)):
            src = Path(data)
            if not src.is_file():
                raise InputError(str(src), "no such file to add to the artifact")
            in_place = dest.exists() and os.path.samefile(src, dest)
            if in_place or move:
                with open(src, "rb") as fh:
                    while block := fh.read(1 << 20):
                        h.update(block)
                        size += len(block)
                    os.fsync(fh.fileno())
                if not in_place:
                    os.replace(src, dest)
            else:
                tmp = dest.with_name(dest.name + ".tmp")
                with open(src, "rb") as fin, open(tmp, "wb") as fout:
                    while block := fin.read(1 << 20):
                        h.update(block)
                        size += len(block)
                        fout.write(block)
                    fout.flush()
                    os.fsync(fout.fileno())
                os.replace(tmp, dest)
        else:
            raise MgdataError(f"add_file({name!r}): data must be bytes or a path, not {type(data).__name__}")
        record = {"sha256": h.hexdigest(), "size": size}
        self._files[name] = record
        self._added.add(name)
        self._write_journal()
        return dict(record)

    def _check_open(self, what: str) -> None:
        if not self._entered:
            raise MgdataError(f"{what}: use ArtifactWriter as a context manager")
        if self.summary is not None:
            raise MgdataError(f"{what}: {self.out_dir} is already closed (artifact.json written)")

    def _commit(self, split: str) -> None:
        shard = self._open.pop(split)
        info = shard.commit(fsync=self.fsync_each_shard)
        self._splits.setdefault(split, SplitSummary()).add_index(info)
        self._indexes[shard.path.name] = info["index_sha256"]
        self._written += [shard.path, index_path(shard.path)]

    def close(self) -> dict[str, Any]:
        """Commit open shards, fsync, and write ``artifact.json``; returns the summary (idempotent)."""
        if self.summary is not None:
            return self.summary
        for split in sorted(self._open):
            self._commit(split)
        for name, rec in list(self._files.items()):
            path = self.out_dir / name
            present = path.is_file() and path.stat().st_size == rec["size"]
            if name in self._added and not present:
                raise MgdataError(f"{path}: side file added to the artifact was removed or changed before close()")
            if not present:  # carried over from an earlier run, then removed by the builder: no longer part of it
                del self._files[name]
        # One fsync per file of the artifact (cheap if already on disk), then the folder: artifact.json is
        # written only when everything it vouches for is durable.
        for path in [*self._written, *(self.out_dir / name for name in sorted(self._files))]:
            _fsync_path(path)
        _fsync_path(self.out_dir)
        splits = {name: s.to_dict() for name, s in sorted(self._splits.items())}
        labels: Counter[str] = Counter()
        for s in self._splits.values():
            labels.update(s.labels)
        summary = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "provenance": self.provenance.to_dict(),
            "members": self._members or [],
            "samples": sum(s["samples"] for s in splits.values()),
            "seconds": round(sum(s["seconds"] for s in splits.values()), 6),
            "splits": splits,
            "labels": dict(sorted(labels.items())),
            "indexes": dict(sorted(self._indexes.items())),
            "files": dict(sorted(self._files.items())),
            **self.extra_info,
        }
        write_atomic(self.out_dir / ARTIFACT_JSON, (json.dumps(summary, indent=1, sort_keys=True) + "\n").encode())
        _fsync_path(self.out_dir)
        (self.out_dir / JOURNAL_NAME).unlink(missing_ok=True)
        self.summary = summary
        return summary


# --------------------------------------------------------------------------- reading


def read_artifact_info(path: str | Path) -> dict[str, Any]:
    """The ``artifact.json`` of a complete artifact (``["files"]`` is ``{}`` if it has no side files).

    Raises:
        MgdataError: The artifact is missing or incomplete (names the directory
            and which stage to run), or its ``artifact.json`` is corrupt or
            truncated (one line naming the file).
    """
    path = Path(path)
    info_path = path / ARTIFACT_JSON
    if not info_path.exists():
        raise MgdataError(
            f"{path}: no {ARTIFACT_JSON}: the artifact is missing or incomplete (run the stage that builds it, "
            "e.g. `dvc repro`)"
        )
    info = load_json_file(info_path)
    if not isinstance(info, dict):
        raise MgdataError(f"{info_path}: not a JSON object (corrupt); rebuild the artifact")
    info.setdefault("files", {})
    return info


def list_shards(path: str | Path | Iterable[str | Path], split: str | None = None) -> list[Path]:
    """Shards of an artifact directory (sorted by split, then index), or the given shard paths."""
    if isinstance(path, (str, Path)) and Path(path).is_dir():
        found = []
        for p in Path(path).glob("*.tar"):
            m = SHARD_RE.match(p.name)
            if m and (split is None or m["split"] == split):
                found.append((m["split"], int(m["index"]), p))
        return [p for _, _, p in sorted(found)]
    paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    if split is not None:
        paths = [p for p in paths if (m := SHARD_RE.match(p.name)) and m["split"] == split]
    return paths
