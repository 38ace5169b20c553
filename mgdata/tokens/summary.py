"""Merge the per-configuration token statistics into one table (``plots/tokens/stats.csv``).

Each ``tokens@<encoder>-<segment_s>-<k>`` stage writes every flat number to its stage
report ``stage_reports/tokens/{encoder}-s{segment_s}-k{k}.json`` (its metrics file keeps
a headline); this module reads the reports of
the configurations in the current grid (not every file in the folder, so a
configuration dropped from params.yaml does not linger) and keeps, per
configuration, the figures DVC can compare (``dvc metrics show`` / ``diff``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mgdata.errors import MgdataError
from mgdata.tokens.config import config_name

# Figures kept per configuration in the summary (missing ones are left out).
FIELDS = (
    "segment_s",
    "k",
    "dim",
    "usage",
    "entropy_bits",
    "entropy_norm",
    "top_share",
    "mean_run_length",
    "n_tokens",
    "n_sequences",
    "n_used",
    "stem_windows_written",
    "stem_windows_skipped",
    "train_segments",
    "codebook_distinct_centroids",
    "pairs_kept",
    "pair_mi_bits",
    "pair_mi_shuffled_bits",
    "skipped",
)
SPLIT_FIELDS = ("usage", "entropy_bits", "top_share", "mean_run_length", "n_tokens")


def grid_names(encoder: str, segment_s: Iterable[Any], k: Iterable[Any]) -> list[str]:
    """Configuration names of the grid, in matrix order (segment_s outer, k inner)."""
    ks = list(k)
    return [config_name(encoder, str(s), int(kk)) for s in segment_s for kk in ks]


def summarize(reports_dir: str | Path, names: Iterable[str]) -> dict[str, Any]:
    """One entry per configuration from ``{reports_dir}/{name}.json`` (stage reports or flat metrics).

    Args:
        reports_dir: Folder of per-configuration reports (``stage_reports/tokens``).
        names: Configuration names to include (see :func:`grid_names`).

    Returns:
        ``{"n_configs", "configs": {name: {<FIELDS>, "<split>_<SPLIT_FIELDS>"...}}}`` (numbers only).

    Raises:
        MgdataError: A configuration's report is missing or malformed.
    """
    reports_dir = Path(reports_dir)
    configs: dict[str, Any] = {}
    for name in names:
        path = reports_dir / f"{name}.json"
        if not path.exists():
            raise MgdataError(f"{path}: missing token report (run `dvc repro tokens` for configuration {name})")
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or not isinstance(data.get("k"), int):
                raise ValueError("no integer 'k'")
        except (ValueError, json.JSONDecodeError) as exc:
            raise MgdataError(f"{path}: malformed token report ({exc})") from None
        entry = {f: data[f] for f in FIELDS if f in data}
        entry.update(
            {
                f: v
                for f, v in sorted(data.items())
                if any(f.endswith(f"_{s}") for s in SPLIT_FIELDS) and f.split("_")[0] in ("train", "validation", "test")
            }
        )
        configs[name] = entry
    return {"n_configs": len(configs), "configs": configs}
