"""Typed results of the ``classify`` builder."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class ClassifyResult:
    """What :func:`mgdata.classify.build.build_classify` produced.

    ``metrics`` holds one block per experiment (numbers only: what the stage report keeps); the probes,
    confusion tables, plots and ``results.md`` are under ``out_dir``.
    """

    task: str
    embedder: str
    out_dir: Path
    metrics: dict[str, Any]


__all__ = ["ClassifyResult"]
