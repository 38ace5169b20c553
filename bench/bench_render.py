"""Benchmark: chorale-corpus rendering speed on one core (tinysoundfont + TimGM6mb.sf2).

Parses N real music21 chorales (timed separately: parsing is the slow part of the
stage), then renders every part as a stem and sums the mix, and prints:

* render real-time factor = mix audio seconds / wall seconds (target >= 100x),
  and the same per stem-second (every part is rendered separately);
* FLAC encoding of mix + stems (what the stage does next), as a real-time factor;
* end-to-end seconds per track (parse + render + encode);
* peak RSS of the process.

The process is pinned to one CPU (os.sched_setaffinity) so the figure is per core.

Usage: python bench/bench_render.py [--tracks 30] [--max-duration-s 30] [--sample-rate 22050]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from mgdata.audio import encode_flac
from mgdata.corpus.build import plan_corpus
from mgdata.corpus.config import CorpusConfig
from mgdata.corpus.render import SoundFontRenderer, renderer_version
from mgdata.report import StageReport


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=30, help="chorales to render")
    ap.add_argument("--max-duration-s", type=float, default=30.0, help="rendering length cap per track (s)")
    ap.add_argument("--sample-rate", type=int, default=22050, help="output rate (Hz)")
    ap.add_argument("--composers", nargs="+", default=["bach"], help="music21 corpus folders")
    ap.add_argument("--repeats", type=int, default=3, help="render passes (best one is reported)")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    cfg = CorpusConfig(
        composers=args.composers, n_tracks=args.tracks, max_duration_s=args.max_duration_s, sample_rate=args.sample_rate
    )
    t0 = time.perf_counter()
    plans = plan_corpus(cfg, StageReport("bench"), progress=False)
    t_parse = time.perf_counter() - t0
    renderer = SoundFontRenderer(cfg.soundfont or None, cfg.sample_rate)

    audio_s = sum(p.duration_s for p in plans)
    stem_s = sum(p.duration_s * len(p.stems) for p in plans)

    def render(p):
        return renderer.render_track(p.notes_s, p.programs, p.n_samples, velocity=p.velocity, peak_dbfs=cfg.peak_dbfs)

    # One track in memory at a time, as in the stage, so peak RSS is the stage's.
    best = float("inf")
    for _ in range(args.repeats):
        t1 = time.perf_counter()
        for p in plans:
            render(p)
        best = min(best, time.perf_counter() - t1)
    t_encode = 0.0
    n_bytes = 0
    for p in plans:
        r = render(p)
        t2 = time.perf_counter()
        n_bytes += len(encode_flac(r.mix, r.sample_rate))
        n_bytes += sum(len(encode_flac(s, r.sample_rate)) for s in r.stems)
        t_encode += time.perf_counter() - t2
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    print(f"renderer: {renderer_version()} with {renderer.name}, one core, {cfg.sample_rate} Hz mono")
    print(
        f"tracks: {len(plans)} ({', '.join(args.composers)}), {len(plans) and stem_s / audio_s:.1f} stems/track, "
        f"{audio_s:.1f} s of mix audio, {stem_s:.1f} s of stem audio"
    )
    print(f"parse (music21, incl. key analysis): {t_parse:.2f} s = {t_parse / max(len(plans), 1):.3f} s/track")
    print(
        f"render: {best:.3f} s (best of {args.repeats}) -> real-time factor {audio_s / best:.0f}x "
        f"(mix seconds/wall second; target >= 100x), {stem_s / best:.0f}x per stem-second"
    )
    print(f"FLAC encode mix+stems: {t_encode:.3f} s -> {audio_s / t_encode:.0f}x real time, {n_bytes / 1e6:.1f} MB")
    print(f"end to end: {(t_parse + best + t_encode) / max(len(plans), 1):.3f} s/track")
    print(f"peak RSS: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
