"""Stage ``jamendo``: MTG-Jamendo audio clips as a source artifact in the corpus mix format.

NOT part of the default pipeline (not in dvc.yaml): MTG-Jamendo audio must be
downloaded by the user (~150 GB of MP3s from the dataset's own servers, see
https://github.com/MTG/mtg-jamendo-dataset); nothing here downloads it.

To wire it in:

1. download the metadata (the repository's ``data/`` directory) and the audio;
2. in params.yaml set ``relabel.jamendo.metadata_dir`` (the ``data/`` directory,
   holding ``splits/``) and ``relabel.jamendo.audio_root`` (the directory the TSV
   ``PATH`` column is relative to); ``clip_s``, ``clip_position``,
   ``sample_rate``, ``split_index`` and ``subset`` choose the clips;
3. run ``python stages/jamendo.py``: it writes ``data/jamendo/mix/`` (shards:
   ``flac`` + ``json`` per track, like ``data/corpus/mix``),
   ``data/jamendo/manifest.parquet`` and ``metrics/jamendo.json``;
4. point the audio stages at it; they read ``data/jamendo/mix`` exactly as they
   read ``data/corpus/mix``:

     python stages/relabel.py          # with metadata_dir set: data/relabel/jamendo_quadrants.parquet
     python stages/generate.py --corpus data/jamendo/mix \
         --labels data/relabel/jamendo_quadrants.parquet --out-dir data/generate/<name>-jamendo
     python stages/embed.py --artifact jamendo --artifact-dir data/jamendo/mix
     # or add {name: jamendo, path: data/jamendo/mix} to embed.artifacts in params.yaml

   (labels join on the raw MTG-Jamendo ``track_id``, e.g. ``track_0000948``; the
   manifest has the corpus-manifest columns ``relabel`` reads).

Reads params sections ``relabel`` (its ``jamendo`` block) and ``shards``.
Missing or unreadable audio files are skipped and listed in the metrics (unless
``relabel.jamendo.fail_on_error``). Rerunning after a crash keeps the verified
shards and decodes only the missing tracks.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from mgdata.cli import run_stage
from mgdata.config import ShardConfig, load_section
from mgdata.labels.config import RelabelConfig
from mgdata.report import StageReport
from mgdata.sources.jamendo_clips import build_jamendo_clips


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the stage; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="params file (sections relabel.jamendo and shards)")
    parser.add_argument("--out-dir", type=Path, default=Path("data/jamendo"),
                        help="output directory (mix/, manifest.parquet)")
    parser.add_argument("--metrics", type=Path, default=Path("metrics/jamendo.json"), help="metrics JSON to write")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    # Both sections are validated before any work.
    cfg = load_section(args.params, "relabel", RelabelConfig).jamendo
    shards = load_section(args.params, "shards", ShardConfig)
    report = StageReport("jamendo")
    result = build_jamendo_clips(args.out_dir, cfg=cfg, shards=shards, report=report,
                                 progress=not args.no_progress)
    report.write(args.metrics)
    m = report.to_dict()
    print(f"jamendo: {m['tracks']} clips ({m['hours']:.3f} h) per split {m['tracks_per_split']}, "
          f"resumed {result.resumed_tracks}, skipped {m['skipped_by_reason'] or 0}")
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
