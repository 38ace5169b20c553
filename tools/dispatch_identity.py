"""Check that the float-heavy stages write the same bytes at every SIMD level the pin is meant to cover.

A machine cannot switch off its own AVX-512, but ``qemu-x86_64 -cpu Haswell`` (Debian package ``qemu-user``)
runs the same Python as an AVX2-only CPU: CPUID reports no AVX-512, so numpy, OpenBLAS, MKL and torch pick
exactly what they would on such a machine. Three steps::

    # 1. inputs (audio, stems, token ids: integer/audio work that does not dispatch), natively
    .venv/bin/python tools/dispatch_identity.py inputs /tmp/di/inputs
    # 2. the float stages from those inputs, natively and on the emulated AVX2-only CPU
    .venv/bin/python tools/dispatch_identity.py run /tmp/di/inputs /tmp/di/native --out /tmp/di/native.json
    qemu-x86_64 -cpu Haswell .venv/bin/python tools/dispatch_identity.py run /tmp/di/inputs /tmp/di/haswell \\
        --out /tmp/di/haswell.json
    # 3. compare (exit 1 naming the files that differ)
    .venv/bin/python tools/dispatch_identity.py compare /tmp/di/native.json /tmp/di/haswell.json

A native run with ``MGDATA_DISPATCH=native`` compared with the pinned one shows what the pin prevents (on an
AVX-512 machine 36 of the 56 files differ). Everything runs
serially (one process) so the emulated run needs no worker processes; it takes a few minutes natively and
about 50 times that under qemu (1 h 45 min measured on a busy 2-core machine). Use QEMU >= 8: Debian
bookworm's 7.2 crashes inside numpy's AVX2 loops (the static ``qemu-x86_64`` of trixie's ``qemu-user`` works).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

INPUT_CHAIN = [("corpus", []), ("relabel", []), ("stems", [])]
FLOAT_CHAIN = [
    ("embed", ["--embedder", "logmel", "--artifact", "corpus", "--scenario", "clean"]),
    ("embed", ["--embedder", "musicfeat", "--artifact", "corpus", "--scenario", "clean"]),
    ("tokens", ["--segment-s", "0.5", "--k", "16"]),
    ("decision", ["--segment-s", "0.5", "--k", "16", "--no-render", "yes"]),
    ("classify", ["--task", "quadrant", "--embedder", "logmel"]),
]


def _params() -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["corpus"] |= {"composers": ["bach"], "n_tracks": 24, "max_duration_s": 20.0}
    raw["tokens"] |= {"frames_cache": "", "segment_s": [0.5], "k": [16]}
    raw["decision"] |= {"max_epochs": 2, "trials": 1}
    raw["classify"] |= {"generators": [], "scenarios": [], "trials": 1, "permutations": 50}
    raw["embed"]["artifacts"] = [a for a in raw["embed"]["artifacts"] if a["name"] == "corpus"]
    raw["executor"] = {"backend": "serial", "workers": 1, "ray_address": None, "max_pending": 0}
    return raw


def _chain(work: Path, chain) -> None:
    import os

    from mgdata.pipeline import stage_main

    os.chdir(work)
    for name, args in chain:
        code = stage_main(name, ["--params", "params.yaml", "--no-progress", *args])
        if code != 0:
            sys.exit(f"dispatch_identity: stage {name} {' '.join(args)} failed (exit {code})")


def _digests(root: Path, tops=("data", "metrics", "stage_reports")) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for top in tops
        for p in sorted((root / top).rglob("*"))
        if p.is_file() and ".mgdata.lock" not in p.name
    }


def cmd_inputs(args) -> int:
    work = Path(args.dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / "params.yaml").write_text(yaml.safe_dump(_params(), sort_keys=False))
    _chain(work, INPUT_CHAIN)
    print(f"inputs in {work}: {len(_digests(work))} files")
    return 0


def cmd_run(args) -> int:
    import mgdata.dispatch as dispatch

    src, work = Path(args.inputs).resolve(), Path(args.dir).resolve()
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(src, work)
    before = set(_digests(work))
    _chain(work, FLOAT_CHAIN)
    digests = {k: v for k, v in _digests(work).items() if k not in before or k.startswith("metrics/")}
    doc = {"dispatch": dispatch.effective(), "files": digests}
    Path(args.out).write_text(json.dumps(doc, indent=1, sort_keys=True))
    print(f"{len(digests)} outputs, dispatch {doc['dispatch']} -> {args.out}")
    return 0


def cmd_compare(args) -> int:
    a, b = (json.loads(Path(p).read_text()) for p in (args.a, args.b))
    print(f"a: {a['dispatch']}\nb: {b['dispatch']}")
    fa, fb = a["files"], b["files"]
    diff = sorted(f for f in fa.keys() | fb.keys() if fa.get(f) != fb.get(f))
    same = len(fa.keys() & fb.keys()) - len([f for f in diff if f in fa and f in fb])
    print(f"{same} files identical, {len(diff)} differ")
    for f in diff:
        print(f"  differs: {f}")
    return 1 if diff else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inputs", help="build the small world's audio, stems and labels")
    p.add_argument("dir")
    p.set_defaults(fn=cmd_inputs)
    p = sub.add_parser("run", help="copy the inputs and run embed, tokens, decision and classify on them")
    p.add_argument("inputs")
    p.add_argument("dir")
    p.add_argument("--out", required=True, help="JSON of dispatch levels and sha256 per output file")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("compare", help="exit 1 if two runs wrote different bytes")
    p.add_argument("a")
    p.add_argument("b")
    p.set_defaults(fn=cmd_compare)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
