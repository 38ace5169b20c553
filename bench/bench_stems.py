"""Benchmark: stems storage before/after (pairs materialised vs stem-windows stored once) and throughput.

Input: a corpus (``--corpus DIR`` holding ``stems/``, e.g. one rendered by the
corpus stage) or, by default, a synthesized corpus stems artifact
(``mgdata.testing.make_corpus_artifact``: 30 s tracks at 22050 Hz, 4 stems).
Builds the stems artifact with the default windows (15 s, 5 s overlap) and
``stems.materialize_pairs: true``, so one run measures both layouts:

* before: the self-contained pair shards (``a.flac`` + ``b.flac`` per ordered pair,
  the layout of earlier versions), in ``<out>/pairs``;
* after: the stem-window shards + ``pairs.parquet`` (the default layout).

Then times the default layout alone (serial and with 2 process workers) and prints
tracks/s, audio seconds per wall second and peak RSS.

Usage: python bench/bench_stems.py [--corpus data/corpus] [--tracks 12] [--stems 4] [--seconds 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import tempfile
import time
from pathlib import Path

from mgdata.config import ShardConfig
from mgdata.exec import ExecConfig
from mgdata.report import StageReport
from mgdata.stems.build import PAIRS_FILE, PAIRS_SUBDIR, build_stems_stage
from mgdata.stems.config import StemsConfig
from mgdata.testing import make_corpus_artifact


def _mb(paths) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="", help="a corpus folder with stems/ (empty: synthesize one)")
    ap.add_argument("--tracks", type=int, default=12, help="corpus tracks to synthesize")
    ap.add_argument("--stems", type=int, default=4, help="stems per synthesized track (<= 6)")
    ap.add_argument("--seconds", type=float, default=30.0, help="synthesized track duration in seconds")
    args = ap.parse_args()
    sr = 22050
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        if args.corpus:
            corpus = Path(args.corpus)
            cfg = StemsConfig(sample_rate=sr)
        else:
            corpus = make_corpus_artifact(
                Path(tmp) / "corpus",
                n_tracks=args.tracks,
                n_stems=args.stems,
                duration_s=args.seconds,
                sr=sr,
                shards=ShardConfig(max_samples=64),
            )
            # the synthetic stems are harmonics of one note (octave doublings): keep every pair here
            cfg = StemsConfig(sample_rate=sr, duplicate_corr=1.0)
        src_mb = _mb((corpus / "stems").glob("*.tar"))
        both = Path(tmp) / "both"
        res = build_stems_stage(
            dataclasses.replace(cfg, materialize_pairs=True),
            ShardConfig(),
            corpus_stems_dir=corpus / "stems",
            out_dir=both,
            progress=False,
        )
        once_mb = _mb(both.glob("*.tar")) + _mb([both / PAIRS_FILE])
        pairs_mb = _mb((both / PAIRS_SUBDIR).glob("*.tar"))
        print(
            f"input corpus stems: {src_mb:.1f} MB; tracks={res.tracks_used} windows={res.windows} "
            f"stem_windows={res.stem_windows} pairs={res.n_pairs} near_duplicate_pairs={res.pairs_near_duplicate}"
        )
        print(f"before (pairs materialised): {pairs_mb:.1f} MB = {pairs_mb / src_mb:.2f}x the input")
        print(
            f"after (stored once + pairs.parquet): {once_mb:.1f} MB = {once_mb / src_mb:.2f}x the input; "
            f"after/before = {once_mb / pairs_mb:.3f} ({pairs_mb / once_mb:.1f}x smaller)"
        )
        walls = {}
        for name, ex in (
            ("serial", ExecConfig(backend="serial")),
            ("process2", ExecConfig(backend="process", workers=2)),
        ):
            t0 = time.perf_counter()
            r = build_stems_stage(
                cfg,
                ShardConfig(),
                corpus_stems_dir=corpus / "stems",
                out_dir=Path(tmp) / name,
                report=StageReport("stems"),
                executor=ex,
                progress=False,
            )
            walls[name] = time.perf_counter() - t0
            audio_s = r.stem_windows * cfg.window_s
            print(
                f"{name}: {walls[name]:.2f} s wall, {r.tracks_used / walls[name]:.2f} tracks/s, "
                f"{audio_s / walls[name]:.0f} stem-window audio seconds per wall second"
            )
        print(f"process2 speedup over serial: {walls['serial'] / walls['process2']:.2f}x")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (parent): {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
