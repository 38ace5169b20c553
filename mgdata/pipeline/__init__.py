"""The stage framework: a registry of DVC stages and the one ``stage_main`` that runs them."""

from mgdata.pipeline.main import StageContext, stage_main
from mgdata.pipeline.spec import Arg, StageOutcome, StageSpec

__all__ = ["Arg", "StageContext", "StageOutcome", "StageSpec", "stage_main"]
