"""DVC stage ``embed``: embeddings of one input artifact by one embedder under one deformation scenario.

One item of the ``embed`` matrix (embedder x artifact x scenario, lists in params
``embed``). Reads the input artifact (samples with ``flac`` + ``json``), writes
``data/embed/<embedder>/<artifact>/<scenario>/`` (shards of ``npy`` + ``json``, plus
``{split}.npy`` matrices and ``{split}.parquet`` keys/labels) and
``metrics/embed/<embedder>-<artifact>-<scenario>.json`` (samples in, embedded per
split, skipped with reasons, padded short clips, training samples not deformed).
Deformation scenarios cover the evaluation splits only (``embed.eval_splits``).
Resumable: a rerun after an interruption embeds only the missing samples.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from mgdata.cli import run_stage
from mgdata.config import ShardConfig, load_section
from mgdata.embed.build import build_embeddings
from mgdata.embed.config import CLEAN, EmbedConfig
from mgdata.report import StageReport


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the stage; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (sections embed, shards)")
    parser.add_argument("--embedder", default=None, help="registry name: logmel | hf (default: first of embed.embedders)")
    parser.add_argument("--artifact", default=None,
                        help="input artifact name from embed.artifacts (default: the first), e.g. corpus, resynth")
    parser.add_argument("--artifact-dir", type=Path, default=None,
                        help="input artifact directory (default: the path embed.artifacts gives the name)")
    parser.add_argument("--scenario", default=CLEAN, help="deformation scenario: clean or a key of embed.scenarios")
    parser.add_argument("--out-root", type=Path, default=Path("data/embed"),
                        help="output root; the artifact goes to <out-root>/<embedder>/<artifact>/<scenario>")
    parser.add_argument("--metrics-dir", type=Path, default=Path("metrics/embed"),
                        help="metrics go to <metrics-dir>/<embedder>-<artifact>-<scenario>.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    cfg = load_section(args.params, "embed", EmbedConfig)
    shards = load_section(args.params, "shards", ShardConfig)
    embedder = args.embedder or cfg.embedders[0]
    name = args.artifact or cfg.artifacts[0].name
    artifact_dir = args.artifact_dir or Path(cfg.artifact(name).path)
    out_dir = args.out_root / embedder / name / args.scenario
    report = StageReport(f"embed/{embedder}/{name}/{args.scenario}")
    result = build_embeddings(artifact_dir, out_dir, cfg=cfg, embedder=embedder, scenario=args.scenario,
                              shards=shards, report=report)
    report.write(args.metrics_dir / f"{embedder}-{name}-{args.scenario}.json")
    print(f"embed {embedder}/{name}/{args.scenario}: {sum(result.samples.values())} samples "
          f"({', '.join(f'{s} {n}' for s, n in sorted(result.samples.items())) or 'none'}), dim {result.dim}, "
          f"skipped {len(report.skipped)}, not deformed (train) {report.counts.get('not_evaluated', 0)} -> {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
