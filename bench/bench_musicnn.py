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
* The ``musicnn`` embedder through the embed worker path (``mgdata.embed.worker.embed_chunk``:
  FLAC decode, resampling 22.05 -> 16 kHz, patching, network, records) on ``--clips`` 4 s
  clips (``embed.clip_s``), with ``patch_hop_s`` 3 (the default: one centred patch per clip)
  and 1 (two patches); the default pipeline embeds ~12,000 s of audio this way (issue 18
  asks >= 60x real time per core).
* The ``musicnn`` token encoder (frame-level ``cnn3`` features, non-overlapping patches)
  on the clip, resampled from 22.05 kHz as the token builder does.

Each speed figure is the best of ``--repeats`` runs; CPU time (user + system) is the
per-core cost, wall time is printed beside it (a shared machine inflates wall time).

Usage: python bench/bench_musicnn.py [--seconds 30] [--clips 100] [--repeats 2] [--threads 1] [--json OUT]
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


def _embed_items(n: int, seconds: float = 4.0, sr: int = 22050) -> list[tuple[str, str, bytes, bytes]]:
    """``n`` distinct 4 s clips as the embed worker receives them: (key, split, flac, json)."""
    import numpy as np

    from mgdata.audio import encode_flac
    from mgdata.store import encode_json

    t = np.arange(int(seconds * sr)) / sr
    items = []
    for i in range(n):
        x = 0.05 * np.sin(2 * np.pi * (110.0 * 2 ** (i % 24 / 12)) * t) * np.exp(-(t % 0.5) * 4.0)
        meta = {"sample_rate": sr, "split": "train", "label": "bench", "tags": ["bench"]}
        items.append((f"clip{i:04d}", "train", encode_flac(x.astype(np.float32), sr), encode_json(meta)))
    return items


def _bench_embedder(clips: int, repeats: int) -> dict:
    """x RT per core of the ``musicnn`` embedder through ``embed_chunk`` on 4 s clips, per ``patch_hop_s``."""
    from mgdata.embed.config import EmbedConfig, MusicnnConfig
    from mgdata.embed.worker import EmbedJob, drop_state, embed_chunk

    items = _embed_items(clips)
    out = {}
    for hop in (3.0, 1.0):
        cfg = EmbedConfig(embedders=["musicnn"], clip_s=4.0, musicnn=MusicnnConfig(patch_hop_s=hop))
        job = EmbedJob(f"bench-{hop}", "musicnn", cfg, "clean", "bench", "0", {}, {})
        embed_chunk((job, items[:1]))  # load the weights and warm up outside the timing
        cpu, wall = _timed(lambda j=job: embed_chunk((j, items)), repeats)
        drop_state(job.fp)
        xrt = clips * 4.0 / cpu
        out[f"patch_hop_s={hop:g}"] = {"xrt": xrt, "cpu_s": cpu, "wall_s": wall}
        print(
            f"musicnn embedder (embed_chunk, {clips} x 4 s clips, patch_hop_s {hop:g}): "
            f"{xrt:6.1f} x RT per core (cpu {cpu:.2f} s, wall {wall:.2f} s)"
        )
    return out


def _bench_token_encoder(seconds: float, repeats: int) -> dict:
    """x RT per core of the ``musicnn`` token encoder (22.05 kHz input, resampled as the token builder does)."""
    import numpy as np

    from mgdata.audio import resample
    from mgdata.tokens.config import TokensConfig
    from mgdata.tokens.frames import encode_audio, make_encoder

    enc = make_encoder(TokensConfig(encoder="musicnn"))
    x = resample(_clip(seconds), 16000, 22050).astype(np.float32)
    encode_audio(enc, x[:22050], 22050, where="warm-up")
    cpu, wall = _timed(lambda: encode_audio(enc, x, 22050, where="bench"), repeats)
    xrt = seconds / cpu
    print(
        f"musicnn token encoder ({enc.layer}, {seconds:g} s stem): {xrt:6.1f} x RT per core "
        f"(cpu {cpu:.2f} s, wall {wall:.2f} s)"
    )
    return {"layer": enc.layer, "xrt": xrt, "cpu_s": cpu, "wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per figure (and JSON with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="clip length (default 30 s = 10 patches)")
    ap.add_argument("--clips", type=int, default=100, help="4 s clips for the embedder figure (default 100)")
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
    result["embedder"] = _bench_embedder(args.clips, args.repeats)
    result["token_encoder"] = _bench_token_encoder(args.seconds, args.repeats)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
