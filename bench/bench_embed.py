"""Benchmark: embedding real-time factor per embedder beside the FLAC-decode floor, and streaming RSS.

Target (issue 12): a ``logmel`` build runs at >= 0.25x the throughput of merely decoding
the same FLAC shards, per core. Printed as ``logmel ... of decode (target >= 0.25x): met``.

* Real-time factor (RTF = audio seconds / wall seconds) of merely streaming and
  decoding the input FLAC shards (the floor: no embedder can be faster), and of
  ``build_embeddings`` (decode + resample + embed + write shards + consolidate) for
  ``logmel`` and the ``hf`` path with a tiny random wav2vec2 (32-d, 2 layers: it
  measures the pipeline's overhead, not a real model's cost); the ratio
  embed RTF / decode RTF says how close to the floor each embedder runs.
* Peak RSS of a ``logmel`` build over 1x and 4x the number of input shards, each in
  a fresh process: it should stay flat (the build streams shards; only the
  consolidated matrix and its key table grow, by a few KB per clip).

Single-threaded torch (``--threads``, default 1) and BLAS so figures are per core; the
builds are serial (no executor). Each figure is the best of ``--repeats`` interleaved runs,
in wall time and in CPU time (user + system of this process). The target is judged on CPU
time, the per-core cost, because wall time on a shared machine also counts other
processes' load; both ratios are printed.

Usage: python bench/bench_embed.py [--clips 24] [--seconds 20] [--per-shard 4] [--sample-rate 16000]
                                   [--repeats 3] [--skip-hf] [--skip-rss]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mgdata.audio import decode_audio, encode_flac
from mgdata.config import ShardConfig
from mgdata.provenance import Provenance
from mgdata.store import ArtifactWriter, Sample, encode_json, iter_samples
from mgdata.testing import noise, tone

SR = 16000  # default input rate (the embedder's rate: no resampling); --sample-rate 22050 = the corpus rate
TARGET_LOGMEL = 0.25  # issue 12: logmel build throughput / FLAC decode throughput, per core


def write_input(out: Path, *, clips: int, seconds: float, per_shard: int, sr: int = SR) -> float:
    """A flac+json artifact of ``clips`` distinct synthetic clips at ``sr``; returns total audio seconds."""
    prov = Provenance(
        builder="bench", source="synthetic", source_version="1", licence="CC0", seed=0, params_hash="bench"
    )
    splits = ("train", "validation", "test")
    with ArtifactWriter(
        out, fingerprint=f"bench-{clips}-{seconds}", provenance=prov, shards=ShardConfig(max_samples=per_shard)
    ) as w:
        for i in range(clips):
            x = tone([110 * (1 + i % 5), 165 * (1 + i % 3)], seconds, sr, 0.3) + noise(seconds, sr, 0.01, i)
            meta = {"split": splits[i % 3], "tags": ["synthetic", f"c{i % 4}"]}
            w.write(
                splits[i % 3],
                Sample(f"clip-{i:05d}", {"flac": encode_flac(x, sr), "json": encode_json(meta)}, seconds=seconds),
            )
    return clips * seconds


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t0: tuple[float, float]) -> tuple[float, float]:
    """(wall, cpu) seconds since ``t0``."""
    t1 = _clock()
    return t1[0] - t0[0], t1[1] - t0[1]


def decode_floor(art: Path) -> tuple[float, float]:
    """(wall, cpu) seconds to stream the shards and decode every FLAC."""
    t0 = _clock()
    for raw in iter_samples(art):
        decode_audio(raw["flac"])
    return _since(t0)


def time_build(art: Path, out: Path, embedder: str, model: str | None) -> tuple[float, float]:
    """(wall, cpu) seconds of one serial ``build_embeddings`` into a fresh ``out``."""
    import shutil

    from mgdata.embed.build import build_embeddings
    from mgdata.embed.config import EmbedConfig, HFConfig

    shutil.rmtree(out, ignore_errors=True)
    cfg = EmbedConfig(device="cpu", hf=HFConfig(model=model) if model else HFConfig())
    t0 = _clock()
    build_embeddings(art, out, cfg=cfg, embedder=embedder, scenario="clean")
    return _since(t0)


def best(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """Best wall and best CPU time over repeats (the least disturbed run of each)."""
    return min(r[0] for r in runs), min(r[1] for r in runs)


def peak_rss_mb() -> float:
    """Peak RSS of this process in MB: VmHWM (reset by exec, unlike ru_maxrss, which keeps the
    pre-exec peak of the forking parent on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(art: str, out: str) -> None:
    """Entry point of the RSS subprocess: one logmel build, print peak RSS (MB) as JSON."""
    import logging

    logging.disable(logging.WARNING)
    import librosa  # noqa: F401  (counted in the baseline, like the other imports)

    from mgdata.embed.build import build_embeddings
    from mgdata.embed.config import EmbedConfig

    base = peak_rss_mb()
    build_embeddings(Path(art), Path(out), cfg=EmbedConfig(), embedder="logmel", scenario="clean")
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "after_imports_mb": base}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=24, help="clips in the 1x input artifact")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds per clip")
    ap.add_argument("--per-shard", type=int, default=4, help="clips per input shard")
    ap.add_argument("--sample-rate", type=int, default=SR, help="input FLAC rate (22050 = the corpus: resampled)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timed runs per figure (best is kept)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the hf embedder")
    ap.add_argument("--skip-hf", action="store_true", help="do not time the hf path")
    ap.add_argument("--skip-rss", action="store_true", help="do not measure peak RSS")
    ap.add_argument("--rss-child", nargs=2, metavar=("ARTIFACT", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # per core: BLAS in one thread (CPU time then measures one core's work)
    embedders: list[tuple[str, str | None]] = [("logmel", None)]
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        tmp = Path(tmp)
        art = tmp / "in1x"
        audio_s = write_input(
            art, clips=args.clips, seconds=args.seconds, per_shard=args.per_shard, sr=args.sample_rate
        )
        if not args.skip_hf:
            import torch

            torch.set_num_threads(args.threads)
            from mgdata.embed.testing_models import make_tiny_wav2vec2

            embedders.append(("hf", str(make_tiny_wav2vec2(tmp / "tiny-w2v2"))))
        print(
            f"input: {args.clips} clips x {args.seconds:g} s at {args.sample_rate} Hz = {audio_s / 60:.1f} min "
            f"audio, {-(-args.clips // args.per_shard)} shards; best of {args.repeats} interleaved runs"
        )
        decode_floor(art)  # warm the page cache
        for name, mdl in embedders:
            time_build(art, tmp / f"out-{name}", name, mdl)  # imports, JIT, model load
        runs: dict[str, list[tuple[float, float]]] = {"decode": []} | {name: [] for name, _ in embedders}
        for _ in range(args.repeats):  # interleaved, so a burst of load elsewhere hits every figure alike
            runs["decode"].append(decode_floor(art))
            for name, mdl in embedders:
                runs[name].append(time_build(art, tmp / f"out-{name}", name, mdl))
        dec_wall, dec_cpu = best(runs["decode"])
        print(
            f"decode floor (stream + FLAC decode): RTF {audio_s / dec_wall:8.1f}x wall, {audio_s / dec_cpu:8.1f}x CPU"
        )
        for name, mdl in embedders:
            wall, cpu = best(runs[name])
            label = name if mdl is None else f"{name} (tiny wav2vec2)"
            print(
                f"embed {label:<22}: RTF {audio_s / wall:8.1f}x wall, {audio_s / cpu:8.1f}x CPU  "
                f"= {dec_wall / wall:.3f} (wall) / {dec_cpu / cpu:.3f} (CPU) of the decode floor"
            )
        ratio = dec_cpu / best(runs["logmel"])[1]
        verdict = "met" if ratio >= TARGET_LOGMEL else "NOT met"
        print(
            f"logmel {ratio:.2f}x of decode per core (CPU time; wall {dec_wall / best(runs['logmel'])[0]:.2f}x) "
            f"(target >= {TARGET_LOGMEL:.2f}x): {verdict}"
        )

        if args.skip_rss:
            return
        rss = {}
        for mult in (1, 4):
            big = tmp / f"in{mult}x"
            if mult != 1:
                write_input(
                    big, clips=args.clips * mult, seconds=args.seconds, per_shard=args.per_shard, sr=args.sample_rate
                )
            proc = subprocess.run(
                [sys.executable, __file__, "--rss-child", str(big), str(tmp / f"rss{mult}")],
                check=True,
                capture_output=True,
                text=True,
                env=os.environ | {"TQDM_DISABLE": "1"},
            )
            rss[mult] = json.loads(proc.stdout.strip().splitlines()[-1])
            shards = -(-args.clips * mult // args.per_shard)
            print(
                f"peak RSS logmel build, {mult}x input ({shards} shards): {rss[mult]['peak_rss_mb']:.0f} MB "
                f"(after imports {rss[mult]['after_imports_mb']:.0f} MB)"
            )
        print(f"RSS growth 1x -> 4x shards: {rss[4]['peak_rss_mb'] - rss[1]['peak_rss_mb']:+.0f} MB")


if __name__ == "__main__":
    main()
