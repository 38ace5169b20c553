"""Benchmark: embedding real-time factor per embedder beside the FLAC-decode floor, and streaming RSS.

* Real-time factor (RTF = audio seconds / wall seconds) of merely streaming and
  decoding the input FLAC shards (the floor: no embedder can be faster), and of
  ``build_embeddings`` (decode + resample + embed + write shards + consolidate) for
  ``logmel`` and the ``hf`` path with a tiny random wav2vec2 (32-d, 2 layers: it
  measures the pipeline's overhead, not a real model's cost); the ratio
  embed RTF / decode RTF says how close to the floor each embedder runs.
* Peak RSS of a ``logmel`` build over 1x and 4x the number of input shards, each in
  a fresh process: it should stay flat (the build streams shards; only the
  consolidated matrix and its key table grow, by a few KB per clip).

Single-threaded torch (``--threads``, default 1) so figures are per core.

Usage: python bench/bench_embed.py [--clips 24] [--seconds 20] [--per-shard 4]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mgdata.audio import decode_audio, encode_flac
from mgdata.config import ShardConfig
from mgdata.provenance import Provenance
from mgdata.store import ArtifactWriter, Sample, encode_json, iter_samples
from mgdata.testing import noise, tone

SR = 16000


def write_input(out: Path, *, clips: int, seconds: float, per_shard: int) -> float:
    """A flac+json artifact of ``clips`` distinct synthetic clips; returns total audio seconds."""
    prov = Provenance(builder="bench", source="synthetic", source_version="1", licence="CC0", seed=0,
                      params_hash="bench")
    splits = ("train", "validation", "test")
    with ArtifactWriter(out, fingerprint=f"bench-{clips}-{seconds}", provenance=prov,
                        shards=ShardConfig(max_samples=per_shard)) as w:
        for i in range(clips):
            x = tone([110 * (1 + i % 5), 165 * (1 + i % 3)], seconds, SR, 0.3) + noise(seconds, SR, 0.01, i)
            meta = {"split": splits[i % 3], "tags": ["synthetic", f"c{i % 4}"]}
            w.write(splits[i % 3], Sample(f"clip-{i:05d}", {"flac": encode_flac(x, SR), "json": encode_json(meta)},
                                          seconds=seconds))
    return clips * seconds


def decode_floor(art: Path) -> float:
    """Wall seconds to stream the shards and decode every FLAC."""
    t0 = time.perf_counter()
    for raw in iter_samples(art):
        decode_audio(raw["flac"])
    return time.perf_counter() - t0


def time_build(art: Path, out: Path, embedder: str, model: str | None) -> float:
    from mgdata.embed.build import build_embeddings
    from mgdata.embed.config import EmbedConfig, HFConfig

    cfg = EmbedConfig(device="cpu", hf=HFConfig(model=model) if model else HFConfig())
    t0 = time.perf_counter()
    build_embeddings(art, out, cfg=cfg, embedder=embedder, scenario="clean")
    return time.perf_counter() - t0


def peak_rss_mb() -> float:
    """Peak RSS of this process in MB: VmHWM (reset by exec, unlike ru_maxrss, which keeps the
    pre-exec peak of the forking parent on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(art: str, out: str) -> None:
    """Entry point of the RSS subprocess: one logmel build, print peak RSS (MB) as JSON."""
    import logging

    logging.disable(logging.WARNING)
    import librosa  # noqa: F401  (counted in the baseline, like the other imports)

    from mgdata.embed.build import build_embeddings
    from mgdata.embed.config import EmbedConfig

    base = peak_rss_mb()
    build_embeddings(Path(art), Path(out), cfg=EmbedConfig(), embedder="logmel", scenario="clean")
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "after_imports_mb": base}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=24, help="clips in the 1x input artifact")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds per clip (16 kHz)")
    ap.add_argument("--per-shard", type=int, default=4, help="clips per input shard")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the hf embedder")
    ap.add_argument("--rss-child", nargs=2, metavar=("ARTIFACT", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return
    import torch

    torch.set_num_threads(args.threads)
    from mgdata.embed.testing_models import make_tiny_wav2vec2

    with tempfile.TemporaryDirectory(dir=".") as tmp:
        tmp = Path(tmp)
        art = tmp / "in1x"
        audio_s = write_input(art, clips=args.clips, seconds=args.seconds, per_shard=args.per_shard)
        model = make_tiny_wav2vec2(tmp / "tiny-w2v2")
        decode_floor(art)  # warm the page cache
        t_decode = min(decode_floor(art) for _ in range(2))
        rtf_decode = audio_s / t_decode
        print(f"input: {args.clips} clips x {args.seconds:g} s = {audio_s / 60:.1f} min audio, "
              f"{-(-args.clips // args.per_shard)} shards")
        print(f"decode floor (stream + FLAC decode): RTF {rtf_decode:8.1f}x")
        for name, mdl in (("logmel", None), ("hf", str(model))):
            time_build(art, tmp / f"warm-{name}", name, mdl)  # imports, JIT, model load
            t = time_build(art, tmp / f"out-{name}", name, mdl)
            rtf = audio_s / t
            label = name if mdl is None else f"{name} (tiny wav2vec2)"
            print(f"embed {label:<22}: RTF {rtf:8.1f}x  = {rtf / rtf_decode:.3f} of the decode floor")

        rss = {}
        for mult in (1, 4):
            big = tmp / f"in{mult}x"
            if mult != 1:
                write_input(big, clips=args.clips * mult, seconds=args.seconds, per_shard=args.per_shard)
            proc = subprocess.run([sys.executable, __file__, "--rss-child", str(big), str(tmp / f"rss{mult}")],
                                  check=True, capture_output=True, text=True, env=os.environ | {"TQDM_DISABLE": "1"})
            rss[mult] = json.loads(proc.stdout.strip().splitlines()[-1])
            shards = -(-args.clips * mult // args.per_shard)
            print(f"peak RSS logmel build, {mult}x input ({shards} shards): {rss[mult]['peak_rss_mb']:.0f} MB "
                  f"(after imports {rss[mult]['after_imports_mb']:.0f} MB)")
        print(f"RSS growth 1x -> 4x shards: {rss[4]['peak_rss_mb'] - rss[1]['peak_rss_mb']:+.0f} MB")


if __name__ == "__main__":
    main()
