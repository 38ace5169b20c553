"""Section ``pipeline``: rules every stage shares."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PipelineConfig:
    """Section ``pipeline``.

    Attributes:
        allow_empty: Accept a stage whose non-empty input produced no output (every input skipped);
            by default that fails the stage, since it almost always means bad input or params.
    """

    allow_empty: bool = False
