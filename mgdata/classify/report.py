"""What people read: the Table III layout in markdown, confusion matrices (CSV + PNG; the baseline's test
confusion as the rows DVC's ``confusion`` template draws), per-class delta plots, and the flat numbers-only
metrics json.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Table III columns: (metric key prefix, header).
TABLE_COLUMNS = (
    ("f1_macro", "F1 macro"),
    ("f1_micro", "F1 micro"),
    ("pr_auc_macro", "PR-AUC macro"),
    ("pr_auc_micro", "PR-AUC micro"),
    ("roc_auc_macro", "ROC-AUC macro"),
    ("roc_auc_micro", "ROC-AUC micro"),
)


def numbers_only(obj: Any) -> Any:
    """Keep the numeric leaves of nested dicts (NaN -> dropped, bools -> 0/1) for ``dvc metrics``."""
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            v = numbers_only(v)
            if v is not None and v != {}:
                out[str(k)] = v
        return out
    if isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if math.isnan(float(obj)) else round(float(obj), 6)
    return None


def results_table(
    task: str,
    embedder: str,
    baseline: Mapping[str, float],
    augmented: Mapping[str, Mapping[str, float]],
    *,
    highlight_rel: float = 0.01,
    references: Mapping[str, Mapping[str, float]] | None = None,
) -> str:
    """Markdown table laid out like the seed's Table III.

    Rows: baseline, then ``+ <generator>`` per augmented run (and the reference baselines below);
    columns F1 / PR-AUC / ROC-AUC x macro / micro as ``mean ± std``; an augmented cell whose mean
    is at least ``highlight_rel`` (relative) above the baseline is bold.
    """
    head = "| training data | " + " | ".join(h for _, h in TABLE_COLUMNS) + " |"
    lines = [f"### {task} ({embedder})", "", head, "|" + "---|" * (len(TABLE_COLUMNS) + 1)]

    def cell(summary: Mapping[str, float], key: str, mark: bool) -> str:
        m, s = summary.get(f"{key}_mean", float("nan")), summary.get(f"{key}_std", float("nan"))
        text = f"{m:.3f} ± {s:.3f}"
        return f"**{text}**" if mark else text

    lines.append("| real (baseline) | " + " | ".join(cell(baseline, k, False) for k, _ in TABLE_COLUMNS) + " |")
    for gen, summ in sorted(augmented.items()):
        cells = []
        for k, _ in TABLE_COLUMNS:
            b, n = baseline.get(f"{k}_mean", float("nan")), summ.get(f"{k}_mean", float("nan"))
            cells.append(cell(summ, k, bool(b > 0 and (n - b) / b >= highlight_rel)))
        lines.append(f"| real + {gen} | " + " | ".join(cells) + " |")
    for name, m in sorted((references or {}).items()):
        lines.append(f"| {name} (reference) | " + " | ".join(f"{m[k]:.3f}" for k, _ in TABLE_COLUMNS) + " |")
    lines += [
        "",
        f"Bold: mean >= {highlight_rel:.0%} relative above the baseline. Track-level MediaEval 2019 metrics "
        "on the real test split; mean ± std over trials.",
        "",
    ]
    return "\n".join(lines)


def write_confusion(out_dir: str | Path, name: str, confusion: Mapping[str, Any], title: str) -> list[Path]:
    """``{name}.csv`` (one row per sample: actual, predicted -- DVC's confusion template),
    ``{name}_normalized.csv`` (row-normalised matrix) and ``{name}.png``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes: Sequence[str] = confusion["classes"]
    paths = [out_dir / f"{name}.csv", out_dir / f"{name}_normalized.csv", out_dir / f"{name}.png"]
    with open(paths[0], "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["actual", "predicted"])
        w.writerows(confusion["pairs"])
    norm = np.asarray(confusion["normalized"], dtype=np.float64)
    with open(paths[1], "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["actual", *classes])
        for c, row in zip(classes, norm):
            w.writerow([c, *(f"{v:.6f}" for v in row)])
    _heatmap(paths[2], norm, classes, f"{title} (n={confusion['n']}, acc={confusion['accuracy']:.3f})")
    return paths


def write_track_confusion(path: str | Path, rows: Sequence[tuple[str, str, str]]) -> Path:
    """``track,actual,predicted`` CSV, one row per test track (DVC's ``confusion`` template: x ``actual``,
    y ``predicted``; DVC counts the rows per cell)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["track", "actual", "predicted"])
        w.writerows(rows)
    return path


def permutation_line(perm: Mapping[str, Any], n_tracks: int, what: str = "baseline") -> str:
    """One sentence of a per-seed permutation test: each seed's p and how many seeds agree at the level."""
    per_seed = perm.get("per_seed", {})
    ps = ", ".join(f"{d.get('p_value', float('nan')):.4f}" for d in per_seed.values())
    auc = ", ".join(f"{d.get('roc_auc_macro', float('nan')):.3f}" for d in per_seed.values())
    return (
        f"Permutation test of the {what} (labels permuted over {n_tracks} test tracks, model fixed, "
        f"{perm.get('n_permutations', 0)} permutations, one test per seed; seeds {', '.join(per_seed)}): "
        f"macro ROC-AUC {auc}, p = {ps}; {perm.get('n_significant', 0)} of {perm.get('n_trials', 0)} seeds "
        f"p < {perm.get('alpha', 0.05):g}.\n"
    )


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "mgdata"  # deterministic ids
    return plt


def _heatmap(path: Path, m: np.ndarray, classes: Sequence[str], title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(classes), 1.0 + 0.8 * len(classes)))
    ax.imshow(m, vmin=0.0, vmax=1.0, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                f"{m[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if m[i, j] > 0.5 else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("inherited (true)")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def write_delta_plot(path: str | Path, per_class_delta: Mapping[str, Mapping[str, float]], title: str) -> Path:
    """Bar chart of the per-class F1 and ROC-AUC change (augmented - baseline)."""
    plt = _plt()
    classes = sorted(per_class_delta)
    f1 = [per_class_delta[c]["f1"] for c in classes]
    roc = [per_class_delta[c]["roc_auc"] for c in classes]
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(2 + 0.6 * len(classes), 3))
    ax.bar(x - 0.2, f1, 0.4, label="F1")
    ax.bar(x + 0.2, np.nan_to_num(roc), 0.4, label="ROC-AUC")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xticks(x, classes, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("augmented - baseline")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


__all__ = [
    "TABLE_COLUMNS",
    "numbers_only",
    "permutation_line",
    "results_table",
    "write_confusion",
    "write_delta_plot",
    "write_track_confusion",
]
