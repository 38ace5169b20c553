"""DVC stage ``generate``: a per-class budget of generated audio from one generator.

Reads the corpus mix artifact and the corpus quadrant labels, draws training
sources/primes per class (``generate`` params), generates the clips and writes
``data/generate/<generator>/`` (shards of ``flac`` + ``json`` with provenance,
split ``train``) and ``metrics/generate/<generator>.json`` (per class samples,
seconds, sources used; totals; budget; retries; skips). Resumable: rerun after
an interruption and only the missing samples are generated.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from mgdata.cli import run_stage
from mgdata.config import ShardConfig, load_section
from mgdata.generate.build import build_generated
from mgdata.generate.config import GenerateConfig
from mgdata.report import StageReport


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the stage; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="params file (sections generate, shards)")
    parser.add_argument("--generator", default=None,
                        help="generator to run (resynth | musicgen; default: first of generate.generators)")
    parser.add_argument("--corpus", default="data/corpus/mix",
                        help="corpus mix artifact; 'none' in text mode takes split/duration from the labels table")
    parser.add_argument("--labels", type=Path, default=Path("data/relabel/corpus_quadrants.parquet"),
                        help="labels parquet (track_id + generate.label_column)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="artifact directory (default: data/generate/<generator>)")
    parser.add_argument("--metrics", type=Path, default=None,
                        help="metrics JSON (default: metrics/generate/<generator>.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    cfg = load_section(args.params, "generate", GenerateConfig)
    shards = load_section(args.params, "shards", ShardConfig)
    name = args.generator or cfg.generators[0]
    out_dir = args.out_dir or Path("data/generate") / name
    metrics = args.metrics or Path("metrics/generate") / f"{name}.json"
    report = StageReport(f"generate/{name}")
    corpus = None if args.corpus.lower() in ("", "none") else Path(args.corpus)
    result = build_generated(corpus, args.labels, out_dir, cfg=cfg, shards=shards, report=report,
                             generator=name)
    report.write(metrics)
    b = result.plan.budget
    print(f"generate {name}: {result.n_samples} samples, {result.seconds:.1f} s "
          f"(budget {b.budget_s:.1f} s = {b.fraction:g} x {b.train_seconds:.1f} s over {len(b.classes)} classes; "
          f"{b.samples_per_class} x {b.sample_s:g} s per class); generated {result.generated}, "
          f"resumed {result.resumed}, retries {result.retries}, failed {len(result.failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
