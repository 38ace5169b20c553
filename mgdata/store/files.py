"""Atomic whole-file writes for the files a builder writes outside the shard writer.

Shards, indexes and ``artifact.json`` are written by :class:`~mgdata.store.ArtifactWriter`;
a builder's other files (a manifest copy at a well-known path, a checkpoint) go through
:func:`write_atomic`, so a reader never sees half a file after a crash.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a fsynced ``.tmp`` sibling and one rename.

    The bytes reach the disk before the rename, so after a crash ``path`` holds either
    its old content or all of ``data``.

    Args:
        path: Destination file (its folder must exist).
        data: The whole content.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


__all__ = ["write_atomic"]
