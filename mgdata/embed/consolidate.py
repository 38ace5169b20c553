"""Consolidation of the ``embed`` builder: per-split matrices and key tables beside the shards.

While samples stream past in write order, :class:`Consolidator` collects each split's
rows; at the end it writes ``{split}.npy`` (``[rows, dim]``) and ``{split}.parquet``
(:func:`split_table`: one row per matrix row with the label columns of its clip).
:func:`load_split` reads one split back in one read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mgdata.embed.records import EmbeddingRecord

#: Record fields the consolidated tables keep.
_TABLE_FIELDS = (
    "key",
    "split",
    "labels",
    "label",
    "quadrant",
    "mood",
    "style",
    "track_id",
    "n_frames",
    "frame_times_s",
    "clip_starts_s",
)


class Consolidator:
    """Collects ``{split}`` matrices and key tables while samples stream past, in write order.

    In memory (``tmp_dir=None``) the arrays are kept; on disk each split's rows are appended
    to a raw temporary file, so memory stays at the size of the key tables whatever the
    artifact size, and :meth:`write` turns them into ``{split}.npy`` / ``{split}.parquet``.
    """

    def __init__(self, *, dim: int, dtype: str, aggregation: str, tmp_dir: Path | None = None):
        self.dim, self.dtype, self.aggregation, self.tmp_dir = dim, np.dtype(dtype), aggregation, tmp_dir
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.n_rows: dict[str, list[int]] = {}
        self.arrays: dict[str, list[np.ndarray]] = {}
        self._files: dict[str, Any] = {}

    def _part(self, split: str, what: str) -> Path:
        # Dot-prefixed part files in the artifact folder: never taken for a shard or side file.
        return self.tmp_dir / f".{split}.{what}.part"

    def add(self, record: EmbeddingRecord, arr: np.ndarray) -> None:
        """Append one sample's rows (its record's table fields, and its vector or matrix) to its split."""
        split = record.split
        arr = arr if arr.ndim == 2 else arr[None, :]
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        self.records.setdefault(split, []).append({k: getattr(record, k) for k in _TABLE_FIELDS})
        self.n_rows.setdefault(split, []).append(int(arr.shape[0]))
        if self.tmp_dir is None:
            self.arrays.setdefault(split, []).append(arr)
            return
        if split not in self._files:
            self._files[split] = open(self._part(split, "rows"), "wb")
        self._files[split].write(arr.tobytes())

    def table(self, split: str):
        """The key table of ``split`` so far (:func:`split_table`)."""
        return split_table(self.records[split], self.n_rows[split], self.aggregation)

    def matrix(self, split: str) -> np.ndarray:
        """The matrix of ``split`` (in-memory builds)."""
        return np.concatenate(self.arrays[split]).astype(self.dtype, copy=False)

    def write(self, add_file) -> dict[str, int]:
        """Write every split's ``.npy`` + ``.parquet`` and hand them to ``add_file(name, part path)``; rows per split."""
        rows: dict[str, int] = {}
        for split in sorted(self.records):
            self._files.pop(split).close()
            raw = self._part(split, "rows")
            total = sum(self.n_rows[split])
            npy = self._part(split, "npy")
            matrix = np.lib.format.open_memmap(npy, mode="w+", dtype=self.dtype, shape=(total, self.dim))
            src = np.memmap(raw, dtype=self.dtype, mode="r", shape=(total, self.dim)) if total else None
            step = max(1, (64 << 20) // max(1, self.dim * self.dtype.itemsize))  # copy 64 MiB at a time
            for start in range(0, total, step):
                matrix[start : start + step] = src[start : start + step]
            matrix.flush()
            del matrix, src
            raw.unlink()
            parquet = self._part(split, "parquet")
            self.table(split).write_parquet(parquet)
            add_file(f"{split}.npy", npy)
            add_file(f"{split}.parquet", parquet)
            rows[split] = total
        return rows

    def discard(self) -> None:
        """Close and delete the part files (of this run, or of an interrupted earlier one)."""
        for fh in self._files.values():
            fh.close()
        self._files.clear()
        if self.tmp_dir is not None:
            for part in self.tmp_dir.glob(".*.part"):
                part.unlink()


def split_table(records: list[dict[str, Any]], n_rows: list[int], aggregation: str):
    """Polars table of one split: one row per matrix row, with the label columns of its clip."""
    import polars as pl

    cols: dict[str, list] = {
        "row": [],
        "key": [],
        "split": [],
        "labels": [],
        "label": [],
        "quadrant": [],
        "mood": [],
        "style": [],
        "track_id": [],
    }
    if aggregation == "none":
        cols |= {"frame_index": [], "time_s": []}
    else:
        cols |= {"clip_index": [], "start_s": []}
    row = 0
    for rec, n in zip(records, n_rows):
        for i in range(n):
            cols["row"].append(row)
            for name in ("key", "split", "label", "quadrant", "style", "track_id"):
                cols[name].append(rec.get(name))
            cols["labels"].append(list(rec["labels"]))
            cols["mood"].append(None if rec.get("mood") is None else list(rec["mood"]))
            if aggregation == "none":
                cols["frame_index"].append(i)
                cols["time_s"].append(float(rec["frame_times_s"][i]))
            else:
                cols["clip_index"].append(i)
                cols["start_s"].append(float((rec.get("clip_starts_s") or [0.0])[i]))
            row += 1
    schema = {
        "row": pl.Int64,
        "key": pl.Utf8,
        "split": pl.Utf8,
        "labels": pl.List(pl.Utf8),
        "label": pl.Utf8,
        "quadrant": pl.Utf8,
        "mood": pl.List(pl.Utf8),
        "style": pl.Utf8,
        "track_id": pl.Utf8,
    }
    if aggregation == "none":
        schema |= {"frame_index": pl.Int32, "time_s": pl.Float64}
    else:
        schema |= {"clip_index": pl.Int32, "start_s": pl.Float64}
    return pl.DataFrame(cols, schema=schema)


def load_split(out_dir: str | Path, split: str):
    """Load one split of an embedding artifact in one read: ``(matrix, polars table)``."""
    import polars as pl

    out_dir = Path(out_dir)
    return np.load(out_dir / f"{split}.npy"), pl.read_parquet(out_dir / f"{split}.parquet")


__all__ = ["Consolidator", "load_split", "split_table"]
