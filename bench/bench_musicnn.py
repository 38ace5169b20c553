"""Benchmark: MusiCNN/VGG inference speed per core, beside the log-mel front end alone, and peak RSS.

* Real-time factor per core (x RT = audio seconds / CPU seconds of this process, torch
  and BLAS on one thread) of the musicnn front end alone (librosa mel, float16 log,
  3 s patches) and of front end + network for each of the four ported models; the ratio
  model / front end says how much the network costs over the spectrogram.
* Weight loading: reading a checkpoint from the installed wheel with every tensor's
  crc32c checked, and building the PyTorch model.
* Peak RSS of a fresh process that loads one model and tags the clip (batches of
  ``mgdata.musicnn.tagger.BATCH_PATCHES`` patches), beside its RSS once torch, librosa
  and the weights are loaded.

Each speed figure is the best of ``--repeats`` runs; CPU time (user + system) is the
per-core cost, wall time is printed beside it (a shared machine inflates wall time).

Usage: python bench/bench_musicnn.py [--seconds 30] [--repeats 2] [--threads 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from _fresh import peak_rss_mb, run_fresh  # bench/ is on sys.path when run as a script

MODELS = ("msd-musicnn", "mtt-musicnn", "msd-vgg", "mtt-vgg")


def _hwm_mb() -> float:
    # VmHWM belongs to this process's address space, which exec replaces; ru_maxrss (peak_rss_mb)
    # survives exec, so a child spawned from a parent holding torch would report the parent's peak.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return peak_rss_mb()


def _pin_dispatch() -> None:
    # mgdata pins the SIMD dispatch when imported; it must come before numpy/torch load.
    import mgdata  # noqa: F401


def _clip(seconds: float):
    import numpy as np

    # Quiet enough that the original's float16 log does not saturate; speed does not depend on content.
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    x = 0.03 * np.sin(2 * np.pi * 220.0 * t) * np.exp(-(t % 0.5) * 4.0) + 0.005 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def _timed(fn, repeats: int) -> tuple[float, float]:
    """Best (cpu seconds, wall seconds) of ``repeats`` calls."""
    best_cpu = best_wall = float("inf")
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return best_cpu, best_wall


def _rss_child(name: str, seconds: float, threads: int, queue) -> None:
    _pin_dispatch()  # a spawned process
    import torch

    torch.set_num_threads(threads)
    from mgdata.musicnn.model import load_model
    from mgdata.musicnn.tagger import extract

    model, _ = load_model(name)
    loaded = _hwm_mb()  # torch + librosa + weights: the floor under the inference figure
    extract(model, _clip(seconds))
    queue.put((loaded, _hwm_mb()))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per figure (and JSON with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="clip length (default 30 s = 10 patches)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: per-core figures)")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    # Memory first, while this process holds no numpy/torch: each child starts small.
    rss = {} if args.skip_rss else {n: run_fresh(_rss_child, n, args.seconds, args.threads) for n in MODELS}
    _pin_dispatch()
    import torch

    torch.set_num_threads(args.threads)
    from mgdata.musicnn.frontend import log_mel, patches
    from mgdata.musicnn.model import load_model
    from mgdata.musicnn.tagger import extract

    audio = _clip(args.seconds)
    log_mel(audio[:16000])  # import librosa and warm its caches outside the timing
    fe_cpu, fe_wall = _timed(lambda: patches(log_mel(audio)), 5 * args.repeats)  # cheap: more repeats
    fe_xrt = args.seconds / fe_cpu
    print(f"front end (log-mel + patches): {fe_xrt:8.1f} x RT per core (cpu {fe_cpu:.3f} s, wall {fe_wall:.3f} s)")
    result: dict = {"seconds": args.seconds, "threads": args.threads, "frontend_xrt": fe_xrt, "models": {}}
    for name in MODELS:
        t0 = time.perf_counter()
        model, _ = load_model(name)
        load_s = time.perf_counter() - t0
        cpu, wall = _timed(lambda m=model: extract(m, audio), args.repeats)
        xrt = args.seconds / cpu
        row = {"xrt": xrt, "cpu_s": cpu, "wall_s": wall, "of_frontend": xrt / fe_xrt, "load_s": load_s}
        if name in rss:
            row["rss_loaded_mb"], row["peak_rss_mb"] = rss[name]
        result["models"][name] = row
        mem = (
            f", peak RSS {row['peak_rss_mb']:.0f} MB ({row['rss_loaded_mb']:.0f} MB once loaded)"
            if "peak_rss_mb" in row
            else ""
        )
        print(
            f"{name:12s} front end + model: {xrt:6.1f} x RT per core ({row['of_frontend']:.3f} of the front end; "
            f"cpu {cpu:.2f} s, wall {wall:.2f} s), weights {load_s:.2f} s{mem}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
