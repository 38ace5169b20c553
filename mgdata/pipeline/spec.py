"""What a stage is: its params sections, arguments, paths, code dependencies and the function that runs it.

A :class:`StageSpec` is data. The stage registry (:mod:`mgdata.pipeline.registry`)
holds one per DVC stage; :func:`mgdata.pipeline.main.stage_main` turns a spec into
a command line, the contract tests check dvc.yaml against the specs, and
``mgdata stages table`` renders the README's pipeline table from them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Arg:
    """One command-line option of a stage script.

    Attributes:
        flag: ``--out-dir`` style flag; the attribute is the flag without dashes, ``-`` -> ``_``.
        default: Default value (a path is given as text); ``None`` with ``required`` for mandatory ones.
        help: One line for ``--help``.
        required: The option must be given (matrix stages: ``--k``).
        path: The value is a filesystem path (parsed as :class:`~pathlib.Path`).
    """

    flag: str
    default: Any = None
    help: str = ""
    required: bool = False
    path: bool = False

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class StageOutcome:
    """What a stage run reports back to :func:`stage_main`.

    Attributes:
        summary: One line printed at the end (counts, not timings).
        inputs: How many input items the stage saw (tracks, samples, pairs...).
        outputs: How many output items it wrote (or kept from a resumed run).
    """

    summary: str
    inputs: int = 0
    outputs: int = 0


@dataclass(frozen=True)
class StageSpec:
    """A DVC stage of the pipeline.

    Attributes:
        name: The dvc.yaml stage name (``embed`` for the ``embed@...`` matrix).
        summary: One line: what it makes.
        sections: params.yaml sections the stage reads; each must be present in the params file.
        run: ``"module:function"``; called as ``function(ctx) -> StageOutcome``.
        args: The stage's own command-line options (``--params`` and the common ones are added).
        metrics: Metrics path template, formatted with the parsed arguments (``metrics/tokens/{name}.json``).
        code: Source paths the stage runs, besides its script: its dvc.yaml ``deps`` must include them all.
        library: The mgdata module(s) holding its builder (README table).
        outputs: What it writes (README table).
        allow_empty: The stage may legitimately write nothing (e.g. an optional source).
        headline: ``fnmatch`` patterns of the numbers its metrics file keeps (plus ``skipped``), so
            ``dvc metrics show`` over the pipeline stays a table of a few dozen columns; every number
            stays in the stage report. Empty = every number.
        name_fn: Derives ``{name}`` for templates from the arguments and the raw params (matrix stages).
    """

    name: str
    summary: str
    sections: tuple[str, ...]
    run: str
    args: tuple[Arg, ...] = ()
    metrics: str = ""
    code: tuple[str, ...] = ()
    library: str = ""
    outputs: str = ""
    allow_empty: bool = False
    headline: tuple[str, ...] = ()
    name_fn: Callable[[Any, dict], str] | None = field(default=None, compare=False)

    @property
    def script(self) -> str:
        return f"stages/{self.name}.py"
