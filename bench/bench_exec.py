"""Benchmark: speedup of the process executor (2 workers) over serial, for embedding and corpus rendering.

* embed: ``build_embeddings`` (logmel, clean scenario) of a synthetic flac+json
  artifact, serial vs ``process`` with 2 workers; the two outputs are also checked
  to be byte-identical (sha256 of every file).
* render: chorale-like synthetic tracks (4 parts of random diatonic notes, GM
  programs of the corpus defaults) rendered by ``mgdata.corpus.render.SoundFontRenderer``
  and FLAC-encoded (mix + stems: the corpus stage's per-track work), in chunks of
  tracks through ``Executor.imap``, serial vs 2 workers; results compared by sha256.

Both figures include the pool's start-up (fork) cost, not one-time warm-up (librosa's
first call, SoundFont loading), which runs untimed first. The best of ``--repeats`` runs
of each configuration is used, since other processes share the 2 cores. Target:
speedup >= 1.7x on 2 cores.

Besides wall time, CPU seconds of the parent and of the worker processes are printed:
on a machine shared with other jobs the wall-clock speedup is capped by the share of the
2 cores the benchmark gets, while the CPU split shows what the executor itself costs
(``cpu-bound speedup`` = serial CPU / max(parent CPU, total CPU / 2): the wall speedup an
otherwise idle 2-core machine allows).

Usage: python bench/bench_exec.py [--clips 600] [--seconds 40] [--tracks 48] [--track-s 30] [--repeats 2]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from mgdata.audio import encode_flac
from mgdata.config import ShardConfig
from mgdata.embed.build import build_embeddings
from mgdata.embed.config import EmbedConfig
from mgdata.exec import ExecConfig, chunked, get_executor
from mgdata.provenance import Provenance
from mgdata.store import ArtifactWriter, Sample, encode_json

SR = 16000
TARGET = 1.7
SPLITS = ("train", "validation", "test")


def write_input(out: Path, *, clips: int, seconds: float) -> float:
    """A flac+json artifact of distinct synthetic clips (tones + noise); returns its audio seconds."""
    prov = Provenance(
        builder="bench", source="synthetic", source_version="1", licence="CC0", seed=0, params_hash="bench"
    )
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    with ArtifactWriter(out, fingerprint="bench-exec", provenance=prov, shards=ShardConfig(max_samples=32)) as w:
        for i in range(clips):
            f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
            x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(t.size)
            split = SPLITS[i % 3]
            meta = {"split": split, "track_id": f"clip-{i:04d}", "mood_tags": ["calm"], "style": "bench"}
            w.write(
                split,
                Sample(
                    f"clip-{i:04d}",
                    {"flac": encode_flac(x.astype(np.float32), SR), "json": encode_json(meta)},
                    seconds=seconds,
                ),
            )
    return clips * seconds


class Timer:
    """Wall seconds and CPU seconds of this process and of its (finished) child processes."""

    def __enter__(self):
        self.c0, self.p0, self.t0 = _children_cpu(), time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self.parent = time.process_time() - self.p0
        self.children = _children_cpu() - self.c0


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def report(what: str, timers: dict[str, Timer], same: bool) -> None:
    s, p = timers["serial"], timers["process2"]
    wall = s.wall / p.wall
    serial_cpu = s.parent + s.children
    cpu_bound = serial_cpu / max(p.parent, (p.parent + p.children) / 2)
    print(
        f"{what}: serial {s.wall:.1f} s wall ({serial_cpu:.1f} s CPU); process x2 {p.wall:.1f} s wall "
        f"(parent {p.parent:.1f} s + workers {p.children:.1f} s CPU); identical outputs: {same}"
    )
    print(
        f"  speedup measured {wall:.2f}x, cpu-bound {cpu_bound:.2f}x; target >= {TARGET}x: "
        f"{'met' if wall >= TARGET else 'NOT met'} (measured), {'met' if cpu_bound >= TARGET else 'NOT met'} "
        "(cpu-bound)"
    )


def digests(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir()) if p.is_file()}


def bench_embed(tmp: Path, *, clips: int, seconds: float, repeats: int) -> tuple[dict[str, Timer], bool]:
    src = tmp / "input"
    write_input(src, clips=clips, seconds=seconds)
    warm = tmp / "warm"  # librosa's first call compiles/caches for ~10 s: not the executor's cost
    write_input(warm, clips=2, seconds=2.0)
    build_embeddings(warm, tmp / "warm-out", cfg=EmbedConfig(), embedder="logmel")
    timers: dict[str, Timer] = {}
    outs: dict[str, dict[str, str]] = {}
    for name, exe in [("serial", ExecConfig(backend="serial")), ("process2", ExecConfig(workers=2))]:
        for r in range(repeats):
            out = tmp / f"emb-{name}-{r}"
            with Timer() as timer:
                build_embeddings(src, out, cfg=EmbedConfig(), embedder="logmel", executor=exe)
            if name not in timers or timer.wall < timers[name].wall:
                timers[name] = timer
            outs[name] = digests(out)
            shutil.rmtree(out)
    return timers, outs["serial"] == outs["process2"]


# --------------------------------------------------------------------------- render

_RENDERER = None
TRACK_SR = 22050
PROGRAMS = (52, 52, 52, 52)  # choir aahs for every voice
RANGES = ((60, 79), (53, 74), (48, 69), (40, 62))  # soprano, alto, tenor, bass MIDI ranges


def _renderer():
    global _RENDERER
    if _RENDERER is None:
        from mgdata.corpus.render import SoundFontRenderer

        _RENDERER = SoundFontRenderer(None, TRACK_SR)
    return _RENDERER


def _track_notes(index: int, track_s: float) -> list[list[tuple[float, float, int]]]:
    """Four parts of random diatonic quarter/half notes at 90 bpm (seeded by the track index)."""
    rng = np.random.default_rng(1000 + index)
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    parts = []
    for lo, hi in RANGES:
        notes, t = [], 0.0
        while t < track_s:
            dur = float(rng.choice([0.667, 1.333]))
            pitch = int(lo + scale[rng.integers(0, 7)] + 12 * rng.integers(0, max(1, (hi - lo) // 12)))
            notes.append((t, t + dur, min(pitch, hi)))
            t += dur
        parts.append(notes)
    return parts


def render_chunk(task: tuple[list[int], float]) -> list[str]:
    """Render + FLAC-encode tracks (mix and stems); returns their sha256 (the work a corpus worker does)."""
    indices, track_s = task
    out = []
    for i in indices:
        rendered = _renderer().render_track(_track_notes(i, track_s), PROGRAMS, int(track_s * TRACK_SR))
        h = hashlib.sha256(encode_flac(rendered.mix, TRACK_SR))
        for stem in rendered.stems:
            h.update(encode_flac(stem, TRACK_SR))
        out.append(h.hexdigest())
    return out


def bench_render(*, tracks: int, track_s: float, repeats: int) -> tuple[dict[str, Timer], bool]:
    tasks = [(chunk, track_s) for chunk in chunked(range(tracks), 4)]
    render_chunk(([tracks], 2.0))  # loads the SoundFont once in the parent (inherited by forked workers)
    timers: dict[str, Timer] = {}
    results: dict[str, list] = {}
    for name, exe in [("serial", ExecConfig(backend="serial")), ("process2", ExecConfig(workers=2))]:
        for _ in range(repeats):
            with Timer() as timer, get_executor(exe) as ex:
                results[name] = list(ex.imap(render_chunk, tasks))
            if name not in timers or timer.wall < timers[name].wall:
                timers[name] = timer
    return timers, results["serial"] == results["process2"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=600, help="embed: synthetic clips")
    ap.add_argument("--seconds", type=float, default=40.0, help="embed: seconds per clip")
    ap.add_argument("--tracks", type=int, default=48, help="render: synthetic 4-part tracks")
    ap.add_argument("--track-s", type=float, default=30.0, help="render: seconds per track")
    ap.add_argument("--repeats", type=int, default=2, help="runs per configuration (best wall time is used)")
    ap.add_argument("--skip", choices=["embed", "render"], default=None, help="leave one benchmark out")
    args = ap.parse_args()
    print(f"cpus: {os.cpu_count()}  load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.skip != "embed":
        with tempfile.TemporaryDirectory(prefix="bench_exec_") as tmp:
            timers, same = bench_embed(Path(tmp), clips=args.clips, seconds=args.seconds, repeats=args.repeats)
        report(f"embed logmel {args.clips} clips x {args.seconds:g} s", timers, same)
    if args.skip != "render":
        timers, same = bench_render(tracks=args.tracks, track_s=args.track_s, repeats=args.repeats)
        report(f"render {args.tracks} tracks x {args.track_s:g} s x 4 stems + FLAC", timers, same)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
