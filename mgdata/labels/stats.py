"""Statistics of a relabelling: tracks and hours per split and quadrant, and their bar plot.

This is the seed paper's Table I (tracks/hours per class and split), computed
from a :class:`~mgdata.labels.relabel.RelabelResult` table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from mgdata.labels.relabel import QUADRANTS
from mgdata.sources.jamendo import SPLITS

#: Split label for rows whose split is unknown (e.g. a single TSV without a split name).
NO_SPLIT = "unsplit"
#: Row label of the per-quadrant totals over all splits.
ALL_SPLITS = "all"


def _split_order(splits: list[str]) -> list[str]:
    known = [s for s in SPLITS if s in splits]
    return known + sorted(s for s in splits if s not in SPLITS)


def quadrant_table(table: pl.DataFrame) -> pl.DataFrame:
    """Tracks and hours per split x quadrant, plus ``all`` totals.

    Every quadrant appears for every split (zeros included). Hours are null-safe:
    tracks without ``duration_s`` count as 0 h.

    Args:
        table: Relabel table with ``quadrant``, ``split``, ``duration_s``.

    Returns:
        Columns ``split``, ``quadrant``, ``tracks`` (int), ``hours`` (float), in
        split order train/validation/test/(others)/all, then :data:`QUADRANTS` order.
    """
    df = table.select(
        pl.col("split").fill_null(NO_SPLIT),
        "quadrant",
        pl.col("duration_s").fill_null(0.0),
    )
    splits = _split_order(df["split"].unique().to_list())
    grouped = {
        (row["split"], row["quadrant"]): row
        for row in df.group_by("split", "quadrant")
        .agg(pl.len().alias("tracks"), (pl.col("duration_s").sum() / 3600.0).alias("hours"))
        .to_dicts()
    }
    rows = []
    for split in splits:
        for quadrant in QUADRANTS:
            row = grouped.get((split, quadrant), {"tracks": 0, "hours": 0.0})
            rows.append({"split": split, "quadrant": quadrant, "tracks": int(row["tracks"]), "hours": row["hours"]})
    for quadrant in QUADRANTS:
        sel = [r for r in rows if r["quadrant"] == quadrant]
        rows.append(
            {
                "split": ALL_SPLITS,
                "quadrant": quadrant,
                "tracks": sum(r["tracks"] for r in sel),
                "hours": sum(r["hours"] for r in sel),
            }
        )
    return pl.DataFrame(
        rows, schema={"split": pl.String, "quadrant": pl.String, "tracks": pl.Int64, "hours": pl.Float64}
    )


def table_to_dict(qtable: pl.DataFrame, *, digits: int = 4) -> dict[str, dict[str, dict[str, Any]]]:
    """``{split: {quadrant: {"tracks": n, "hours": h}}}`` for metrics JSON (hours rounded)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in qtable.to_dicts():
        out.setdefault(row["split"], {})[row["quadrant"]] = {
            "tracks": row["tracks"],
            "hours": round(row["hours"], digits),
        }
    return out


def plot_hours_per_class(tables: Mapping[str, pl.DataFrame], path: str | Path) -> Path:
    """Bar plot of hours per quadrant, one bar per split, one panel per dataset.

    Args:
        tables: ``{dataset name: quadrant_table(...)}`` (e.g. corpus, jamendo).
        path: PNG to write.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(tables)
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(6.5 * max(len(names), 1), 4.2), squeeze=False)
    x = np.arange(len(QUADRANTS))
    for ax, name in zip(axes[0], names):
        qt = tables[name].filter(pl.col("split") != ALL_SPLITS)
        splits = _split_order(qt["split"].unique().to_list())
        width = 0.8 / max(len(splits), 1)
        for i, split in enumerate(splits):
            hours = [
                qt.filter((pl.col("split") == split) & (pl.col("quadrant") == q))["hours"].sum() for q in QUADRANTS
            ]
            ax.bar(x + (i - (len(splits) - 1) / 2) * width, hours, width, label=split)
        ax.set_xticks(x, [q.replace("_", "\n") for q in QUADRANTS], fontsize=8)
        ax.set_ylabel("hours")
        ax.set_title(f"{name}: hours per class")
        ax.legend(fontsize=8)
    fig.tight_layout()
    # No Software/date metadata, so equal data gives equal PNG bytes.
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path
