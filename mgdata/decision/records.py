"""Typed results of the ``decision`` builder."""

from __future__ import annotations

import dataclasses
from typing import Any

from mgdata.decision.evaluate import EvalResult
from mgdata.decision.train import TrainResult


@dataclasses.dataclass
class DecisionResult:
    """What :func:`mgdata.decision.build.build_decision` produced.

    ``train`` and ``evaluation`` are the first seed's (its model is saved and rendered); ``metrics`` holds
    that seed's full blocks plus ``trials`` (seeds, per-seed headline numbers, their aggregate).
    """

    name: str
    train: TrainResult
    evaluation: EvalResult
    metrics: dict[str, Any]
    renders: list[dict[str, Any]]
    trials: list[tuple[TrainResult, EvalResult]] = dataclasses.field(default_factory=list)


__all__ = ["DecisionResult"]
