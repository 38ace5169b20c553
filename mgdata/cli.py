"""The ``mgdata`` command line: inspect shards, check params, relabel, regenerate samples.

Subcommands come from modules that expose ``register_cli(subparsers)``; they are
imported only when the CLI starts, so ``mgdata --help`` lists them all.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from mgdata import __version__
from mgdata.errors import MgdataError
from mgdata.registry import Registry

# Modules contributing subcommands (lazy: imported when the CLI is built).
CLI_MODULES = Registry(
    "CLI module",
    "mgdata.cli.CLI_MODULES",
    {
        "pipeline": "mgdata.pipeline.cli:register_cli",
        "compare": "mgdata.compare:register_cli",
        "htmlreport": "mgdata.htmlreport:register_cli",
        "labels": "mgdata.labels.cli:register_cli",
        "generate": "mgdata.generate.cli:register_cli",
        "embed": "mgdata.embed.cli:register_cli",
        "cards": "mgdata.cards:register_cli",
        "classify": "mgdata.classify.cli:register_cli",
        "hub": "mgdata.hub.cli:register_cli",
        "decision": "mgdata.decision.cli:register_cli",
        "tagger": "mgdata.musicnn.tagger:register_cli",
    },
)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from mgdata.store import inspect_artifact

    report = inspect_artifact(args.path, verify=not args.no_verify)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        arts = report["artifacts"]
        plural = "s" if len(arts) != 1 else ""
        print(f"{report['path']}: {len(arts)} artifact{plural}, {report['shards']} shards, {report['samples']} samples")
        for folder, art in arts.items():  # hours per artifact: a mix and its stems are not added up
            state = "" if art["complete"] else " (incomplete: no artifact.json)"
            print(f"{folder}: {art['shards']} shards, {art['samples']} samples, {art['hours']:.3f} h audio{state}")
            for split, n in art["splits"].items():
                print(f"  split {split:<12} {n:>8} samples")
            for label, n in art["labels"].items():
                print(f"  label {label:<24} {n:>8}")
            for name, rec in art["files"].items():
                size = rec["size"] if rec["size"] is not None else "?"
                print(f"  file  {name:<24} {size:>8} bytes" + ("" if rec["ok"] else "  FAILED"))
        if args.no_verify:
            print("checksums: not checked (--no-verify: indexes trusted)")
        elif report["ok"]:
            print("checksums: verified (shards, indexes, side files)")
        else:  # never "verified" next to an error
            print(f"checksums: FAILED ({len(report['errors'])} errors)")
    for err in report["errors"]:
        print(f"ERROR {err['shard']}: {err['error']}", file=sys.stderr)
    return 0 if report["ok"] else 1


def _cmd_params_check(args: argparse.Namespace) -> int:
    from mgdata.params import validate_params

    sections = validate_params(args.params)
    print(f"{args.params}: OK ({', '.join(sections)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="mgdata",
        description="Reproducible, sharded datasets for music ML (see README.md; stages run with `dvc repro`).",
    )
    parser.add_argument("--version", action="version", version=f"mgdata {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    shards = sub.add_parser("shards", help="inspect WebDataset shard artifacts")
    shards_sub = shards.add_subparsers(dest="shards_command", metavar="SUBCOMMAND")
    insp = shards_sub.add_parser(
        "inspect",
        help="count shards, samples, audio hours, samples per split and label; verify checksums",
        description="Summarise every shard under PATH (a shard, an artifact or a folder of artifacts) and "
        "verify each against its sidecar index. Exits 1 and names the shard if one is corrupt or truncated.",
    )
    insp.add_argument("path", help="a .tar shard or a directory (searched recursively)")
    insp.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (keys: shards, samples, seconds, splits, labels, ok, errors, ...)",
    )
    insp.add_argument("--no-verify", action="store_true", help="trust the indexes; skip reading the tars")
    insp.set_defaults(func=_cmd_inspect)

    params = sub.add_parser("params", help="validate params.yaml")
    params_sub = params.add_subparsers(dest="params_command", metavar="SUBCOMMAND")
    chk = params_sub.add_parser("check", help="validate every section of params.yaml; errors name the key path")
    chk.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    chk.set_defaults(func=_cmd_params_check)

    for name in CLI_MODULES:
        CLI_MODULES.load(name)(sub)
    return parser


def run_stage(main_fn: Callable[[], int]) -> int:
    """Run a stage's ``main``; an mgdata error prints one clear line and exits 2 (no traceback).

    The message names the params key, file or sample at fault; anything else is a
    bug and keeps its traceback.
    """
    try:
        return int(main_fn() or 0)
    except MgdataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mgdata`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.parse_args([*(argv or sys.argv[1:]), "--help"])
        return 2
    try:
        return int(args.func(args) or 0)
    except MgdataError as exc:
        print(f"mgdata: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
