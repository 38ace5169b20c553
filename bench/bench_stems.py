"""Benchmark: stem-pair building throughput from a corpus-layout stems artifact.

Synthesizes a corpus stems artifact (``mgdata.testing.make_corpus_artifact``:
30 s tracks at 22050 Hz, default 4 stems), then times
:func:`mgdata.stems.build.build_stems_stage` with the default params (15 s
windows, 5 s overlap). Prints tracks/s, pairs/s, audio-seconds written per
wall-second, output size and peak RSS.

Usage: python bench/bench_stems.py [--tracks 12] [--stems 4] [--seconds 30]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from mgdata.config import ShardConfig
from mgdata.report import StageReport
from mgdata.stems.build import build_stems_stage
from mgdata.stems.config import StemsConfig
from mgdata.testing import make_corpus_artifact


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=12, help="corpus tracks to synthesize")
    ap.add_argument("--stems", type=int, default=4, help="stems per track (<= 6)")
    ap.add_argument("--seconds", type=float, default=30.0, help="track duration in seconds")
    args = ap.parse_args()
    sr = 22050
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        corpus = make_corpus_artifact(Path(tmp) / "corpus", n_tracks=args.tracks, n_stems=args.stems,
                                      duration_s=args.seconds, sr=sr, shards=ShardConfig(max_samples=64))
        out = Path(tmp) / "stems"
        report = StageReport("stems")
        t0 = time.perf_counter()
        res = build_stems_stage(StemsConfig(sample_rate=sr), ShardConfig(), corpus_stems_dir=corpus / "stems",
                                out_dir=out, report=report, progress=False)
        dt = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in out.glob("*.tar")) / 1e6
        audio_s = 2 * res.pairs * 15.0  # a.flac + b.flac per pair
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tracks={res.tracks_used} windows={res.windows} pairs={res.pairs} time={dt:.2f}s")
    print(f"tracks/s={res.tracks_used / dt:.2f} pairs/s={res.pairs / dt:.1f} "
          f"audio-s written per s={audio_s / dt:.0f} output={size_mb:.1f} MB peak_rss={rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
