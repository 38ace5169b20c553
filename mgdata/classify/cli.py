"""CLI: ``mgdata metrics`` (MediaEval 2019 metrics of saved matrices) and ``mgdata classify predict``."""

from __future__ import annotations

import argparse
import json
import math
import sys


def _fmt(v: float) -> float | None:
    return None if math.isnan(v) else v  # NaN is not JSON: an undefined figure prints as null


def _cmd_metrics(args: argparse.Namespace) -> int:
    from mgdata.classify.metrics import load_matrix, mediaeval_metrics, read_thresholds
    from mgdata.errors import InputError

    g = load_matrix(args.groundtruth, "ground truth")
    p = load_matrix(args.predictions, "predictions")
    if p.shape != g.shape:
        raise InputError(args.predictions, f"shape {p.shape} does not match the ground truth {g.shape}")
    names = None
    thresholds = None
    decisions = load_matrix(args.decisions, "decisions") if args.decisions else None
    if decisions is None and args.thresholds:
        names, thresholds = read_thresholds(args.thresholds, g.shape[1])
    result = mediaeval_metrics(g, p, decisions, thresholds=thresholds, class_names=names)
    if args.json:
        print(json.dumps({k: _fmt(v) for k, v in result.items()}, sort_keys=False))
    else:
        for k, v in result.items():
            print(f"{k:<16} {v:.4f}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from mgdata.classify.predict import predict_files, write_predictions

    result = predict_files(args.model, args.audio, labels_csv=args.labels)
    for name, reason in result["skipped"]:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if args.out:
        write_predictions(result, args.out)
    if args.json:
        print(json.dumps(result, sort_keys=True, default=_fmt))
    else:
        for row in result["rows"]:
            scores = " ".join(f"{c}={s:.3f}" for c, s in row["scores"].items())
            print(f"{row['path']}\t{row['predicted']}\t{scores}")
        if "accuracy" in result:
            print(f"accuracy {result['accuracy']:.4f} over {result['n_labelled']} labelled files")
    return 0 if result["rows"] or not args.audio else 1


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``metrics`` and ``classify predict`` to the ``mgdata`` CLI."""
    m = sub.add_parser(
        "metrics",
        help="MediaEval 2019 metrics (ROC-AUC, PR-AUC, precision, recall, F1; macro + micro)",
        description="Metrics of an (n, c) 0/1 ground-truth matrix and (n, c) scores. Decisions: --decisions, else "
        "score >= per-class threshold from --thresholds (tag<TAB>threshold lines), else argmax per row.",
    )
    m.add_argument("--groundtruth", required=True, help="(n, c) 0/1 matrix (.npy)")
    m.add_argument("--predictions", required=True, help="(n, c) scores (.npy)")
    m.add_argument("--decisions", default=None, help="(n, c) 0/1 decisions (.npy)")
    m.add_argument("--thresholds", default=None, help="tag<TAB>threshold per class, in column order")
    m.add_argument("--json", action="store_true", help="print one JSON object with the 10 metric keys")
    m.set_defaults(func=_cmd_metrics)

    c = sub.add_parser("classify", help="classify audio with a saved probe")
    c_sub = c.add_subparsers(dest="classify_command", metavar="SUBCOMMAND")
    p = c_sub.add_parser(
        "predict",
        help="embed and classify audio files with a probe folder",
        description="Decode each file (wav/flac/mp3/ogg/opus, any rate and channel count), embed it as the model's "
        "embedder expects, predict. A file that cannot be decoded is reported by name and skipped.",
    )
    p.add_argument("--model", required=True, help="probe folder (e.g. data/classify/quadrant-logmel/model)")
    p.add_argument("--audio", nargs="+", required=True, help="audio files")
    p.add_argument("--labels", default=None, help="CSV with columns file,label: adds accuracy and a confusion matrix")
    p.add_argument("--out", default=None, help="write one CSV row per file (path, predicted, score per class)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_predict)
