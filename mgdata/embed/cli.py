"""``mgdata embed``: embed any flac+json artifact outside DVC, or show what an embedder is.

Wired into :mod:`mgdata.cli` through :func:`register_cli`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _cmd_run(args: argparse.Namespace) -> int:
    from mgdata.config import ShardConfig, load_section
    from mgdata.embed.build import build_embeddings
    from mgdata.embed.config import EmbedConfig
    from mgdata.report import StageReport

    cfg = load_section(args.params, "embed", EmbedConfig) if Path(args.params).exists() else EmbedConfig()
    shards = load_section(args.params, "shards", ShardConfig) if Path(args.params).exists() else ShardConfig()
    report = StageReport(f"embed/{args.embedder}/{args.scenario}")
    result = build_embeddings(
        args.artifact_dir,
        args.out,
        cfg=cfg,
        embedder=args.embedder,
        scenario=args.scenario,
        shards=shards,
        report=report,
    )
    if args.metrics:
        report.write(args.metrics)
    print(json.dumps(result.to_dict() | {"skipped": len(report.skipped)}, sort_keys=True, indent=1))
    return 0


def _cmd_describe(args: argparse.Namespace) -> int:
    from mgdata.config import load_section
    from mgdata.embed.base import get_embedder
    from mgdata.embed.config import EmbedConfig

    cfg = load_section(args.params, "embed", EmbedConfig) if Path(args.params).exists() else EmbedConfig()
    print(json.dumps(get_embedder(args.embedder, cfg).describe(), sort_keys=True, indent=1))
    return 0


def register_cli(subparsers) -> None:
    """Add ``mgdata embed run`` and ``mgdata embed describe``."""
    embed = subparsers.add_parser("embed", help="embed an audio artifact (logmel, hf) under a deformation scenario")
    sub = embed.add_subparsers(dest="embed_command", metavar="SUBCOMMAND")
    run = sub.add_parser("run", help="embed every clip of ARTIFACT_DIR into OUT (shards + per-split matrices)")
    run.add_argument("artifact_dir", type=Path, help="input artifact (samples with flac + json members)")
    run.add_argument("out", type=Path, help="output artifact directory")
    run.add_argument("--embedder", default="logmel", help="registry name: logmel | hf (default: logmel)")
    run.add_argument("--scenario", default="clean", help="clean or a key of embed.scenarios (default: clean)")
    run.add_argument("--params", default="params.yaml", help="params file with section embed (defaults if missing)")
    run.add_argument("--metrics", type=Path, default=None, help="also write the stage report JSON here")
    run.set_defaults(func=_cmd_run)
    desc = sub.add_parser("describe", help="load an embedder and print its id, settings, versions, dim and rate")
    desc.add_argument("--embedder", default="logmel", help="registry name: logmel | hf")
    desc.add_argument("--params", default="params.yaml", help="params file with section embed (defaults if missing)")
    desc.set_defaults(func=_cmd_describe)
