"""DVC stage ``tokens`` (one matrix item): stem pairs -> token sequences for one (segment_s, K).

Encodes every distinct stem of the ``data/stems`` artifact into frames (CQT
chroma by default, see ``tokens.encoder``), averages them over uniform segments
of ``--segment-s`` seconds, fits a ``--k``-symbol MiniBatchKMeans codebook on the
training split only and writes ``data/tokens/s{segment_s}-k{k}/`` (shards with
``a_tokens.npy``, ``b_tokens.npy``, ``json``; ``codebook.npy``) and
``metrics/tokens/s{segment_s}-k{k}.json`` (codebook usage, entropy, top-symbol
share, mean run length; overall and per split; counts and skipped pairs).
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
from mgdata.tokens.build import build_tokens
from mgdata.tokens.config import TokensConfig, config_name


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the stage; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="params file (sections tokens, shards)")
    # Kept as text: the output name must spell segment_s exactly as DVC renders ${item.segment_s}.
    parser.add_argument("--segment-s", required=True,
                        help="segment length in seconds (one token per segment), e.g. 0.5")
    parser.add_argument("--k", type=int, required=True, help="alphabet size (k-means centroids), e.g. 64")
    parser.add_argument("--stems", type=Path, default=Path("data/stems"), help="stem-pairs artifact to tokenise")
    parser.add_argument("--out-root", type=Path, default=Path("data/tokens"),
                        help="output root; the artifact goes to OUT_ROOT/s{segment_s}-k{k}")
    parser.add_argument("--metrics-dir", type=Path, default=Path("metrics/tokens"),
                        help="metrics folder; writes METRICS_DIR/s{segment_s}-k{k}.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        segment_s = float(args.segment_s)
    except ValueError:
        parser.error(f"--segment-s: expected a number of seconds, got {args.segment_s!r}")

    cfg = load_section(args.params, "tokens", TokensConfig)
    shards = load_section(args.params, "shards", ShardConfig)
    name = config_name(args.segment_s, args.k)
    report = StageReport("tokens")
    result = build_tokens(args.stems, args.out_root / name, cfg=cfg, segment_s=segment_s, k=args.k,
                          shards=shards, report=report, name=name)
    report.write(args.metrics_dir / f"{name}.json")
    st = result.stats["all"]
    print(f"tokens {name}: {result.counts['pairs_written'] + result.counts['pairs_resumed']} pairs, "
          f"{st.n_tokens} tokens over {st.n_sequences} stems, usage {st.usage:.3f}, entropy {st.entropy_bits:.3f} "
          f"bits, top share {st.top_share:.3f}, mean run {st.mean_run_length:.2f}, skipped {len(report.skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
