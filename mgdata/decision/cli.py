"""``mgdata decision render``: generate B for a test pair with the trained model and render it as audio."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mgdata.config import load_section


def _cmd_render(args: argparse.Namespace) -> int:
    from mgdata.decision.config import DecisionConfig
    from mgdata.decision.data import load_pairs
    from mgdata.decision.generate import generate
    from mgdata.decision.render import (
        SegmentCorpus,
        corpus_keys,
        find_pair,
        read_window_audio,
        render_pair,
    )
    from mgdata.decision.train import load_model

    cfg = load_section(args.params, "decision", DecisionConfig)
    data = load_pairs(args.tokens)
    pair = find_pair(data, args.pair)
    model = load_model(args.model, cfg, k=data.k)
    ckeys = [
        k
        for k in corpus_keys(data, args.corpus_split or cfg.render_corpus_split, cfg.render_corpus_windows)
        if k != pair.b_key
    ]  # never render B' from the ground truth itself
    audio = read_window_audio(args.stems, set(ckeys) | {pair.a_key})
    corpus = SegmentCorpus.build(
        {k: audio[k] for k in ckeys}, {k: data.windows[k]["tokens"] for k in ckeys}, args.segment_s
    )
    pred = generate(
        model,
        [pair.a],
        [len(pair.b)],
        seed=args.seed,
        strategy=cfg.strategy,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        temperature=cfg.temperature,
        allowed=[corpus.allowed()],
    )[0]
    paths = render_pair(args.out, pair, pred, audio, corpus, data.codebook, crossfade_s=cfg.crossfade_s, seed=args.seed)
    print(json.dumps({k: str(v) for k, v in paths.items()}, sort_keys=True))
    return 0


def register_cli(subparsers) -> None:
    """Add ``mgdata decision render``."""
    dec = subparsers.add_parser("decision", help="the decision Transformer (stem A tokens -> stem B tokens)")
    sub = dec.add_subparsers(dest="decision_command", metavar="SUBCOMMAND")
    r = sub.add_parser("render", help="generate B' for a pair with constrained generation and render it as FLAC")
    r.add_argument("--pair", required=True, help="pair key of the token artifact (or A_KEY->B_KEY)")
    r.add_argument("--tokens", type=Path, required=True, help="token artifact, e.g. data/tokens/s0.5-k16")
    r.add_argument("--model", type=Path, required=True, help="trained model, e.g. data/decision/s0.5-k16/model.pt")
    r.add_argument("--stems", type=Path, default=Path("data/stems"), help="stems artifact with the window audio")
    r.add_argument("--segment-s", type=float, required=True, help="segment length of the tokens in seconds")
    r.add_argument("--out", type=Path, required=True, help="output folder for B', A+B' (FLAC) and a json")
    r.add_argument("--params", default="params.yaml", help="params file (section decision)")
    r.add_argument("--corpus-split", default="", help="split of the render corpus (default: params)")
    r.add_argument("--seed", type=int, default=0, help="generation seed")
    r.set_defaults(func=_cmd_render)


__all__ = ["register_cli"]
