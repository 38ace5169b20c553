"""Benchmark of mgdata.classify: probe training time per 1k examples, musicfeat speed (x real time),
``predict`` throughput (files/s) beside merely decoding the same files.

Run: ``.venv/bin/python bench/bench_classify.py`` (prints measured figures; nothing is asserted).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def _chords(root: int, minor: bool, bpm: float, dur_s: float, sr: int = 22050) -> np.ndarray:
    t = np.arange(int(sr * 60.0 / bpm)) / sr
    third = 3 if minor else 4
    strike = sum(np.sin(2 * np.pi * 440.0 * 2 ** ((root + i - 69) / 12) * t) for i in (0, third, 7)) * np.exp(-3 * t)
    x = np.tile(strike, int(np.ceil(dur_s * sr / t.size)))[: int(dur_s * sr)]
    return (0.2 * x / np.abs(x).max()).astype(np.float32)


def bench_probe(n: int = 2000, dim: int = 128, epochs: int = 20) -> None:
    import torch

    from mgdata.classify.config import ProbeConfig
    from mgdata.classify.probe import train_probe

    torch.zeros(1)  # torch imported and initialised before timing: the import is not training time
    rng = np.random.default_rng(0)
    y = np.eye(4)[rng.integers(0, 4, n)]
    x = (rng.normal(size=(n, dim)) + y @ rng.normal(size=(4, dim))).astype(np.float32)
    # Warm-up: the first training in a process pays one-off kernel/allocator set-up.
    train_probe(
        x[:64], y[:64], x[:16], y[:16], labels=list("abcd"), multilabel=False, cfg=ProbeConfig(max_epochs=2), seed=0
    )
    for name, hidden in (("slp", []), ("mlp", [256])):
        cfg = ProbeConfig(hidden=hidden, max_epochs=epochs, patience=epochs)  # fixed epoch count
        t0 = time.perf_counter()
        train_probe(x, y, x[:200], y[:200], labels=list("abcd"), multilabel=False, cfg=cfg, seed=0)
        dt = time.perf_counter() - t0
        print(
            f"probe {name}: {dt:.2f} s for {n} examples x {epochs} epochs (dim {dim}) -> "
            f"{dt / (n / 1000) / epochs * 1000:.1f} ms per 1k examples per epoch, "
            f"{dt / (n / 1000):.2f} s per 1k examples for {epochs} epochs"
        )


def bench_musicfeat(dur_s: float = 60.0) -> None:
    from mgdata.embed.base import embed_clip, get_embedder

    emb = get_embedder("musicfeat")
    x = _chords(60, False, 100.0, dur_s)
    embed_clip(emb, x[:44100], 22050, window_s=2.0, hop_s=1.0)  # warm-up (filterbanks, numba)
    t0 = time.perf_counter()
    embed_clip(emb, x, 22050, window_s=2.0, hop_s=1.0)
    dt = time.perf_counter() - t0
    print(f"musicfeat: {dur_s:.0f} s of audio (2 s windows, 1 s hop) in {dt:.2f} s -> {dur_s / dt:.1f}x real time")


def bench_predict(n_files: int = 12, dur_s: float = 10.0) -> None:
    from mgdata.audio import read_audio
    from mgdata.classify.config import ProbeConfig
    from mgdata.classify.predict import embed_file, predict_files
    from mgdata.classify.probe import train_probe
    from mgdata.embed.base import get_embedder

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = []
        for i in range(n_files):
            p = tmp / f"f{i}.flac"
            sf.write(p, np.stack([_chords(55 + i, i % 2 == 1, 80 + 5 * i, dur_s)] * 2, axis=1), 44100)
            files.append(p)
        for name in ("logmel", "musicfeat"):
            emb = get_embedder(name)
            win = {"window_s": 2.0, "hop_s": 1.0}
            x = np.concatenate([embed_file(emb, f, win) for f in files[:4]])
            y = np.eye(2)[[0, 1, 0, 1]]
            train_probe(
                x,
                y,
                x,
                y,
                labels=["major", "minor"],
                multilabel=False,
                cfg=ProbeConfig(hidden=[], max_epochs=2),
                seed=0,
                meta={"embedder": emb.describe(), "windowing": win},
            ).save(tmp / name)
            t0 = time.perf_counter()
            for f in files:
                read_audio(f)
            t_dec = time.perf_counter() - t0
            t0 = time.perf_counter()
            predict_files(tmp / name, files)
            t_pred = time.perf_counter() - t0
            print(
                f"predict ({name}): {n_files} stereo 44.1 kHz FLAC files of {dur_s:.0f} s: "
                f"{n_files / t_pred:.2f} files/s; decoding alone {n_files / t_dec:.1f} files/s"
            )


if __name__ == "__main__":
    import os

    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    bench_probe()
    bench_musicfeat()
    bench_predict()
