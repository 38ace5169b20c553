"""Benchmark: shard write/read throughput beside a plain sequential copy of the same bytes, and where write time goes.

Prints MB/s for writing an artifact (ArtifactWriter, FLAC payloads pre-encoded),
streaming it back (iter_samples, verified — the default — and with
``verify=False``), and a plain ``shutil.copyfileobj`` of the same tar bytes on the
same disk, without and with an fsync per file; the ratios are the figures to
watch (issue 12 target: shard write >= 0.5x plain copy). The write is split into
its parts: the same write with every fsync disabled (so ``fsync`` = the
difference), sha256 of the bytes in memory, and the old policy of one
fsync per shard as it is committed. Each timing is the best of ``--repeat`` runs,
after an ``os.sync()`` so dirty pages of a previous run do not bill the next.

Usage: python bench/bench_store.py [--samples 400] [--seconds 10] [--repeat 3]
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
from unittest import mock

from mgdata.audio import encode_flac
from mgdata.config import ShardConfig
from mgdata.provenance import Provenance
from mgdata.store import ArtifactWriter, Sample, encode_json, iter_samples, list_shards
from mgdata.store import artifact as store_artifact
from mgdata.testing import noise, tone

PROV = Provenance(builder="bench", source="synthetic", source_version="1", licence="CC0", seed=0, params_hash="b")
CAPS = ShardConfig(max_samples=64, max_bytes=64 << 20)


def _write(out: Path, payload: list[bytes], n: int, seconds: float, fsync: str = "close") -> float:
    """Write an artifact; fsync = 'close' (default policy) | 'each' (per shard too) | 'none'."""
    shutil.rmtree(out, ignore_errors=True)
    os.sync()
    patches = []
    if fsync == "none":
        patches = [
            mock.patch.object(store_artifact, "_fsync_path", lambda p: None),
            mock.patch.object(store_artifact, "_write_atomic", _write_atomic_nosync),
        ]
    for p in patches:
        p.start()
    try:
        t0 = time.perf_counter()
        with ArtifactWriter(out, fingerprint="bench", provenance=PROV, shards=CAPS) as w:
            w.fsync_each_shard = fsync == "each"
            for i in range(n):
                w.write(
                    "train",
                    Sample(f"s{i:06d}", {"flac": payload[i % 16], "json": encode_json({"i": i})}, seconds=seconds),
                )
        return time.perf_counter() - t0
    finally:
        for p in patches:
            p.stop()


def _write_atomic_nosync(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _copy(shards: list[Path], dst_dir: Path, fsync: bool) -> float:
    shutil.rmtree(dst_dir, ignore_errors=True)
    dst_dir.mkdir()
    os.sync()
    t0 = time.perf_counter()
    for p in shards:
        with open(p, "rb") as src, open(dst_dir / p.name, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            if fsync:
                dst.flush()
                os.fsync(dst.fileno())
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=400, help="samples to write")
    ap.add_argument("--seconds", type=float, default=10.0, help="audio seconds per sample (22.05 kHz)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing (best is reported)")
    args = ap.parse_args()
    sr = 22050
    payload = [
        encode_flac(tone([220 * (1 + i % 7), 330], args.seconds, sr) + noise(args.seconds, sr, 0.01, i), sr)
        for i in range(16)
    ]
    best = lambda fn: min(fn() for _ in range(args.repeat))  # noqa: E731
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        out = Path(tmp) / "art"
        t_nofsync = best(lambda: _write(out / "x", payload, args.samples, args.seconds, "none"))
        t_each = best(lambda: _write(out / "x", payload, args.samples, args.seconds, "each"))
        t_write = best(lambda: _write(out, payload, args.samples, args.seconds, "close"))
        shards = list_shards(out)
        nbytes = sum(p.stat().st_size for p in shards)
        blobs = [p.read_bytes() for p in shards]
        t0 = time.perf_counter()
        for b in blobs:
            hashlib.sha256(b).hexdigest()
        t_sha = time.perf_counter() - t0
        del blobs
        c0 = time.process_time()
        _write(out, payload, args.samples, args.seconds, "close")
        cpu_write = time.process_time() - c0
        c0 = time.process_time()
        _copy(shards, Path(tmp) / "copy", fsync=False)
        cpu_copy = time.process_time() - c0

        t_copy = best(lambda: _copy(shards, Path(tmp) / "copy", fsync=False))
        t_copy_sync = best(lambda: _copy(shards, Path(tmp) / "copy", fsync=True))

        def read(verify: bool) -> float:
            t = time.perf_counter()
            n = sum(1 for _ in iter_samples(out, verify=verify))
            assert n == args.samples
            return time.perf_counter() - t

        t_read = best(lambda: read(False))
        t_read_v = best(lambda: read(True))
        t0 = time.perf_counter()
        for p in shards:  # plain sequential read of the same bytes (page cache warm, like the reader)
            with open(p, "rb") as fh:
                while fh.read(1 << 20):
                    pass
        t_plain_read = time.perf_counter() - t0

    mb = nbytes / 1e6
    print(f"shards: {len(shards)}, {mb:.1f} MB, {args.samples} samples; best of {args.repeat}")
    print(f"plain copy (read+write)          : {mb / t_copy:8.1f} MB/s")
    print(f"plain copy + fsync per file      : {mb / t_copy_sync:8.1f} MB/s")
    print(f"plain sequential read            : {mb / t_plain_read:8.1f} MB/s")
    print(
        f"shard write (fsync before commit): {mb / t_write:8.1f} MB/s  ratio vs plain copy {t_copy / t_write:.2f}x "
        f"(target >= 0.5x: {'met' if t_copy / t_write >= 0.5 else 'NOT met'}); "
        f"vs copy+fsync {t_copy_sync / t_write:.2f}x"
    )
    print(
        f"  where the time goes: fsync {t_write - t_nofsync:6.3f} s, sha256 {t_sha:6.3f} s, "
        f"rest (tar headers + write syscalls + index) {max(t_nofsync - t_sha, 0.0):6.3f} s, total {t_write:6.3f} s"
    )
    print(
        f"  CPU seconds (this process): shard write {cpu_write:6.3f} s, plain copy {cpu_copy:6.3f} s "
        f"(ratio {cpu_copy / cpu_write:.2f}x; wall-clock ratios suffer when other jobs share the cores)"
    )
    print(
        f"  shard write, no fsync at all   : {mb / t_nofsync:8.1f} MB/s  ratio vs plain copy {t_copy / t_nofsync:.2f}x"
    )
    print(
        f"  shard write, fsync every shard : {mb / t_each:8.1f} MB/s  ratio vs plain copy {t_copy / t_each:.2f}x "
        "(the old policy)"
    )
    print(
        f"shard read (verify=False)        : {mb / t_read:8.1f} MB/s  ratio vs plain copy {t_copy / t_read:.2f}x "
        f"(vs plain read {t_plain_read / t_read:.2f}x)"
    )
    print(
        f"shard read + verify (default)    : {mb / t_read_v:8.1f} MB/s  ratio vs plain copy {t_copy / t_read_v:.2f}x "
        f"(vs plain read {t_plain_read / t_read_v:.2f}x)"
    )
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
