"""DVC stage ``relabel``: mood tags -> arousal/valence quadrants for the corpus (and MTG-Jamendo).

Reads ``data/corpus/manifest.parquet`` and, when ``relabel.jamendo.metadata_dir``
is set, the official MTG-Jamendo split files; writes
``data/relabel/{corpus,jamendo}_quadrants.parquet``, ``metrics/relabel.json``
(tracks and hours per split x quadrant, dropped, conflicts, unknown tags) and
``plots/relabel/hours_per_class.png``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import Optional, Sequence

from mgdata.cli import run_stage
from mgdata.config import load_section
from mgdata.labels.config import RelabelConfig
from mgdata.labels.relabel import build_relabel
from mgdata.labels.stats import plot_hours_per_class, quadrant_table, table_to_dict
from mgdata.report import StageReport


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the stage; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (section relabel)")
    parser.add_argument(
        "--manifest", type=Path, default=Path("data/corpus/manifest.parquet"), help="corpus manifest parquet"
    )
    parser.add_argument("--out-dir", type=Path, default=Path("data/relabel"), help="where the parquet files go")
    parser.add_argument("--metrics", type=Path, default=Path("metrics/relabel.json"), help="metrics JSON to write")
    parser.add_argument("--plots", type=Path, default=Path("plots/relabel"), help="directory for the PNG plot")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    cfg = load_section(args.params, "relabel", RelabelConfig)
    # Start clean so a jamendo_quadrants.parquet from an earlier run with metadata_dir set cannot linger.
    shutil.rmtree(args.out_dir, ignore_errors=True)
    report = StageReport("relabel")
    results = build_relabel(args.manifest, args.out_dir, cfg=cfg, report=report)

    tables = {}
    for name, result in results.items():
        tables[name] = quadrant_table(result.table)
        report.set(name, {**result.to_dict(), "per_split": table_to_dict(tables[name])})
    report.set("mapping", cfg.mapping)
    report.write(args.metrics)
    plot_hours_per_class(tables, args.plots / "hours_per_class.png")
    for name, result in results.items():
        print(f"relabel {name}: {result.quadrant_counts()} dropped={result.dropped} conflicts={result.conflicts}")
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
