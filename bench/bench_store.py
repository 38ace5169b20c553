"""Benchmark: shard write/read throughput beside a plain sequential copy of the same bytes.

Prints MB/s for writing an artifact (ArtifactWriter, FLAC payloads pre-encoded),
streaming it back (iter_samples, with and without sha256 verification), and a plain
``shutil.copyfileobj`` of the same tar bytes on the same disk; the ratios are the
figures to watch (target: read >= 0.5x plain copy). Also peak RSS.

Usage: python bench/bench_store.py [--samples 400] [--seconds 10]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from mgdata.audio import encode_flac
from mgdata.config import ShardConfig
from mgdata.provenance import Provenance
from mgdata.store import ArtifactWriter, Sample, encode_json, iter_samples, list_shards
from mgdata.testing import noise, tone


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=400, help="samples to write")
    ap.add_argument("--seconds", type=float, default=10.0, help="audio seconds per sample (22.05 kHz)")
    args = ap.parse_args()
    sr = 22050
    payload = [encode_flac(tone([220 * (1 + i % 7), 330], args.seconds, sr) + noise(args.seconds, sr, 0.01, i), sr)
               for i in range(16)]
    prov = Provenance(builder="bench", source="synthetic", source_version="1", licence="CC0", seed=0,
                      params_hash="bench")
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        out = Path(tmp) / "art"
        t0 = time.perf_counter()
        with ArtifactWriter(out, fingerprint="bench", provenance=prov,
                            shards=ShardConfig(max_samples=64, max_bytes=64 << 20)) as w:
            for i in range(args.samples):
                w.write("train", Sample(f"s{i:06d}", {"flac": payload[i % 16], "json": encode_json({"i": i})},
                                        seconds=args.seconds))
        t_write = time.perf_counter() - t0
        shards = list_shards(out)
        nbytes = sum(p.stat().st_size for p in shards)

        t0 = time.perf_counter()
        copy_dir = Path(tmp) / "copy"
        copy_dir.mkdir()
        for p in shards:
            with open(p, "rb") as src, open(copy_dir / p.name, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        t_copy = time.perf_counter() - t0

        def read(verify: bool) -> float:
            t = time.perf_counter()
            n = sum(1 for _ in iter_samples(out, verify=verify))
            assert n == args.samples
            return time.perf_counter() - t

        t_read = min(read(False) for _ in range(2))
        t_read_v = min(read(True) for _ in range(2))
        t0 = time.perf_counter()
        for p in shards:  # plain sequential read of the same bytes (page cache warm, like the reader)
            with open(p, "rb") as fh:
                while fh.read(1 << 20):
                    pass
        t_plain_read = time.perf_counter() - t0

    mb = nbytes / 1e6
    print(f"shards: {len(shards)}, {mb:.1f} MB, {args.samples} samples")
    print(f"plain copy (read+write): {mb / t_copy:8.1f} MB/s")
    print(f"plain sequential read  : {mb / t_plain_read:8.1f} MB/s")
    print(f"shard write            : {mb / t_write:8.1f} MB/s  ratio vs plain copy {t_copy / t_write:.2f}x")
    print(f"shard read             : {mb / t_read:8.1f} MB/s  ratio vs plain copy {t_copy / t_read:.2f}x "
          f"(vs plain read {t_plain_read / t_read:.2f}x)")
    print(f"shard read + verify    : {mb / t_read_v:8.1f} MB/s  ratio vs plain copy {t_copy / t_read_v:.2f}x")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
