"""MTG-Jamendo pipeline at scale: per-track cost and peak RSS of every stage, and the full moodtheme projection.

Builds the real-layout MTG-Jamendo tree of ``tests/test_pipelines_real.py`` (the 44 official split-0 rows of
``tests/fixtures/mtg_jamendo``, an MP3 synthesized at each row's relative PATH) at 1x, 2x and 4x: replica ``r``
of a row gets track id ``+ r * 2,000,000`` and the matching real-style path (``<id % 100>/<id>.mp3``), with the
row's split and tag set kept, so the split proportions and the tag sets are the real ones. Then runs every stage
of ``pipelines/mtg-jamendo/dvc.yaml`` (relabel, jamendo clips, generate@resynth, embed musicnn/logmel x
jamendo/resynth, classify moodtheme/quadrant x musicnn/logmel) as its stage script (``stage_main``) in a temp
folder holding the pipeline's params.yaml with the dataset paths pointed at the tree.

Measurement: each stage is a subprocess of its own small wrapper process (``--run``), which reports the
stage's wall time, CPU time (user + system) and peak RSS (``RUSAGE_CHILDREN`` ``ru_maxrss`` of that wrapper:
the stage process alone, imports included). Every stage runs on ONE core (``executor.backend: serial``, BLAS,
OpenMP and torch at one thread), so the fit ``cost = a + b * tracks`` per stage is per-core work; the machine is
shared, so the CPU time (which other processes' load does not inflate) is the figure fitted and projected, wall
time is reported beside it.

Projection to the full moodtheme split-0 (18,486 tracks, 30 s clips: ``relabel.jamendo.clip_s`` of the
pipeline), stages run one after another as DVC runs them:

* stages with an executor (generate, embed) spread their per-track work over every core: ``a + b * N / cores``;
  the others (relabel, the jamendo clip stage, classify) run in one process today: ``a + b * N`` whatever the
  cores. Fixed costs ``a`` (start-up, imports, model load, metadata) never parallelise.
* Ray: ``nodes x cores_per_node`` cores for the executor stages (shared filesystem holding the MP3s and the
  shards, no GPU, MP3 decode and FLAC encode counted in the stages that do them, scheduling overhead ignored).
* The generate budget: the bench uses ``--generate-fraction`` (default 0.2: at 1x the pipeline's 5 % is below
  one 10 s sample per class); the per-track terms of generate and of embed over its output are scaled by
  0.05 / that fraction in the projection.
* Synthesized tracks are ``--track-s`` long (default 60 s; real moodtheme tracks are ~4 min): the clip stage
  seeks to the middle 30 s (libsndfile), and a 30 s clip decodes in ~0.05 s from a 60 s and from a 240 s MP3
  alike (checked once on this machine), so the track length barely moves its per-track cost.

Usage::

    python bench/bench_jamendo_scale.py                     # 1x, 2x, 4x (44, 88, 176 tracks)
    python bench/bench_jamendo_scale.py --scales 1 2 --json bench/results/jamendo_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "pipelines" / "mtg-jamendo"
FULL_TRACKS = 18_486  # moodtheme split-0: train + validation + test
PIPELINE_GENERATE_FRACTION = 0.05
REPLICA_STRIDE = 2_000_000
#: Stages whose builder runs its per-track work through the executor (parallel over cores / Ray nodes).
PARALLEL = ("generate", "embed")
ONE_THREAD = {
    k: "1"
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "TORCH_NUM_THREADS")
}


def stages(params: dict) -> list[tuple[str, list[str]]]:
    """(name, stage script arguments) of every stage of pipelines/mtg-jamendo/dvc.yaml, in run order."""
    out = [("relabel", ["relabel.py", "--manifest", "none"]), ("jamendo", ["jamendo.py"])]
    for gen in params["generate"]["generators"]:
        out.append(
            (
                f"generate@{gen}",
                ["generate.py", "--generator", gen, "--corpus", "data/jamendo/mix"]
                + ["--labels", "data/relabel/jamendo_quadrants.parquet"],
            )
        )
    for emb in params["embed"]["embedders"]:
        for art in params["embed"]["artifacts"]:
            for scen in params["embed"]["scenario_names"]:
                out.append(
                    (
                        f"embed@{emb}-{art['name']}",
                        ["embed.py", "--embedder", emb, "--artifact", art["name"]]
                        + ["--artifact-dir", art["path"], "--scenario", scen],
                    )
                )
    for task in params["classify"]["tasks"]:
        for emb in params["classify"]["embedders"]:
            out.append((f"classify@{task}-{emb}", ["classify.py", "--task", task, "--embedder", emb]))
    return out


# ------------------------------------------------------------------------------------------------ the tree


def _replicate_tsv(src: Path, dst: Path, scale: int) -> int:
    """``src`` rows ``scale`` times; replica r > 0 gets id + r * stride and its real-style PATH. Returns rows."""
    header, *rows = [line for line in src.read_text().splitlines() if line.strip()]
    out = [header]
    for r in range(scale):
        for line in rows:
            f = line.split("\t")
            if r:
                n = int(f[0].removeprefix("track_")) + r * REPLICA_STRIDE
                f[0], f[3] = f"track_{n:07d}", f"{n % 100:02d}/{n}.mp3"
            out.append("\t".join(f))
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(out) + "\n")
    return len(out) - 1


def build_base_audio(cache: Path, track_s: float) -> dict[str, Path]:
    """One synthesized MP3 per fixture row (the test's ``_jamendo_audio``), keyed by track id."""
    import soundfile as sf

    sys.path.insert(0, str(ROOT / "tests"))
    from test_pipelines_real import FIXTURE, _jamendo_audio

    from mgdata.sources.jamendo import read_split

    out = {}
    for i, track in enumerate(read_split(FIXTURE)):
        path = cache / f"{track.track_id}.mp3"
        sf.write(path, _jamendo_audio(track.tag_names, i, dur_s=track_s), 44100, format="MP3")
        out[track.track_id] = path
    return out


def build_tree(root: Path, scale: int, base_audio: dict[str, Path]) -> tuple[Path, Path, int]:
    """metadata_dir and audio_root of the fixture tree at ``scale`` x the rows; every MP3 present."""
    from test_pipelines_real import FIXTURE

    from mgdata.sources.jamendo import read_split

    meta, audio = root / "data", root / "audio"
    for src in sorted((FIXTURE / "splits").rglob("*.tsv")):
        _replicate_tsv(src, meta / src.relative_to(FIXTURE), scale)
    _replicate_tsv(FIXTURE / "autotagging_moodtheme.tsv", meta / "autotagging_moodtheme.tsv", scale)
    tracks = read_split(meta)
    for track in tracks:
        n = int(track.track_id.removeprefix("track_")) % REPLICA_STRIDE
        path = audio / track.path
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base_audio[f"track_{n:07d}"], path)  # its own file: decoded from disk like a real one
    return meta, audio, len(tracks)


# ------------------------------------------------------------------------------------------------ measuring


def run_measured(cmd: list[str], cwd: str) -> dict:
    """``--run``: run the stage, return its wall s, CPU s and peak RSS (this wrapper's only child)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **ONE_THREAD}, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "returncode": proc.returncode,
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "rss_mb": ru.ru_maxrss / 1024.0,  # Linux: KiB
        "tail": (proc.stdout + proc.stderr)[-1500:] if proc.returncode else "",
    }


def measure(folder: Path, args: list[str]) -> dict:
    cmd = [sys.executable, str(ROOT / "stages" / args[0]), *args[1:], "--no-progress"]
    res = subprocess.run(
        [sys.executable, __file__, "--run", json.dumps(cmd), "--cwd", str(folder)], capture_output=True, text=True
    )
    if res.returncode:
        raise SystemExit(f"wrapper failed: {res.stderr[-1500:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if out["returncode"]:
        raise SystemExit(f"{' '.join(args)} failed:\n{out['tail']}")
    return out


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares ``y = a + b x``."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def project(fits: dict, cores: int, gen_scale: float) -> dict[str, float]:
    """Projected seconds per stage for FULL_TRACKS on ``cores`` cores (see the module docstring)."""
    out = {}
    for name, f in fits.items():
        a, b = f["cpu_a_s"], f["cpu_b_s_per_track"]
        if name.startswith("generate@") or name.endswith("-resynth"):
            b *= gen_scale
        par = name.split("@")[0] in PARALLEL
        out[name] = max(a, 0.0) + b * FULL_TRACKS / (cores if par else 1)
    return out


def _hms(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.1f} min"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--track-s", type=float, default=60.0, help="length of each synthesized MP3")
    ap.add_argument("--generate-fraction", type=float, default=0.2)
    ap.add_argument("--cores", type=int, default=2, help="cores of the single-machine projection")
    ap.add_argument("--cores-per-node", type=int, default=2, help="cores of one Ray node")
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--only", nargs="*", default=None, help="stage names to measure (prefix match)")
    ap.add_argument("--json", type=Path, default=None, help="write the result JSON here")
    ap.add_argument("--run", help=argparse.SUPPRESS)
    ap.add_argument("--cwd", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run:
        print(json.dumps(run_measured(json.loads(args.run), args.cwd)))
        return 0

    t_start = time.perf_counter()
    load0 = os.getloadavg()
    base_params = yaml.safe_load((PIPELINE / "params.yaml").read_text())
    rows: dict[str, dict[int, dict]] = {}
    n_tracks: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench_jamendo_scale-") as tmp:
        cache = Path(tmp) / "mp3"
        cache.mkdir()
        base_audio = build_base_audio(cache, args.track_s)
        print(f"synthesized {len(base_audio)} MP3s x {args.track_s:g} s ({time.perf_counter() - t_start:.0f} s)")
        for scale in args.scales:
            work = Path(tmp) / f"x{scale}"
            meta, audio, n = build_tree(work / "mtg-jamendo", scale, base_audio)
            n_tracks[scale] = n
            folder = work / "pipeline"
            folder.mkdir()
            params = json.loads(json.dumps(base_params))
            params["relabel"]["jamendo"].update(metadata_dir=str(meta), audio_root=str(audio))
            params["generate"]["fraction"] = args.generate_fraction
            params["executor"] = {"backend": "serial", "workers": 1}
            (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            for name, stage_args in stages(params):
                if args.only is not None and not any(name.startswith(p) for p in args.only):
                    continue
                r = measure(folder, stage_args)
                rows.setdefault(name, {})[scale] = {k: r[k] for k in ("wall_s", "cpu_s", "rss_mb")}
                print(
                    f"  x{scale} ({n} tracks) {name:<28} wall {r['wall_s']:7.1f} s  cpu {r['cpu_s']:7.1f} s  "
                    f"peak RSS {r['rss_mb']:6.0f} MB  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
            shutil.rmtree(work)

    xs = [n_tracks[s] for s in args.scales]
    gen_scale = PIPELINE_GENERATE_FRACTION / args.generate_fraction
    fits = {}
    for name, by_scale in rows.items():
        a, b = fit(xs, [by_scale[s]["cpu_s"] for s in args.scales])
        wa, wb = fit(xs, [by_scale[s]["wall_s"] for s in args.scales])
        ra, rb = fit(xs, [by_scale[s]["rss_mb"] for s in args.scales])
        fits[name] = {
            "cpu_a_s": a,
            "cpu_b_s_per_track": b,
            "wall_a_s": wa,
            "wall_b_s_per_track": wb,
            "rss_a_mb": ra,
            "rss_b_mb_per_track": rb,
            # generate holds its planned source clips in memory: its growth follows the budget (scaled to 5 %)
            "rss_full_mb": ra + rb * FULL_TRACKS * (gen_scale if name.startswith("generate@") else 1.0),
            "parallel": name.split("@")[0] in PARALLEL,
        }
    single = project(fits, args.cores, gen_scale)
    one_core = project(fits, 1, gen_scale)
    ray = {n: project(fits, n * args.cores_per_node, gen_scale) for n in args.nodes}

    hdr = " ".join(f"{'x' + str(s) + ' cpu s':>10}" for s in args.scales)
    hdr += " " + " ".join(f"{'x' + str(s) + ' MB':>8}" for s in args.scales)
    print(f"\nper stage ({', '.join(f'{n_tracks[s]}' for s in args.scales)} tracks; one core; CPU s, peak RSS MB)")
    print(f"{'stage':<28} {hdr} {'a (s)':>7} {'b (s/track)':>11} {'par':>4} {'full RSS MB':>11}")
    for name, f in fits.items():
        cells = " ".join(f"{rows[name][s]['cpu_s']:>10.1f}" for s in args.scales)
        cells += " " + " ".join(f"{rows[name][s]['rss_mb']:>8.0f}" for s in args.scales)
        print(
            f"{name:<28} {cells} {f['cpu_a_s']:>7.1f} {f['cpu_b_s_per_track']:>11.4f} "
            f"{'yes' if f['parallel'] else 'no':>4} {f['rss_full_mb']:>11.0f}"
        )
    print(f"\nprojection: {FULL_TRACKS} tracks (moodtheme split-0), 30 s clips, stages in sequence")
    print(f"  1 core:  {_hms(sum(one_core.values()))}")
    print(f"  {args.cores} cores: {_hms(sum(single.values()))}")
    for n, proj in ray.items():
        serial_part = sum(v for k, v in proj.items() if not fits[k]["parallel"])
        print(
            f"  Ray {n:>3} nodes x {args.cores_per_node} cores: {_hms(sum(proj.values()))} "
            f"(of which serial stages {_hms(serial_part)})"
        )
    runtime = time.perf_counter() - t_start
    result = {
        "bench": "jamendo_scale",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_start": load0,
            "load_end": os.getloadavg(),
        },
        "config": {
            "scales": args.scales,
            "tracks": n_tracks,
            "track_s": args.track_s,
            "clip_s": base_params["relabel"]["jamendo"]["clip_s"],
            "generate_fraction": args.generate_fraction,
            "one_core_per_stage": True,
        },
        "measured": rows,
        "fits": fits,
        "projection": {
            "tracks": FULL_TRACKS,
            "one_core_s": one_core,
            f"{args.cores}_cores_s": single,
            "ray_cores_per_node": args.cores_per_node,
            "ray_s": {str(n): p for n, p in ray.items()},
            "totals_s": {
                "1_core": sum(one_core.values()),
                f"{args.cores}_cores": sum(single.values()),
                **{f"ray_{n}_nodes": sum(p.values()) for n, p in ray.items()},
            },
        },
        "runtime_s": runtime,
    }
    print(f"\nbench runtime {_hms(runtime)}; load {load0[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    else:
        print(json.dumps(result["projection"]["totals_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
