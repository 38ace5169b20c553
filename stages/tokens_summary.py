"""DVC stage ``tokens_summary``: every token configuration's metrics in one ``metrics/tokens.json``.

Reads ``metrics/tokens/s{segment_s}-k{k}.json`` for each configuration of the
current grid (``tokens.segment_s`` x ``tokens.k`` in params) and writes one entry
per configuration (usage, entropy, top-symbol share, mean run length, counts,
per split).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from mgdata.cli import run_stage
from mgdata.config import load_section, read_params
from mgdata.tokens.config import TokensConfig
from mgdata.tokens.summary import grid_names, summarize, write_summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the stage; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (section tokens)")
    parser.add_argument("--metrics-dir", type=Path, default=Path("metrics/tokens"),
                        help="folder of per-configuration metrics")
    parser.add_argument("--out", type=Path, default=Path("metrics/tokens.json"), help="summary JSON to write")
    args = parser.parse_args(argv)

    defaults = load_section(args.params, "tokens", TokensConfig)  # validates the section
    section = read_params(args.params).get("tokens") or {}
    # Raw YAML values: names must match DVC's rendering of ${item.segment_s} (e.g. 0.5, not 0.50).
    names = grid_names(section.get("segment_s", defaults.segment_s), section.get("k", defaults.k))
    summary = summarize(args.metrics_dir, names)
    write_summary(args.out, summary)
    for name, entry in summary["configs"].items():
        print(f"{name}: usage {entry['usage']:.3f} entropy {entry['entropy_bits']:.3f} bits "
              f"top {entry['top_share']:.3f} run {entry['mean_run_length']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
