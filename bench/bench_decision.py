"""Benchmark: decision Transformer training and generation speed on CPU, and how an epoch scales with pairs.

Trains the default model (params section ``decision``, or the defaults) for two epochs on
N pairs and on 2N pairs (the pairs repeated), each in a fresh process, and prints per
size: CPU and wall seconds per epoch (epoch 0 is teacher-forced, epoch 1 adds the
scheduled-sampling pass), training target tokens/s, peak RSS, and the 2N/1N epoch-time
ratio (target <= 2.2: one epoch is linear in the number of pairs). Then it times
free-running top-p generation of the test pairs (generated tokens/s).

Pairs come from a token artifact (``--tokens data/tokens/s0.5-k16``; either layout) or,
without it, from synthetic sequences (``--synthetic N`` pairs of 30 tokens, K = 16).
CPU seconds are the robust figure on a shared machine; wall seconds are printed too.

Usage: python bench/bench_decision.py [--tokens DIR | --synthetic 1500] [--params params.yaml] [--threads 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

from _fresh import peak_rss_mb, run_fresh  # bench/ is on sys.path when run as a script


def _pairs(args):
    import numpy as np

    from mgdata.decision.data import TokenPair, load_pairs

    if args.tokens:
        data = load_pairs(args.tokens)
        return data.k, data.split("train"), data.split("validation"), data.split("test")
    rng = np.random.default_rng(0)

    def make(n, split):
        out = []
        for i in range(n):
            a = rng.integers(0, 16, 30)
            b = np.where(rng.random(30) < 0.5, (a + 3) % 16, rng.integers(0, 16, 30))
            # four parts, as the chorales: a model with decision.roles finds a role vocabulary here too
            stem_a, stem_b = (
                ("soprano", "alto", "tenor", "bass")[i % 4],
                ("soprano", "alto", "tenor", "bass")[(i + 1) % 4],
            )
            out.append(TokenPair(f"{split}{i // 12}", split, a, b, f"a{i}", f"b{i}", 0, stem_a, stem_b))
        return out

    return 16, make(args.synthetic, "train"), make(max(args.synthetic // 10, 12), "validation"), make(120, "test")


def _train_job(args, mult: int, q: mp.Queue) -> None:
    import dataclasses

    import torch

    from mgdata.config import load_section
    from mgdata.decision.config import DecisionConfig
    from mgdata.decision.train import train_model

    cfg = load_section(args.params, "decision", DecisionConfig) if Path(args.params).is_file() else DecisionConfig()
    cfg = dataclasses.replace(cfg, max_epochs=2, patience=10, threads=args.threads)
    torch.set_num_threads(args.threads)
    k, train, val, _ = _pairs(args)
    train = list(train) * mult
    c0, w0 = time.process_time(), time.perf_counter()
    res = train_model(train, val, k, cfg)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    q.put(
        {
            "pairs": len(train),
            "tokens": res.train_tokens,
            "cpu_per_epoch": cpu / 2,
            "wall_epochs": res.epoch_seconds,
            "wall": wall,
            "rss": peak_rss_mb(),
        }
    )


def _gen_job(args, q: mp.Queue) -> None:
    import dataclasses

    import torch

    from mgdata.config import load_section
    from mgdata.decision.config import DecisionConfig
    from mgdata.decision.generate import generate
    from mgdata.decision.train import train_model

    cfg = load_section(args.params, "decision", DecisionConfig) if Path(args.params).is_file() else DecisionConfig()
    # 64 training pairs: every part is a role (the params' role_min_pairs counts a full training split)
    cfg = dataclasses.replace(cfg, max_epochs=1, threads=args.threads, role_min_pairs=1)
    torch.set_num_threads(args.threads)
    k, train, val, test = _pairs(args)
    model = train_model(train[:64], val, k, cfg).model
    lens = [len(p.b) for p in test]
    c0, w0 = time.process_time(), time.perf_counter()
    sources = [model.pair_source(p) for p in test]  # A after the role tokens when the model has roles
    generate(model, sources, lens, seed=0, top_p=cfg.top_p, batch_size=cfg.batch_size)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    q.put({"sequences": len(test), "tokens": sum(lens), "cpu": cpu, "wall": wall, "rss": peak_rss_mb()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", default="", help="token artifact (default: synthetic pairs)")
    ap.add_argument("--synthetic", type=int, default=1500, help="synthetic training pairs when --tokens is not given")
    ap.add_argument("--params", default="params.yaml", help="params file (section decision; defaults if missing)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args()
    rows = []
    for mult in (1, 2):
        r = run_fresh(_train_job, args, mult)
        rows.append(r)
        print(
            f"train {r['pairs']:>6} pairs: {r['cpu_per_epoch']:7.2f} CPU s/epoch, wall epochs "
            f"{', '.join(f'{s:.2f}' for s in r['wall_epochs'])} s, {r['tokens'] / r['cpu_per_epoch']:8.0f} "
            f"target tokens per CPU s, peak RSS {r['rss']:.0f} MB"
        )
    print(f"epoch CPU-time ratio 2N/N: {rows[1]['cpu_per_epoch'] / rows[0]['cpu_per_epoch']:.2f} (target <= 2.2)")
    g = run_fresh(_gen_job, args)
    print(
        f"generate {g['sequences']} sequences, {g['tokens']} tokens: {g['cpu']:.2f} CPU s, {g['wall']:.2f} s wall, "
        f"{g['tokens'] / g['cpu']:.0f} tokens per CPU s, peak RSS {g['rss']:.0f} MB"
    )


if __name__ == "__main__":
    main()
