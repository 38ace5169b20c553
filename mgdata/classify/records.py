"""Typed results of the ``classify`` builder."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class ClassifyResult:
    """What :func:`mgdata.classify.build.build_classify` produced.

    ``metrics`` holds one block per experiment (numbers only: what the stage report keeps); the probes,
    confusion tables, plots and ``results.md`` are under ``out_dir`` (None: run in memory, nothing written).
    ``results_md`` is the text of ``results.md`` (the seed paper's Table III layout and the permutation lines).
    ``classes`` says which classes the metrics cover (:func:`mgdata.classify.data.class_coverage`, names
    included).
    """

    task: str
    embedder: str
    out_dir: Path | None
    metrics: dict[str, Any]
    results_md: str = ""
    classes: dict[str, Any] = dataclasses.field(default_factory=dict)


__all__ = ["ClassifyResult"]
