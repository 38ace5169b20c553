"""DVC stage ``stems``: multitrack tracks -> aligned windows -> ordered stem pairs (A, B).

Reads the source chosen by ``stems.source`` in params: ``corpus`` (default, the
``data/corpus/stems`` artifact) or ``moisesdb`` (a MoisesDB download at
``stems.moisesdb_root``). Writes the ``data/stems`` artifact (members ``a.flac``,
``b.flac``, ``json``) and ``metrics/stems.json`` (windows and pairs per split,
silent stem windows dropped, excluded stem types, skipped tracks with reasons).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from mgdata.cli import run_stage
from mgdata.config import ShardConfig, load_section
from mgdata.report import StageReport
from mgdata.stems.build import build_stems_stage
from mgdata.stems.config import StemsConfig


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the stage; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (sections stems, shards)")
    parser.add_argument(
        "--corpus-stems", type=Path, default=Path("data/corpus/stems"),
        help="corpus stems artifact (read when stems.source is corpus)",
    )
    parser.add_argument("--out-dir", type=Path, default=Path("data/stems"), help="output artifact directory")
    parser.add_argument("--metrics", type=Path, default=Path("metrics/stems.json"), help="metrics JSON to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    cfg = load_section(args.params, "stems", StemsConfig)
    shards = load_section(args.params, "shards", ShardConfig)
    report = StageReport("stems")
    result = build_stems_stage(cfg, shards, corpus_stems_dir=args.corpus_stems, out_dir=args.out_dir, report=report)
    report.write(args.metrics)
    print(
        f"stems ({cfg.source}): {result.tracks_used}/{result.tracks_in} tracks, {result.windows} windows, "
        f"pairs per split {dict(sorted(result.pairs_per_split.items()))}, "
        f"silent stem-windows dropped {result.silent_stem_windows}, skipped {len(report.skipped)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
