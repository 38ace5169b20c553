"""One shard: its tar bytes, its sidecar index, and the checks that bind the two.

A shard ``{split}-{index:06d}.tar`` is a plain (GNU) tar of ``{key}.{member}``
entries. Its sidecar ``.tar.idx`` (JSON) holds what a reader can recompute from
the tar bytes (keys, member names and sizes, the byte size, a sha256 per sample
over its member payloads, and ``layout_sha256`` over every other byte: headers,
padding, end-of-archive) and what it cannot (audio seconds, label counts, the
params fingerprint). Every byte of the tar is thus covered by one sha256 pass,
and a reader checks each sample before it hands it out. The index also carries ``index_sha256``, the sha256 of
its own canonical JSON, which ``artifact.json`` repeats per shard: an edit of an
index that keeps it valid JSON (a renamed key, a label count + 5) fails either
the recomputation or the digest.

The tar writer and reader here are small and sequential (one write/read per
header and payload); the tar bytes equal what :mod:`tarfile` writes, and
:mod:`tarfile` or the ``webdataset`` library read them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgdata.errors import MgdataError, ShardError
from mgdata.store.codec import KEY_RE, MEMBER_RE, canonical_json

FORMAT = "mgdata-shards/2"
INDEX_SUFFIX = ".idx"
SHARD_RE = re.compile(r"^(?P<split>[a-z0-9_]+)-(?P<index>\d{6})\.tar$")
_BLOCK = 512
_TAR_END = 2 * _BLOCK
_RECORD = 20 * _BLOCK
_NUL = b"\0" * _RECORD
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE)
_KINDS = {
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hard link",
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "fifo",
    tarfile.DIRTYPE: "directory",
    tarfile.CONTTYPE: "contiguous file",
    tarfile.GNUTYPE_SPARSE: "sparse file",
}


# --------------------------------------------------------------------------- samples


@dataclass
class Sample:
    """One WebDataset sample.

    Attributes:
        key: ``[a-z0-9][a-z0-9_-]*`` (lowercase, no dots: WebDataset splits on the first dot).
        members: Member name (``flac``, ``json``, ``a.flac`` ...) -> bytes.
        seconds: Audio seconds this sample holds (for indexes and ``shards inspect``).
        labels: Labels to count in the index (tags, class).
    """

    key: str
    members: dict[str, bytes]
    seconds: float = 0.0
    labels: tuple[str, ...] = ()

    def __post_init__(self):
        if not KEY_RE.match(self.key):
            raise MgdataError(f"sample key {self.key!r} must match {KEY_RE.pattern} (use make_key)")
        if not self.members:
            raise MgdataError(f"sample {self.key!r} has no members")
        for name, value in self.members.items():
            if not MEMBER_RE.match(name):
                raise MgdataError(f"sample {self.key!r}: member name {name!r} must match {MEMBER_RE.pattern}")
            if not isinstance(value, (bytes, bytearray)):
                raise MgdataError(f"sample {self.key!r}: member {name!r} must be bytes")
        self.labels = tuple(str(label) for label in self.labels)

    @property
    def nbytes(self) -> int:
        """Bytes this sample takes in a tar (headers and padding included)."""
        return sum(_BLOCK + _padded(len(v)) for v in self.members.values())


def _padded(n: int) -> int:
    return (n + _BLOCK - 1) // _BLOCK * _BLOCK


def shard_name(split: str, index: int) -> str:
    """``{split}-{index:06d}.tar``."""
    return f"{split}-{index:06d}.tar"


def index_path(tar_path: str | Path) -> Path:
    """The sidecar index of a shard (``.tar.idx``)."""
    tar_path = Path(tar_path)
    return tar_path.with_name(tar_path.name + INDEX_SUFFIX)


def index_digest(index: dict[str, Any]) -> str:
    """sha256 of an index's canonical JSON (without its own ``index_sha256`` field)."""
    return hashlib.sha256(canonical_json({k: v for k, v in index.items() if k != "index_sha256"})).hexdigest()


# --------------------------------------------------------------------------- writing


def _header(name: str, size: int) -> bytes:
    """The tar header block(s) of a regular file, exactly as ``tarfile`` (GNU format) writes them."""
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = 0
    ti.mode = 0o644
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


class OpenShard:
    """One shard being written under a temporary name (``.tar.tmp``).

    The tar is written directly (header, payload, padding per member) and hashed
    in the same pass, so each payload is written once with no intermediate copy.
    """

    def __init__(self, path: Path, split: str, index: int, fp: str):
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.split = split
        self.index = index
        self.fingerprint = fp
        self.fh = open(self.tmp, "wb", buffering=1 << 20)
        self.layout = hashlib.sha256()  # every byte that is not a member payload
        self.pos = 0
        self.keys: list[str] = []
        self.sizes: list[list[int]] = []
        self.digests: list[str] = []
        self.seconds = 0.0
        self.labels: Counter[str] = Counter()
        self.nbytes = 0
        self.members: list[str] | None = None

    def _write_layout(self, data: bytes) -> None:
        self.layout.update(data)
        self.fh.write(data)
        self.pos += len(data)

    def add(self, sample: Sample) -> None:
        names = sorted(sample.members)
        self.members = self.members or names
        digest = hashlib.sha256()
        for name in names:
            data = sample.members[name]
            self._write_layout(_header(f"{sample.key}.{name}", len(data)))
            digest.update(data)
            self.fh.write(data)
            self.pos += len(data)
            if len(data) % _BLOCK:
                self._write_layout(_NUL[: _BLOCK - len(data) % _BLOCK])
        self.keys.append(sample.key)
        self.sizes.append([len(sample.members[n]) for n in names])
        self.digests.append(digest.hexdigest())
        self.seconds += float(sample.seconds)
        self.labels.update(sample.labels)
        self.nbytes += sample.nbytes

    def commit(self, *, fsync: bool = False) -> dict[str, Any]:
        """Finish the tar, rename it, then write its index (the commit marker).

        Args:
            fsync: fsync the tar before the rename. Not needed for a correct
                resume (a resumed writer re-verifies every shard it
                keeps); :class:`~mgdata.store.ArtifactWriter` fsyncs every file
                once before it writes ``artifact.json``.
        """
        self._write_layout(_NUL[:_TAR_END])
        if self.pos % _RECORD:
            self._write_layout(_NUL[: _RECORD - self.pos % _RECORD])
        self.fh.flush()
        if fsync:
            os.fsync(self.fh.fileno())
        self.fh.close()
        index = {
            "format": FORMAT,
            "shard": self.path.name,
            "split": self.split,
            "index": self.index,
            "fingerprint": self.fingerprint,
            "samples": len(self.keys),
            "keys": self.keys,
            "members": self.members or [],
            "member_sizes": self.sizes,
            "sample_sha256": self.digests,
            "seconds": round(self.seconds, 6),
            "labels": dict(sorted(self.labels.items())),
            "bytes": self.pos,
            "layout_sha256": self.layout.hexdigest(),
        }
        index["index_sha256"] = index_digest(index)
        os.replace(self.tmp, self.path)
        idx = index_path(self.path)
        tmp_idx = idx.with_name(idx.name + ".tmp")
        tmp_idx.write_text(canonical_json(index).decode() + "\n")
        os.replace(tmp_idx, idx)
        return index

    def abort(self) -> None:
        self.fh.close()


# --------------------------------------------------------------------------- reading


def read_index(tar_path: str | Path) -> dict[str, Any]:
    """Parse a shard's sidecar index.

    Raises:
        ShardError: The index is missing, not JSON, or of another format (names the shard).
    """
    tar_path = Path(tar_path)
    idx = index_path(tar_path)
    try:
        raw = idx.read_bytes()
    except FileNotFoundError:
        raise ShardError(str(tar_path), "no sidecar index (.tar.idx): shard incomplete or index deleted") from None
    except OSError as exc:
        raise ShardError(str(tar_path), f"cannot read its index ({exc.strerror})") from None
    try:
        index = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ShardError(str(tar_path), "its index (.tar.idx) is not valid JSON (corrupt or truncated)") from None
    if not isinstance(index, dict):
        raise ShardError(str(tar_path), "its index (.tar.idx) is not a JSON object")
    if index.get("format") != FORMAT:
        raise ShardError(str(tar_path), f"index format {index.get('format')!r}, expected {FORMAT!r} (rebuild)")
    return index


def load_index(tar_path: str | Path) -> dict[str, Any] | None:
    """The parsed index, or ``None`` if it is missing or unreadable (no checks)."""
    try:
        return read_index(tar_path)
    except ShardError:
        return None


def check_index(tar_path: Path, index: dict[str, Any], index_sha256: str | None = None) -> None:
    """Checks of an index that need no tar read: its digest, name, and the tar's size.

    Args:
        tar_path: The shard.
        index: Its parsed index.
        index_sha256: The digest ``artifact.json`` recorded for this shard, if any.

    Raises:
        ShardError: Naming the shard and the first check that failed.
    """
    digest = index_digest(index)
    if index.get("index_sha256") != digest:
        raise ShardError(str(tar_path), "its index was edited (index_sha256 does not match the index content)")
    if index_sha256 is not None and index_sha256 != digest:
        raise ShardError(str(tar_path), "its index differs from the one artifact.json recorded (edited or replaced)")
    m = SHARD_RE.match(tar_path.name)
    expected = {"shard": tar_path.name, "split": m["split"] if m else None, "index": int(m["index"]) if m else None}
    for field_name, value in expected.items():
        if index.get(field_name) != value:
            raise ShardError(
                str(tar_path), f"index field {field_name}={index.get(field_name)!r}, file name says {value!r}"
            )
    try:
        size = tar_path.stat().st_size
    except FileNotFoundError:
        raise ShardError(str(tar_path), "shard missing (its index exists)") from None
    if size != index.get("bytes"):
        raise ShardError(str(tar_path), f"{size} bytes, index says {index.get('bytes')} (truncated or corrupt)")


class _CountingReader:
    """File wrapper that counts the bytes read (the tar's size, checked against the index)."""

    def __init__(self, fh):
        self.fh = fh
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.pos += len(data)
        return data


def _unsafe_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":")


def _layout_tail(reader, header: bytes, layout) -> None:
    """Feed the end-of-archive block and every byte after it (record padding) to ``layout``, if any."""
    if layout is not None:
        layout.update(header)
        while rest := reader.read(1 << 16):
            layout.update(rest)


def _layout_member(layout, header: bytes, info: tarfile.TarInfo, data: bytes) -> None:
    """Feed a member's header and its non-payload bytes (a regular file's padding, or all of a record) to
    ``layout``, if any."""
    if layout is None:
        return
    layout.update(header)
    if info.type in _REGULAR:
        layout.update(memoryview(data)[info.size :])
    else:
        layout.update(data)


def _pax_path(data: bytes, longname: str | None) -> str | None:
    """The ``path`` of a pax record (the last one wins), else ``longname`` unchanged."""
    for record in data.decode("utf-8", "surrogateescape").split("\n"):
        _, _, kv = record.partition(" ")
        if kv.startswith("path="):
            longname = kv[5:]
    return longname


def tar_members(reader, path: Path, layout=None) -> Iterator[tuple[str, bytes]]:
    """Sequential ``(name, data)`` of the members of a tar stream; anything but a safe regular file is refused.

    A small reader of its own instead of ``tarfile``'s stream mode, which reads
    in 10 KB records with much per-call overhead: this one reads each header and
    payload in one call. GNU long names and pax ``path`` records are honoured.
    With ``layout`` (a hashlib object), every byte that is not a member payload
    (headers, long-name and pax records, padding, the end-of-archive blocks and
    the record padding after them) is fed to it.

    Raises:
        ShardError: A bad header checksum, a short read, or an unsafe member
            (absolute path, ``..``, symlink, hard link, device, fifo,
            directory); names the shard and the member.
    """
    longname: str | None = None
    while True:
        header = reader.read(_BLOCK)
        if len(header) < _BLOCK:
            raise ShardError(str(path), "truncated tar (no end-of-archive marker)")
        if header == _NUL[:_BLOCK]:
            _layout_tail(reader, header, layout)
            return
        try:
            info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise ShardError(str(path), f"corrupt tar header ({exc})") from None
        padded = _padded(info.size)
        data = reader.read(padded)
        if len(data) < padded:
            raise ShardError(str(path), f"member {longname or info.name!r} is truncated")
        _layout_member(layout, header, info, data)
        data = data[: info.size]
        if info.type == tarfile.GNUTYPE_LONGNAME:
            longname = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            continue
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):
            longname = _pax_path(data, longname)
            continue
        name, longname = longname or info.name, None
        if _unsafe_name(name):
            raise ShardError(str(path), f"unsafe tar member {name!r} (absolute or '..' path): refused")
        if info.type not in _REGULAR:
            kind = _KINDS.get(info.type, f"type {info.type!r}")
            raise ShardError(str(path), f"unsafe tar member {name!r} ({kind}): refused")
        yield name, data


def tar_samples(reader, path: Path, layout=None) -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """Group the members of a tar stream into ``(key, [(member, data), ...])``.

    Raises:
        ShardError: A member not named ``{key}.{member}`` by the store's rules, a
            key that appears twice, or a member twice in a sample.
    """
    key: str | None = None
    group: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for name, data in tar_members(reader, path, layout):
        k, dot, member = name.partition(".")
        if not dot or not KEY_RE.match(k) or not MEMBER_RE.match(member):
            raise ShardError(str(path), f"tar member {name!r} is not a sample member ({{key}}.{{member}})")
        if k != key:
            if key is not None:
                yield key, group
            if k in seen:
                raise ShardError(str(path), f"sample key {k!r} appears twice")
            seen.add(k)
            key, group = k, []
        elif any(member == m for m, _ in group):
            raise ShardError(str(path), f"sample {k!r} has member {member!r} twice")
        group.append((member, data))
    if key is not None:
        yield key, group


def _check_sample(path: Path, index: dict[str, Any], n: int, key: str, group: list[tuple[str, bytes]]) -> None:
    """Sample ``n`` of a shard against its index: key, member names, sizes, payload sha256.

    Raises:
        ShardError: Any mismatch (or more samples than the index lists); names the shard and the sample.
    """
    keys = index["keys"]
    if n >= len(keys):
        raise ShardError(str(path), f"more samples than its index lists ({len(keys)})")
    if key != keys[n]:
        raise ShardError(str(path), f"sample {n} is {key!r}, its index says {keys[n]!r}")
    names = [name for name, _ in group]
    members = index["members"]
    if names != members:
        raise ShardError(str(path), f"sample {key!r} has members {names}, its index says {members}")
    if [len(d) for _, d in group] != index["member_sizes"][n]:
        raise ShardError(str(path), f"sample {key!r}: member sizes differ from its index")
    digest = hashlib.sha256()
    for _, d in group:
        digest.update(d)
    if digest.hexdigest() != index["sample_sha256"][n]:
        raise ShardError(str(path), f"sample {key!r}: sha256 mismatch (corrupt payload)")


def iter_shard(path: str | Path, *, verify: bool = True, index_sha256: str | None = None) -> Iterator[dict[str, Any]]:
    """Stream the samples of one shard (constant memory).

    Args:
        path: The ``.tar`` shard.
        verify: Check the shard against its sidecar index while reading: the
            index digest (and ``index_sha256``, the digest ``artifact.json``
            recorded, when given), the tar size, and for every sample its key,
            member names, sizes and payload sha256 *before* it is yielded; at
            the end the sample count, the byte size and the sha256 of every
            other byte (headers, padding; the last sample is yielded only
            after that). ``False`` skips all of this (faster,
            trusts the bytes); unsafe members are refused either way.
        index_sha256: Expected index digest (from ``artifact.json``).

    Yields:
        ``{"__key__", "__split__", "__shard__", <member>: bytes, ...}``.

    Raises:
        ShardError: Truncated or corrupt tar, an unsafe member, or (with
            ``verify``) any mismatch with the index; one line naming the shard.
    """
    path = Path(path)
    m = SHARD_RE.match(path.name)
    split = m["split"] if m else ""
    index: dict[str, Any] = {}
    if verify:
        index = read_index(path)
        check_index(path, index, index_sha256)
    try:
        fh = open(path, "rb", buffering=1 << 20)
    except FileNotFoundError:
        raise ShardError(str(path), "no such shard") from None
    with fh:
        reader = _CountingReader(fh) if verify else fh
        layout = hashlib.sha256() if verify else None
        n = 0
        pending: dict[str, Any] | None = None
        for key, group in tar_samples(reader, path, layout):
            if verify:
                _check_sample(path, index, n, key, group)
            n += 1
            if pending is not None:
                yield pending
            pending = {"__key__": key, "__split__": split, "__shard__": str(path), **dict(group)}
        if verify:
            if n != index.get("samples") or n != len(index["keys"]):
                raise ShardError(str(path), f"{n} samples, its index says {index.get('samples')}")
            if reader.pos != index.get("bytes") or layout.hexdigest() != index.get("layout_sha256"):
                raise ShardError(str(path), "tar headers, padding or size do not match its index (corrupt)")
        if pending is not None:
            yield pending


def check_shard(tar_path: str | Path, *, fingerprint: str | None = None, index_sha256: str | None = None) -> dict:
    """Fully verify a shard against its index and return the index.

    Recomputes from the tar bytes every field of the index that they determine
    (keys, member names and sizes, sha256 per sample, sample count, byte size,
    layout sha256) and compares them; the others (seconds, labels, fingerprint) are
    bound by the index digest and, when given, ``index_sha256`` from
    ``artifact.json``.

    Raises:
        ShardError: One line naming the shard and the first mismatch.
    """
    tar_path = Path(tar_path)
    index = read_index(tar_path)
    if fingerprint is not None and index.get("fingerprint") != fingerprint:
        raise ShardError(str(tar_path), "built with other params (fingerprint differs)")
    for _ in iter_shard(tar_path, verify=True, index_sha256=index_sha256):
        pass
    return index


def verify_shard(tar_path: str | Path, fp: str | None = None, index_sha256: str | None = None) -> dict | None:
    """The shard's index if :func:`check_shard` passes, else ``None``."""
    try:
        return check_shard(tar_path, fingerprint=fp, index_sha256=index_sha256)
    except ShardError:
        return None
