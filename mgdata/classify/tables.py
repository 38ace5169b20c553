"""Embedding tables of an embed artifact: ``{split}.npy`` (``[rows, dim]``) beside ``{split}.parquet``.

The parquet rows carry ``key``, ``split``, ``track_id`` and the label columns (``quadrant``, ``mood``,
``style``); a generated sample carries its source track's id, split and labels. One row is a clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.errors import InputError


@dataclass
class EmbTable:
    """One split of an embedding artifact: the matrix and its row table (polars)."""

    x: np.ndarray
    meta: Any
    where: str

    def __len__(self) -> int:
        return int(self.x.shape[0])


def load_table(artifact_dir: str | Path, split: str) -> EmbTable:
    """Read ``{split}.npy`` + ``{split}.parquet`` of an embed artifact.

    Raises:
        InputError: A file is missing or the row counts disagree (names the file).
    """
    import polars as pl

    d = Path(artifact_dir)
    npy, pq = d / f"{split}.npy", d / f"{split}.parquet"
    for f in (npy, pq):
        if not f.exists():
            raise InputError(str(f), "embedding table not found (run the embed stage)")
    x = np.load(npy)
    meta = pl.read_parquet(pq)
    if x.ndim != 2 or x.shape[0] != meta.height:
        raise InputError(str(npy), f"matrix {x.shape} does not match {meta.height} parquet rows")
    return EmbTable(x=x, meta=meta, where=str(pq))


def load_artifact(artifact_dir: str | Path, splits: Sequence[str] = ("train", "validation", "test")) -> dict:
    """``{split: EmbTable}`` for the splits present in ``artifact_dir`` (the first missing one of ``splits`` raises
    only when none is present)."""
    d = Path(artifact_dir)
    out = {s: load_table(d, s) for s in splits if (d / f"{s}.npy").exists()}
    if not out:
        raise InputError(str(d), f"no embedding tables ({', '.join(f'{s}.npy' for s in splits)})")
    return out


def concat_tables(tables: Sequence[EmbTable]) -> EmbTable:
    """Rows of several tables (e.g. every split of a generated artifact)."""
    import polars as pl

    tables = [t for t in tables if len(t)]
    if not tables:
        raise InputError("tables", "no rows")
    return EmbTable(
        x=np.concatenate([t.x for t in tables]),
        meta=pl.concat([t.meta for t in tables], how="diagonal_relaxed"),
        where=",".join(t.where for t in tables),
    )


__all__ = ["EmbTable", "concat_tables", "load_artifact", "load_table"]
