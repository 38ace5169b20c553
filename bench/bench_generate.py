"""Benchmark: generated audio on one CPU core.

Prints:
- the real-time factor of ``resynth`` (seconds of audio per second of compute,
  analysis + synthesis, target >= 20x) on chorale-like 4-voice clips of
  ``--clip-s`` seconds at 16 kHz;
- the end-to-end builder throughput (draw, decode, resynthesise, FLAC, shards)
  on a synthetic corpus;
- samples/s of the tiny random MusicGen (``make_tiny_musicgen``) on CPU, text
  mode, when the MusicGen generator is installed (skipped otherwise);
- peak RSS.

The process is pinned to one core and BLAS/OpenMP/torch use one thread.

Usage: python bench/bench_generate.py [--clips 20] [--clip-s 4] [--musicgen-samples 8] [--json]
"""

from __future__ import annotations

import os

# One core: set before numpy/torch import their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402


def _pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def _chorale_clip(duration_s: float, sr: int, seed: int) -> np.ndarray:
    """Four harmonic voices changing note every 0.5 s (a stand-in for a rendered chorale)."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sr)
    out = np.zeros(n)
    for base in (110.0, 165.0, 220.0, 330.0):
        notes = base * 2 ** (rng.integers(-3, 4, size=int(np.ceil(duration_s * 2))) / 12)
        f = np.repeat(notes, int(0.5 * sr))[:n]
        phase = 2 * np.pi * np.cumsum(f) / sr
        out += sum(np.sin(k * phase) / k**1.5 for k in range(1, 8))
    env = 0.7 + 0.3 * np.sin(2 * np.pi * 0.5 * np.arange(n) / sr)
    return (0.25 * out * env / np.max(np.abs(out))).astype(np.float32)


def bench_resynth(clips: int, clip_s: float) -> dict:
    from mgdata.generate.config import ResynthConfig
    from mgdata.generate.resynth import resynthesize

    cfg = ResynthConfig()
    xs = [_chorale_clip(clip_s, cfg.sample_rate, i) for i in range(clips)]
    resynthesize(xs[0], cfg.sample_rate, cfg, seed=0)  # warm-up (imports, FFT plans)
    t0 = time.perf_counter()
    for i, x in enumerate(xs):
        resynthesize(x, cfg.sample_rate, cfg, seed=i)
    dt = time.perf_counter() - t0
    return {
        "clips": clips,
        "clip_s": clip_s,
        "seconds_audio": clips * clip_s,
        "seconds_wall": round(dt, 3),
        "rtf": round(clips * clip_s / dt, 1),
    }


def bench_build(tmp: Path, clip_s: float) -> dict:
    from mgdata.config import ShardConfig
    from mgdata.generate.build import build_generated
    from mgdata.generate.config import GenerateConfig
    from mgdata.store import decode_json, iter_samples
    from mgdata.testing import make_corpus_artifact

    root = make_corpus_artifact(tmp / "corpus", n_tracks=24, n_stems=3, duration_s=30.0, sr=22050)
    ids = sorted(decode_json(s["json"])["track_id"] for s in iter_samples(root / "mix"))
    quads = ["activated_pleasant", "deactivated_pleasant", "activated_unpleasant", "deactivated_unpleasant"]
    labels = pl.DataFrame({"track_id": ids, "quadrant": [quads[i % 4] for i in range(len(ids))]})
    cfg = GenerateConfig(fraction=0.25, sample_s=clip_s)
    t0 = time.perf_counter()
    result = build_generated(root / "mix", labels, tmp / "out", cfg=cfg, shards=ShardConfig())
    dt = time.perf_counter() - t0
    return {
        "samples": result.n_samples,
        "seconds_audio": result.seconds,
        "seconds_wall": round(dt, 3),
        "rtf": round(result.seconds / dt, 1),
    }


def bench_musicgen(tmp: Path, n: int) -> dict:
    try:
        from mgdata.generate.musicgen import MusicgenGenerator
        from mgdata.generate.testing_models import make_tiny_musicgen
    except ImportError as exc:  # the MusicGen helper module is optional here
        return {"skipped": f"MusicGen generator not available ({exc})"}
    import torch

    from mgdata.generate.base import GenRequest
    from mgdata.generate.config import MusicgenConfig

    torch.set_num_threads(1)
    path = make_tiny_musicgen(tmp / "tiny_musicgen")
    gen = MusicgenGenerator(MusicgenConfig(model=str(path), device="cpu", batch_size=4))
    reqs = [GenRequest(f"k{i}", "activated_pleasant", i, 1.0) for i in range(n)]
    gen.generate(reqs[:1])  # warm-up
    t0 = time.perf_counter()
    out = gen.generate(reqs)
    dt = time.perf_counter() - t0
    return {
        "samples": len(out),
        "sample_s": 1.0,
        "seconds_wall": round(dt, 3),
        "samples_per_s": round(len(out) / dt, 2),
        "rtf": round(len(out) / dt, 2),
        "note": "tiny random model: measures the pipeline overhead, not real MusicGen speed",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=20, help="resynth clips to time")
    ap.add_argument("--clip-s", type=float, default=4.0, help="clip length in seconds (generate.sample_s)")
    ap.add_argument("--musicgen-samples", type=int, default=8, help="tiny MusicGen samples (0 skips)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    _pin_one_core()
    res = {"resynth": bench_resynth(args.clips, args.clip_s)}
    with tempfile.TemporaryDirectory() as tmp:
        res["build_resynth"] = bench_build(Path(tmp), args.clip_s)
        if args.musicgen_samples > 0:
            res["musicgen_tiny"] = bench_musicgen(Path(tmp), args.musicgen_samples)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.json:
        print(json.dumps(res, sort_keys=True))
        return
    r = res["resynth"]
    print(
        f"resynth: {r['seconds_audio']:.0f} s audio in {r['seconds_wall']:.2f} s on 1 core -> "
        f"{r['rtf']}x real time (target >= 20x)"
    )
    b = res["build_resynth"]
    print(
        f"build (resynth, end to end): {b['samples']} samples, {b['seconds_audio']:.0f} s in "
        f"{b['seconds_wall']:.2f} s -> {b['rtf']}x real time"
    )
    m = res.get("musicgen_tiny")
    if m:
        print(
            "musicgen (tiny, CPU): "
            + (
                m["skipped"]
                if "skipped" in m
                else f"{m['samples']} x 1 s in {m['seconds_wall']:.2f} s -> {m['samples_per_s']} samples/s"
            )
        )
    print(f"peak RSS: {res['peak_rss_mb']} MB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
