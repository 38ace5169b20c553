"""The leaderboard (markdown) and the files of a ``geneval`` run: ``results.json``, ``curves.csv``, ``leaderboard.md``."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from mgdata.report import write_json
from mgdata.store.files import write_atomic


def _fmt(v: Any, digits: int = 3) -> str:
    return "n/a" if v is None or v != v else f"{v:+.{digits}f}" if isinstance(v, float) else str(v)


def leaderboard(task: str, embedder: str, details: dict[str, Any], cfg) -> str:
    """One table per task: sources as rows; per (f, r) the ROC-AUC gain with its 95 % interval and p; then
    synthetic-only F1 (p), label validity with the source unseen, novelty and FD."""
    points = {(r["source"], r["f"], r["r"]): r for r in details["points"]}
    cols = [(f, r) for f in cfg.fractions for r in cfg.ratios]
    head = ["source", *[f"f={f:g} r={r:g}" for f, r in cols], "synthetic-only F1 (p)", "validity", "novelty", "FD"]
    lines = [
        f"### Generator leaderboard: {task} / {embedder}",
        "",
        f"Gain in macro ROC-AUC over the real-only probe at real fraction f and generated-to-real ratio r "
        f"(mean over {cfg.trials} seeds; [95 % bootstrap interval over {details['test_tracks']} test tracks]; "
        f"one-sided paired permutation p). Validity: accuracy of the real-data probe on clips whose source track "
        f"it never saw (chance {details['chance_accuracy']:.2f}). Novelty: how often a clip's nearest real clip is a "
        "training clip rather than a test clip, relative to real validation clips (1 = as novel as unseen real "
        f"music; copies of training clips sit above; on the {details['novelty_embedder']} embedding). MDE per f: "
        "the smallest gain "
        "detectable at alpha 0.05 with power 0.8.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for source in cfg.sources():
        s = details["sources"][source]
        cells = [source]
        for f, r in cols:
            p = points[(source, f, r)]
            star = "**" if p["p_roc_auc_macro"] < 0.05 else ""
            cells.append(
                f"{star}{_fmt(p['gain_roc_auc_macro'])}{star} [{_fmt(p['ci_low_roc_auc_macro'])}, "
                f"{_fmt(p['ci_high_roc_auc_macro'])}] p={p['p_roc_auc_macro']:.3f}"
                + (f" (r={p['r_effective']:.2f})" if abs(p["r_effective"] - r) > 0.1 * r else "")
            )
        syn = s.get("synthetic_only")
        cells.append(f"{syn['f1_macro']:.3f} (p={syn['p']:.3f})" if syn else "n/a")
        v = s.get("validity") or {}
        cells.append(f"{v['accuracy']:.2f} (n={v['n']})" if v.get("n") else "n/a")
        cells += [f"{s['novelty']:.2f}" if s["novelty"] == s["novelty"] else "n/a", f"{s['fd']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "MDE (ROC-AUC, median over the points at f): "
        + ", ".join(f"f={f}: {v:.3f}" for f, v in details["mde_roc_auc_macro"].items())
        + f". Pool: {details['pool_tracks']} tracks; real tracks per f: {details['curve_tracks']}. "
        "(r=x): the source had fewer rows than asked; x is the ratio drawn.",
        "",
    ]
    return "\n".join(lines)


def curves_csv(curves: list[dict[str, Any]]) -> str:
    """One row per (source, f, r) with every statistic (the learning-curve plot reads it)."""
    buf = io.StringIO()
    keys = list(curves[0]) if curves else []
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for row in curves:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def write_outputs(out: Path, result) -> None:
    """``results.json`` (every figure), ``curves.csv`` and ``leaderboard.md`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", result.details)
    write_atomic(out / "curves.csv", curves_csv(result.curves).encode())
    write_atomic(out / "leaderboard.md", result.leaderboard_md.encode())


__all__ = ["curves_csv", "leaderboard", "write_outputs"]
