"""Merge the per-configuration token metrics into one table (``metrics/tokens.json``).

Each ``tokens@<segment_s>-<k>`` stage writes ``metrics/tokens/s{segment_s}-k{k}.json``;
this module reads the files of the configurations in the current grid (not every
file in the folder, so a configuration dropped from params.yaml does not linger)
and keeps, per configuration, the overall and per-split figures DVC can compare
(``dvc metrics show`` / ``dvc metrics diff``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from mgdata.errors import MgdataError
from mgdata.tokens.config import config_name

# Figures kept per configuration (and per split) in the summary.
STAT_FIELDS = ("usage", "entropy_bits", "entropy_norm", "top_share", "mean_run_length", "n_tokens",
               "n_sequences", "n_used")
COUNT_FIELDS = ("pairs_written", "pairs_skipped", "train_segments", "train_stems",
                "codebook_distinct_centroids")


def grid_names(segment_s: Iterable[Any], k: Iterable[Any]) -> list[str]:
    """Configuration names of the grid, in matrix order (segment_s outer, k inner)."""
    ks = list(k)
    return [config_name(str(s), int(kk)) for s in segment_s for kk in ks]


def summarize(metrics_dir: str | Path, names: Iterable[str]) -> dict[str, Any]:
    """One entry per configuration from ``{metrics_dir}/{name}.json``.

    Args:
        metrics_dir: Folder of per-configuration metrics (``metrics/tokens``).
        names: Configuration names to include (see :func:`grid_names`).

    Returns:
        ``{"n_configs", "configs": {name: {segment_s, k, dim, encoder, codebook_sha256,
        <stat fields>, <count fields>, "splits": {split: {<stat fields>}}}}}``.

    Raises:
        MgdataError: A configuration's metrics file is missing or malformed.
    """
    metrics_dir = Path(metrics_dir)
    configs: dict[str, Any] = {}
    for name in names:
        path = metrics_dir / f"{name}.json"
        if not path.exists():
            raise MgdataError(f"{path}: missing token metrics (run `dvc repro tokens` for configuration {name})")
        try:
            data = json.loads(path.read_text())
            overall = data["overall"]
            entry = {
                "segment_s": data["segment_s"],
                "k": data["k"],
                "dim": data["dim"],
                "encoder": data["encoder"].get("id", "?") if isinstance(data["encoder"], dict) else data["encoder"],
                "codebook_sha256": data["codebook_sha256"],
                **{f: overall[f] for f in STAT_FIELDS},
                **{f: data.get(f, 0) for f in COUNT_FIELDS},
                "skipped": data.get("skipped", 0),
                "splits": {split: {f: st[f] for f in STAT_FIELDS} for split, st in sorted(data["splits"].items())},
            }
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise MgdataError(f"{path}: malformed token metrics ({exc!r})") from None
        configs[name] = entry
    return {"n_configs": len(configs), "configs": configs}


def write_summary(path: str | Path, summary: dict[str, Any]) -> Path:
    """Write the summary as sorted, indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return path
