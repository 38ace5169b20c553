"""``mgdata generate show|regenerate``: inspect and reproduce single generated samples.

``show`` prints the provenance of a sample (its json file, or its key looked up
in a generate artifact). ``regenerate`` rebuilds the generator and the request
from that json alone (plus the corpus for the source/prime clip), writes the
audio as FLAC and, with ``--check``, compares it byte for byte with the shard.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from mgdata.errors import InputError


def _load(sample: str, artifact: Path) -> tuple[dict, bytes | None]:
    """(json, shard flac bytes or None) for a json file path or a sample key.

    The json is read through :class:`~mgdata.generate.records.GeneratedRecord` (an unknown
    or missing field is a one-line error naming the file or the shard and key) and handed
    on as the record's dict.
    """
    from mgdata.generate.build import find_sample
    from mgdata.generate.records import GeneratedRecord
    from mgdata.store import load_json_file

    path = Path(sample)
    if path.suffix == ".json" and path.exists():
        meta = GeneratedRecord.from_dict(load_json_file(path), where=str(path)).to_dict()
        flac = None
        if (artifact / "artifact.json").exists():
            try:
                flac = find_sample(artifact, meta["key"])["flac"]
            except InputError:
                flac = None
        return meta, flac
    if path.suffix == ".json":
        raise InputError(sample, "json file not found")
    s = find_sample(artifact, sample)
    return GeneratedRecord.from_sample(s).to_dict(), s.get("flac")


def _cmd_show(args: argparse.Namespace) -> int:
    meta, _ = _load(args.sample, Path(args.artifact))
    out = (
        meta
        if args.full
        else {
            k: meta[k]
            for k in (
                "key",
                "label",
                "split",
                "generator",
                "duration_s",
                "sample_rate",
                "seed",
                "prompt",
                "source_key",
                "offset_s",
                "params_hash",
                "mgdata_version",
            )
            if k in meta
        }
        | {"provenance": meta.get("provenance")}
    )
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


def _cmd_regenerate(args: argparse.Namespace) -> int:
    from mgdata.audio import encode_flac
    from mgdata.generate.build import regenerate

    meta, shard_flac = _load(args.sample, Path(args.artifact))
    y, sr = regenerate(meta, args.corpus)
    data = encode_flac(y, sr)
    # Default outside the work tree: a stray FLAC in the repo root would show up in `git status`.
    out = Path(args.out) if args.out else Path(tempfile.gettempdir()) / "mgdata-regenerated" / f"{meta['key']}.flac"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {out} ({len(y) / sr:.3f} s at {sr} Hz, seed {meta.get('seed')})")
    if args.check:
        if shard_flac is None:
            print(f"--check: sample {meta['key']} not found in {args.artifact}")
            return 1
        same = shard_flac == data
        print("matches the shard bytes" if same else "DIFFERS from the shard bytes")
        return 0 if same else 1
    return 0


def register_cli(subparsers) -> None:
    """Add ``mgdata generate show`` and ``mgdata generate regenerate``."""
    gen = subparsers.add_parser("generate", help="show or regenerate generated-audio samples")
    sub = gen.add_subparsers(dest="generate_command", metavar="SUBCOMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("sample", help="a sample's .json file, or its key in --artifact")
    common.add_argument(
        "--artifact",
        default="data/generate/resynth",
        help="generate artifact to look keys up in (default: data/generate/resynth)",
    )
    show = sub.add_parser("show", parents=[common], help="print a sample's provenance")
    show.add_argument("--full", action="store_true", help="print the whole json member")
    show.set_defaults(func=_cmd_show)
    regen = sub.add_parser(
        "regenerate",
        parents=[common],
        help="regenerate one sample from its json and write a FLAC",
        description="Rebuild the generator and request from the sample's provenance, "
        "regenerate it and write FLAC; --check compares with the shard bytes.",
    )
    regen.add_argument(
        "--corpus",
        default="data/corpus/mix",
        help="corpus mix artifact holding the source/prime (default: data/corpus/mix)",
    )
    regen.add_argument("--out", default=None, help="output FLAC (default: $TMPDIR/mgdata-regenerated/<key>.flac)")
    regen.add_argument(
        "--check", action="store_true", help="exit 1 unless the regenerated FLAC equals the shard's bytes"
    )
    regen.set_defaults(func=_cmd_regenerate)
