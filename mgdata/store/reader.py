"""Streaming readers of artifacts: the samples of many shards, verified by default.

Stages read upstream artifacts with :func:`iter_samples`, which checks every
sample against its shard's index before yielding it (see
:func:`~mgdata.store.shard.iter_shard`) and every index against the digest the
artifact's ``artifact.json`` recorded; corruption of a committed artifact stops
the stage with one line naming the shard instead of silently dropping work.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mgdata.errors import ShardError
from mgdata.store.artifact import ARTIFACT_JSON, list_shards, read_artifact_info
from mgdata.store.shard import SHARD_RE, iter_shard


def artifact_index_digests(folder: str | Path) -> dict[str, str] | None:
    """``{shard name: index digest}`` from a folder's ``artifact.json``; ``None`` if it has none.

    Raises:
        MgdataError: ``artifact.json`` exists but is corrupt (one line naming it).
    """
    folder = Path(folder)
    if not (folder / ARTIFACT_JSON).exists():
        return None
    indexes = read_artifact_info(folder).get("indexes")
    return dict(indexes) if isinstance(indexes, dict) else None


def iter_samples(
    path: str | Path | Iterable[str | Path], *, split: str | None = None, verify: bool = True
) -> Iterator[dict[str, Any]]:
    """Stream every sample of an artifact (or of the given shards), shard by shard.

    Memory stays constant whatever the number of shards: one tar member is read
    at a time.

    Args:
        path: An artifact directory, one shard, or an iterable of shards.
        split: Only this split.
        verify: Verify while reading (the default, and what stages use): each
            sample's key, members, sizes and payload sha256 against the shard index before
            it is yielded, the whole shard's sha256 before its last sample, each
            index against the digest in ``artifact.json``, and (for a directory)
            that every shard ``artifact.json`` lists is present. ``verify=False``
            trusts the bytes (for speed, e.g. a second pass over data just
            verified); unsafe tar members are refused either way.

    Raises:
        ShardError: A missing, corrupt, truncated or edited shard or index (one line naming it).
        MgdataError: A corrupt ``artifact.json`` (one line naming it).
    """
    shards = list_shards(path, split)
    digests: dict[Path, dict[str, str] | None] = {}
    if verify and isinstance(path, (str, Path)) and Path(path).is_dir():
        listed = artifact_index_digests(path)
        if listed is not None:
            names = {p.name for p in shards}
            for name in sorted(listed):
                m = SHARD_RE.match(name)
                if name not in names and m is not None and (split is None or m["split"] == split):
                    raise ShardError(str(Path(path) / name), "listed in artifact.json but missing")
    for shard in shards:
        trusted = None
        if verify:
            if shard.parent not in digests:
                digests[shard.parent] = artifact_index_digests(shard.parent)
            listed = digests[shard.parent]
            if listed is not None:
                if shard.name not in listed:
                    raise ShardError(str(shard), "not listed in its artifact.json (stray or stale shard)")
                trusted = listed[shard.name]
        yield from iter_shard(shard, verify=verify, index_sha256=trusted)
