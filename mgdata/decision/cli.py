"""``mgdata decision render``: generate B' with the trained model and render it as audio.

Two sources of A: ``--pair KEY`` (a pair of the token artifact, written as ``KEY_b.flac``, ``KEY_mix.flac`` and
``KEY.json`` into the ``--out`` folder) or ``--audio FILE`` (any stem a user has: B' goes to ``--out`` or
``<stem>_b.flac`` beside it, A + B' to ``--mix`` if given). Either way B' is generated with the params'
decoding, constrained to the tokens the render corpus holds, and rendered from that corpus.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from mgdata.config import load_section
from mgdata.errors import InputError


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """``(model.pt, token artifact)``: ``--model`` may be the file or the decision output folder.

    Without ``--tokens`` the artifact is the model folder's namesake under ``tokens/``
    (``data/decision/<cfg>`` -> ``data/tokens/<cfg>``, the layout of the decision stage).
    """
    from mgdata.decision.train import MODEL_FILE

    model = Path(args.model)
    model_dir = model if model.is_dir() else model.parent
    model_file = model / MODEL_FILE if model.is_dir() else model
    if args.tokens is not None:
        return model_file, Path(args.tokens)
    guess = model_dir.parent.parent / "tokens" / model_dir.name
    if not (guess / "artifact.json").is_file():
        raise InputError(model, f"no token artifact at {guess} (the model folder's namesake); pass --tokens")
    return model_file, guess


def _config(args: argparse.Namespace, model_file: Path):
    """Section ``decision`` of the params with the network settings the checkpoint was saved with.

    The checkpoint decides the network (a paper checkpoint stores no ``arch``); the params decide decoding.
    """
    import torch

    from mgdata.decision.config import DecisionConfig

    params = Path(args.params)
    cfg = load_section(params, "decision", DecisionConfig) if params.is_file() else DecisionConfig()
    if not model_file.is_file():
        return cfg  # load_model names the missing file
    saved = torch.load(model_file, map_location="cpu", weights_only=False).get("model_settings") or {}
    return dataclasses.replace(cfg, **{"arch": "paper", **saved})


def _segment_s(args: argparse.Namespace, tokens: Path) -> float:
    """``--segment-s``, else the token artifact's ``provenance.extra.segment_s``."""
    from mgdata.store import read_artifact_info

    recorded = read_artifact_info(tokens).get("provenance", {}).get("extra", {}).get("segment_s")
    if args.segment_s is not None:
        if recorded is not None and abs(float(recorded) - args.segment_s) > 1e-9:
            raise InputError(tokens, f"tokens have segment_s={recorded}, --segment-s {args.segment_s} differs")
        return float(args.segment_s)
    if recorded is None:
        raise InputError(tokens, "the artifact does not record segment_s; pass --segment-s")
    return float(recorded)


def _corpus(data, cfg, args: argparse.Namespace, segment_s: float, exclude: str = "", extra: tuple[str, ...] = ()):
    """The render corpus (``exclude`` left out) and the audio read for it and for the ``extra`` keys."""
    from mgdata.decision.render import SegmentCorpus, corpus_keys, read_window_audio

    split = args.corpus_split or cfg.render_corpus_split
    ckeys = [k for k in corpus_keys(data, split, cfg.render_corpus_windows) if k != exclude]
    audio = read_window_audio(args.stems, set(ckeys) | set(extra))
    corpus = SegmentCorpus.build({k: audio[k] for k in ckeys}, {k: data.windows[k]["tokens"] for k in ckeys}, segment_s)
    return corpus, audio


def _render_pair(args: argparse.Namespace, data, model, cfg, segment_s: float) -> dict[str, Any]:
    from mgdata.decision.generate import generate
    from mgdata.decision.render import find_pair, render_pair

    if args.out is None:
        raise InputError("--out", "--pair needs an output folder")
    pair = find_pair(data, args.pair)
    # never render B' from the ground truth itself
    corpus, audio = _corpus(data, cfg, args, segment_s, exclude=pair.b_key, extra=(pair.a_key,))
    pred = generate(
        model,
        [model.pair_source(pair)],
        [len(pair.b)],
        seed=args.seed,
        strategy=cfg.strategy,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        temperature=cfg.temperature,
        allowed=[corpus.allowed()],
    )[0]
    paths = render_pair(args.out, pair, pred, audio, corpus, data.codebook, crossfade_s=cfg.crossfade_s, seed=args.seed)
    return {k: str(v) for k, v in paths.items()}


def _chunk(data, cfg) -> int:
    """Tokens per generated chunk: the longest training A sequence (the window the model learnt on)."""
    lens = [len(p.a) for p in data.split(cfg.train_split)] or [cfg.max_len]
    return max(1, min(max(lens), cfg.max_len))


def _roles(args: argparse.Namespace, model) -> tuple[str, str]:
    """``(--role-a, --role-b)``, checked against the model's role vocabulary (empty = ``other``)."""
    roles = (args.role_a or "", args.role_b or "")
    known = getattr(model, "role_names", ())
    for flag, name in zip(("--role-a", "--role-b"), roles):
        if name and not known:
            raise InputError(flag, "this model was trained without stem roles (decision.roles: false)")
        if name and name not in known:
            raise InputError(flag, f"unknown stem role {name!r}; the model knows: {', '.join(known)}")
    return roles


def _render_audio(args: argparse.Namespace, data, model, cfg, segment_s: float, tokens: Path) -> dict[str, Any]:
    from mgdata.decision.render import (
        StemTokenizer,
        generate_for_stem,
        read_stem,
        render_stem,
        write_stem_render,
    )
    from mgdata.tokens.config import TokensConfig

    t0 = time.perf_counter()
    src = Path(args.audio)
    a_audio, a_sr = read_stem(src)
    params = Path(args.params)
    base = load_section(params, "tokens", TokensConfig) if params.is_file() else None
    tok = StemTokenizer.from_artifact(tokens, data.codebook, base)
    a_tokens = tok.tokens(a_audio, a_sr, where=str(src))
    corpus, _ = _corpus(data, cfg, args, segment_s)
    chunk = _chunk(data, cfg)
    roles = _roles(args, model)
    pred = generate_for_stem(model, a_tokens, chunk, seed=args.seed, cfg=cfg, allowed=corpus.allowed(), roles=roles)
    a, b, drawn = render_stem(a_audio, a_sr, pred, corpus, data.codebook, crossfade_s=cfg.crossfade_s)
    out = args.out if args.out is not None else src.with_name(f"{src.stem}_b.flac")
    info = {
        "audio": str(src),
        "tokens": str(tokens),
        "model": str(args.model),
        "seed": args.seed,
        "segment_s": segment_s,
        "chunk_tokens": chunk,
        "roles": list(roles),
        "input_sample_rate": a_sr,
        "input_seconds": round(len(a_audio) / a_sr, 6),
        "sample_rate": corpus.sample_rate,
        "output_seconds": round(len(b) / corpus.sample_rate, 6),
        "a_tokens": [int(x) for x in a_tokens],
        "predicted": [int(x) for x in pred],
        "segments": [[k, int(j)] for k, j in drawn],
    }
    paths = write_stem_render(out, args.mix, a, b, corpus.sample_rate, info)
    return {
        **{k: str(v) for k, v in paths.items()},
        "tokens": len(a_tokens),
        "input_s": info["input_seconds"],
        "output_s": info["output_seconds"],
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _cmd_render(args: argparse.Namespace) -> int:
    from mgdata.decision.data import load_pairs
    from mgdata.decision.train import check_tokens, load_model

    if (args.pair is None) == (args.audio is None):
        raise InputError("mgdata decision render", "give exactly one of --pair KEY or --audio FILE")
    if args.audio is not None:
        from mgdata.decision.render import read_stem

        read_stem(args.audio)  # an undecodable file is named before the model and corpus load
    model_file, tokens = _paths(args)
    cfg = _config(args, model_file)
    data = load_pairs(tokens)
    segment_s = _segment_s(args, tokens)
    model = load_model(model_file, cfg, k=data.k)
    check_tokens(model_file, data.split(cfg.train_split), data.split(cfg.val_split), tokens)
    if args.pair is not None:
        res = _render_pair(args, data, model, cfg, segment_s)
    else:
        res = _render_audio(args, data, model, cfg, segment_s, tokens)
    print(json.dumps(res, sort_keys=True))
    return 0


def register_cli(subparsers) -> None:
    """Add ``mgdata decision render``."""
    dec = subparsers.add_parser("decision", help="the decision model (stem A tokens -> stem B tokens)")
    sub = dec.add_subparsers(dest="decision_command", metavar="SUBCOMMAND")
    r = sub.add_parser(
        "render",
        help="generate B' for a test pair or any audio stem (constrained to the corpus) and render it as FLAC",
    )
    r.add_argument("--pair", default=None, help="pair key of the token artifact (or A_KEY->B_KEY)")
    r.add_argument("--audio", type=Path, default=None, help="a stem A of any format, rate and channel count")
    r.add_argument(
        "--model", type=Path, required=True, help="decision output folder (or its model.pt), e.g. data/decision/<cfg>"
    )
    r.add_argument(
        "--tokens", type=Path, default=None, help="token artifact the model was trained on (default: data/tokens/<cfg>)"
    )
    r.add_argument("--stems", type=Path, default=Path("data/stems"), help="stems artifact with the window audio")
    r.add_argument("--segment-s", type=float, default=None, help="segment length (default: the token artifact's)")
    r.add_argument(
        "--out", type=Path, default=None, help="--pair: output folder; --audio: B' FLAC (default <stem>_b.flac)"
    )
    r.add_argument("--mix", type=Path, default=None, help="--audio: also write A + B' (peak-limited) here")
    r.add_argument(
        "--role-a", default="", help="--audio: the part your stem plays, e.g. soprano (a model with stem roles)"
    )
    r.add_argument("--role-b", default="", help="--audio: the part to generate, e.g. bass (default: other)")
    r.add_argument("--params", default="params.yaml", help="params file (sections decision, tokens)")
    r.add_argument("--corpus-split", default="", help="split of the render corpus (default: params)")
    r.add_argument("--seed", type=int, default=0, help="generation seed")
    r.set_defaults(func=_cmd_render)


__all__ = ["register_cli"]
