"""``mgdata relabel``: relabel MTG-Jamendo TSV files into arousal/valence quadrants.

Wired into ``mgdata`` through :func:`register_cli`; also runnable alone as
``python -m mgdata.labels.cli relabel --input ... --output ...``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mgdata.errors import MgdataError


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``relabel`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "relabel",
        help="relabel MTG-Jamendo tags into four arousal/valence quadrants",
        description=(
            "Read MTG-Jamendo metadata TSV file(s) (TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS...), "
            "give each track the quadrant of its first mapped tag, write a parquet "
            "(track_id, quadrant, split, duration_s, tag) and print per-quadrant counts."
        ),
    )
    p.add_argument(
        "--input",
        "-i",
        required=True,
        action="append",
        type=Path,
        metavar="TSV",
        help="metadata TSV; repeat for several files (split taken from names like ...-train.tsv)",
    )
    p.add_argument("--output", "-o", required=True, type=Path, metavar="PARQUET", help="parquet file to write")
    p.add_argument(
        "--mapping",
        "-m",
        default="paper1",
        metavar="NAME_OR_PATH",
        help="shipped mapping name (default: paper1) or path to a mapping YAML",
    )
    p.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="skip malformed TSV rows (reported on stderr) instead of failing on the first one",
    )
    p.add_argument(
        "--stats", type=Path, metavar="JSON", help="also write counters and tracks/hours per split x quadrant"
    )
    p.set_defaults(func=run_relabel)


def run_relabel(args: argparse.Namespace) -> int:
    """Run ``mgdata relabel`` with parsed args; returns the exit code."""
    from mgdata.labels.relabel import load_mapping, relabel_tracks, write_quadrants
    from mgdata.labels.stats import quadrant_table, table_to_dict
    from mgdata.report import StageReport
    from mgdata.sources.jamendo import read_tsv

    report = StageReport("relabel")
    try:
        mapping = load_mapping(args.mapping)
        tracks = []
        for path in args.input:
            tracks.extend(read_tsv(path, strict=not args.skip_bad_rows, report=report))
        result = relabel_tracks(tracks, mapping=mapping, report=report)
        write_quadrants(result, args.output)
    except MgdataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = result.to_dict()
    qtable = quadrant_table(result.table)
    print(f"mapping {mapping.name} ({mapping.source}); {result.n_input} tracks read from {len(args.input)} file(s)")
    print(f"{'quadrant':<24} {'tracks':>7}")
    for quadrant, n in summary["quadrant_counts"].items():
        print(f"{quadrant:<24} {n:>7}")
    print(f"{'labelled':<24} {result.table.height:>7}")
    print(
        f"dropped (no mapped tag): {result.dropped}; conflicts (tags in several quadrants): {result.conflicts}; "
        f"unknown tags: {summary['unknown_tag_occurrences']}; duplicates: {len(result.duplicate_ids)}; "
        f"malformed rows skipped: {len(report.skipped) - len(result.duplicate_ids)}"
    )
    print(f"wrote {args.output}")
    if args.stats is not None:
        report.set("summary", summary)
        report.set("per_split", table_to_dict(qtable))
        # The stats file is a full report (per-split tables, every skipped row), not a DVC metrics file.
        from mgdata.report import write_json

        write_json(Path(args.stats), report.to_dict())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m mgdata.labels.cli relabel ...``)."""
    parser = argparse.ArgumentParser(prog="mgdata")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
