"""DVC stage ``corpus``: render the offline chorale corpus from music21's bundled scores.

Reads params sections ``corpus`` and ``shards``; writes ``data/corpus/mix/``,
``data/corpus/stems/`` (WebDataset shards) and ``data/corpus/manifest.parquet``,
and ``metrics/corpus.json`` (tracks rendered, skips by reason, seconds per split,
tag counts). Rerunning after a crash keeps the verified shards and
renders only the missing tracks.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from mgdata.cli import run_stage
from mgdata.config import ShardConfig, load_section
from mgdata.corpus.build import build_corpus
from mgdata.corpus.config import CorpusConfig
from mgdata.report import StageReport


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the stage; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="params file (sections corpus and shards)")
    parser.add_argument("--out-dir", type=Path, default=Path("data/corpus"),
                        help="output directory (mix/, stems/, manifest.parquet)")
    parser.add_argument("--metrics", type=Path, default=Path("metrics/corpus.json"), help="metrics JSON to write")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    # Both sections are validated before any work.
    cfg = load_section(args.params, "corpus", CorpusConfig)
    shards = load_section(args.params, "shards", ShardConfig)
    report = StageReport("corpus")
    result = build_corpus(args.out_dir, cfg=cfg, shards=shards, report=report, progress=not args.no_progress)
    report.write(args.metrics)
    m = report.to_dict()
    print(f"corpus: {m['tracks']} tracks ({m['stems']} stems, {m['hours']:.3f} h) per split "
          f"{m['tracks_per_split']}, resumed {result.resumed_tracks}, skipped {m['skipped_by_reason'] or 0}")
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
