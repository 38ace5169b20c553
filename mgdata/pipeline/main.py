"""``stage_main``: the one way a DVC stage runs (arguments, params checks, report files, errors).

Every script in ``stages/`` is ``raise SystemExit(stage_main("<name>"))``. For the
stage's :class:`~mgdata.pipeline.spec.StageSpec` it:

1. builds the command line (``--params``, ``--no-progress``, ``--metrics``,
   ``--report`` and the stage's own options; ``--help`` shows the stage's doc);
2. validates the WHOLE params file before any work (an unknown section or key
   fails the stage exactly as it fails ``mgdata params check``) and requires
   every section the stage reads to be present (a missing section is an error,
   not silent defaults);
3. runs the stage function with a :class:`StageContext`;
4. writes ``metrics/...json`` (numbers only) and ``stage_reports/...json``
   (everything, with each skipped input and why);
5. fails (exit 2) when non-empty input produced no output, unless
   ``pipeline.allow_empty`` says that is fine.

An :class:`~mgdata.errors.MgdataError` prints one line naming the key, file or
shard (exit 2); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgdata.errors import MgdataError, ParamsError
from mgdata.exec import blas_one_thread
from mgdata.pipeline.spec import StageOutcome, StageSpec
from mgdata.registry import import_target
from mgdata.report import StageReport

log = logging.getLogger("mgdata")


@dataclass
class StageContext:
    """Everything a stage function needs.

    Attributes:
        spec: The stage's spec.
        args: Parsed command-line arguments (paths are :class:`~pathlib.Path`).
        params_path: The params file.
        raw: The params file as a mapping (already validated).
        report: The stage report to fill (written by ``stage_main``).
        progress: Show progress bars.
        name: ``{name}`` of the templates (matrix item name), or the stage name.
    """

    spec: StageSpec
    args: argparse.Namespace
    params_path: Path
    raw: dict[str, Any]
    report: StageReport
    progress: bool = True
    name: str = ""
    _sections: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> Any:
        """The validated config object of params section ``name``."""
        if name not in self._sections:
            from mgdata.config import from_dict
            from mgdata.params import section_class

            self._sections[name] = from_dict(section_class(name), self.raw.get(name), name)
        return self._sections[name]

    @property
    def shards(self) -> Any:
        return self.section("shards")

    @property
    def executor(self) -> Any:
        """Section ``executor`` (how to parallelise; never changes what is written)."""
        return self.section("executor")


def _parser(spec: StageSpec, doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=spec.script,
        description=doc or spec.summary,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Reads params sections: {', '.join(spec.sections)} (validated before any work). "
        "Writes numbers to --metrics and the full report (every skipped input and why) to --report.",
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    for arg in spec.args:
        parser.add_argument(
            arg.flag, default=arg.default, required=arg.required, help=arg.help, type=Path if arg.path else str
        )
    parser.add_argument(
        "--metrics", type=Path, default=None, help=f"metrics JSON, numbers only (default: {spec.metrics})"
    )
    parser.add_argument(
        "--report", type=Path, default=None, help="full report JSON (default: the metrics path under stage_reports/)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def report_path_for(metrics_path: Path) -> Path:
    """``metrics/a/b.json`` -> ``stage_reports/a/b.json`` (relative metrics paths keep their layout)."""
    parts = metrics_path.parts
    if parts and parts[0] == "metrics":
        return Path("stage_reports", *parts[1:])
    return metrics_path.with_name(metrics_path.stem + ".report.json")


def check_sections(spec: StageSpec, raw: dict[str, Any], params_path: Path) -> None:
    """Every section the stage reads must be in the params file (explicit beats silent defaults)."""
    for name in spec.sections:
        if name not in raw:
            raise ParamsError(
                name,
                f"section missing from {params_path} (stage {spec.name} reads it; "
                "write `" + name + ": {}` to use every default)",
            )


def stage_main(name: str, argv: Sequence[str] | None = None, *, doc: str | None = None) -> int:
    """Run stage ``name`` from the command line; returns the exit code.

    Args:
        name: A key of :data:`mgdata.pipeline.registry.STAGES`.
        argv: Arguments (default: ``sys.argv[1:]``).
        doc: ``--help`` text (the stage script's module docstring).
    """
    from mgdata.pipeline.registry import get_stage

    spec = get_stage(name)
    args = _parser(spec, doc).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(spec, args)
    except MgdataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(spec: StageSpec, args: argparse.Namespace) -> int:
    from mgdata.params import validate_params

    raw = validate_params(args.params, return_data=True)
    check_sections(spec, raw, args.params)
    item = spec.name_fn(args, raw) if spec.name_fn else spec.name
    metrics = args.metrics or Path(spec.metrics.format(**{**vars(args), "name": item}))
    report_file = args.report or report_path_for(metrics)
    report = StageReport(item if item == spec.name else f"{spec.name}/{item}")
    ctx = StageContext(
        spec=spec, args=args, params_path=args.params, raw=raw, report=report, progress=not args.no_progress, name=item
    )
    # One BLAS thread for the stage's own (in-process) numerics, as every executor task already has: a
    # multi-threaded BLAS partitions products by the machine's core count and can change the last bits (FD,
    # novelty, consolidation), so without this another machine's outputs could differ.
    with blas_one_thread():
        outcome: StageOutcome = import_target(spec.run)(ctx)
    report.write(metrics, report_file, keys=spec.headline)
    print(f"{spec.name} {item if item != spec.name else ''}".rstrip() + f": {outcome.summary}")
    allow_empty = spec.allow_empty or ctx.section("pipeline").allow_empty
    if outcome.inputs > 0 and outcome.outputs == 0 and not allow_empty:
        print(
            f"error: stage {spec.name}: {outcome.inputs} inputs produced no output (every input was skipped: "
            f"see {report_file}); set pipeline.allow_empty: true to accept an empty result",
            file=sys.stderr,
        )
        return 2
    return 0
