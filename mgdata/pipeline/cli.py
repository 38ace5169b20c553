"""``mgdata stages``: list the pipeline's stages, or print the README table rendered from the registry."""

from __future__ import annotations

import argparse


def _cmd_list(args: argparse.Namespace) -> int:
    from mgdata.pipeline.registry import STAGES

    for spec in STAGES.values():
        print(f"{spec.name:<16} {spec.summary} (params: {', '.join(spec.sections)})")
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    from mgdata.pipeline.registry import readme_table

    print(readme_table())
    return 0


def register_cli(sub) -> None:
    """Add ``mgdata stages {list,table}``."""
    p = sub.add_parser("stages", help="the pipeline's stages (from the stage registry)")
    s = p.add_subparsers(dest="stages_command", metavar="SUBCOMMAND")
    s.add_parser("list", help="one line per stage: what it makes and the params sections it reads").set_defaults(
        func=_cmd_list
    )
    s.add_parser("table", help="the README's pipeline table (markdown)").set_defaults(func=_cmd_table)
