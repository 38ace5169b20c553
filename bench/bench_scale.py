"""Is every stage linear in data size? corpus, stems, embed, tokens at 1x, 2x and 4x a small corpus.

Targets (issue 12): 2x data -> <= 2.2x time, and peak RSS flat (<= +10 %) as data grows 4x.

Each measurement is its own subprocess (``--child``) so its peak RSS (``ru_maxrss`` of that process, read at its
end) is not polluted by the previous one; the time is the builder call only (Python API, imports and config
loading excluded), so the ratio shows how the work scales, not the constant start-up. Builders run with the
serial executor (one process: the RSS is the whole stage's, and 2 shared cores give no stable parallel timing).
The stages share the params.yaml of the working directory (or --params) except the sizes set here.

Usage::

    python bench/bench_scale.py                # base 8 tracks x 20 s: 1x, 2x, 4x
    python bench/bench_scale.py --base-tracks 4 --duration-s 12   # quicker
"""

from __future__ import annotations

import argparse
import inspect
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("corpus", "stems", "embed", "tokens")
TIME_TARGET = 2.2  # t(2x) / t(1x)
RSS_TARGET = 1.10  # rss(4x) / rss(1x)


def _kwargs(fn, **candidates):
    """The candidate keyword arguments ``fn`` accepts (builders gained/lose optional ones over time)."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in candidates.items() if k in params}


def child(stage: str, work: Path, params_path: Path, n_tracks: int, duration_s: float) -> dict:
    """Run one builder in this (fresh) process; returns seconds and peak RSS."""
    import yaml

    from mgdata.config import ShardConfig, from_dict

    params = yaml.safe_load(params_path.read_text())
    shards = from_dict(ShardConfig, params.get("shards") or {}, "shards")
    executor = None
    try:
        from mgdata.exec import ExecConfig

        executor = ExecConfig(backend="serial")
    except ImportError:
        pass
    data = work / "data"
    if stage == "corpus":
        from mgdata.corpus.build import build_corpus
        from mgdata.corpus.config import CorpusConfig

        sec = dict(params["corpus"], n_tracks=n_tracks, max_duration_s=duration_s)
        cfg = from_dict(CorpusConfig, sec, "corpus")
        t0 = time.perf_counter()
        build_corpus(
            data / "corpus", cfg=cfg, shards=shards, **_kwargs(build_corpus, progress=False, executor=executor)
        )
    elif stage == "stems":
        from mgdata.stems.build import build_stems_stage
        from mgdata.stems.config import StemsConfig

        cfg = from_dict(StemsConfig, params["stems"], "stems")
        t0 = time.perf_counter()
        build_stems_stage(
            cfg,
            shards,
            corpus_stems_dir=data / "corpus" / "stems",
            out_dir=data / "stems",
            **_kwargs(build_stems_stage, progress=False, executor=executor),
        )
    elif stage == "embed":
        from mgdata.embed.build import build_embeddings
        from mgdata.embed.config import EmbedConfig

        cfg = from_dict(EmbedConfig, params["embed"], "embed")
        t0 = time.perf_counter()
        build_embeddings(
            data / "corpus" / "mix",
            data / "embed",
            cfg=cfg,
            embedder="logmel",
            scenario="clean",
            shards=shards,
            **_kwargs(build_embeddings, progress=False, executor=executor),
        )
    elif stage == "tokens":
        from mgdata.tokens.build import build_tokens
        from mgdata.tokens.config import TokensConfig

        sec = dict(params["tokens"])
        seg, k = sec["segment_s"][0], sec["k"][0]
        if "frames_cache" in sec:
            sec["frames_cache"] = ""  # a warm cache would hide the encoder's cost at the larger sizes
        cfg = from_dict(TokensConfig, sec, "tokens")
        t0 = time.perf_counter()
        build_tokens(
            data / "stems",
            data / "tokens",
            cfg=cfg,
            segment_s=seg,
            k=k,
            shards=shards,
            **_kwargs(build_tokens, progress=False, executor=executor),
        )
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"stage": stage, "seconds": seconds, "rss_mb": rss_mb}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--base-tracks", type=int, default=8, help="tracks at 1x")
    ap.add_argument("--duration-s", type=float, default=20.0, help="max_duration_s of every track")
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--stages", nargs="+", default=list(STAGES))
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs per measurement (fresh output each time); the minimum time and RSS are kept, "
        "which filters out load from other processes on a shared machine",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--n-tracks", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    params = args.params.resolve()
    if args.child:
        print(json.dumps(child(args.child, args.work, params, args.n_tracks, args.duration_s)))
        return 0

    rows: dict[str, dict[int, dict]] = {s: {} for s in args.stages}
    with tempfile.TemporaryDirectory(prefix="bench_scale-") as tmp:
        for scale in args.scales:
            work = Path(tmp) / f"x{scale}"
            work.mkdir()
            n = args.base_tracks * scale
            for stage in args.stages:
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    stage,
                    "--work",
                    str(work),
                    "--n-tracks",
                    str(n),
                    "--params",
                    str(params),
                    "--duration-s",
                    str(args.duration_s),
                ]
                runs = []
                for rep in range(args.repeats):
                    if rep:  # the repeat rebuilds this stage's output from scratch (its inputs stay)
                        out = {"corpus": "corpus", "stems": "stems", "embed": "embed", "tokens": "tokens"}[stage]
                        shutil.rmtree(work / "data" / out, ignore_errors=True)
                    res = subprocess.run(cmd, capture_output=True, text=True)
                    if res.returncode != 0:
                        print(f"{stage} x{scale}: failed: {res.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                        return 1
                    runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
                rows[stage][scale] = {
                    "seconds": min(r["seconds"] for r in runs),
                    "rss_mb": min(r["rss_mb"] for r in runs),
                }
                r = rows[stage][scale]
                print(
                    f"  {stage:<7} x{scale} ({n} tracks): {r['seconds']:7.2f} s  peak RSS {r['rss_mb']:7.1f} MB",
                    flush=True,
                )

    s0 = args.scales[0]
    print(f"\nper-stage scaling (base {args.base_tracks} tracks x <= {args.duration_s:g} s)")
    print(f"{'stage':<8} {'time 2x/1x':>11} {'target':>7} {'met':>4}  {'RSS 4x/1x':>10} {'target':>7} {'met':>4}")
    for stage in args.stages:
        r = rows[stage]
        t_ratio = r[2 * s0]["seconds"] / r[s0]["seconds"] if 2 * s0 in r else float("nan")
        m_ratio = r[4 * s0]["rss_mb"] / r[s0]["rss_mb"] if 4 * s0 in r else float("nan")
        if 4 * s0 in r and 2 * s0 in r:
            t_ratio = max(t_ratio, r[4 * s0]["seconds"] / r[2 * s0]["seconds"])  # worst doubling step
        print(
            f"{stage:<8} {t_ratio:>11.2f} {TIME_TARGET:>7.2f} {'yes' if t_ratio <= TIME_TARGET else 'NO':>4}  "
            f"{m_ratio:>10.2f} {RSS_TARGET:>7.2f} {'yes' if m_ratio <= RSS_TARGET else 'NO':>4}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
