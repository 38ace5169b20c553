"""Stage ``classify@<task>-<embedder>``: every classifier experiment of one (task, embedder) pair.

Inputs are the consolidated embedding tables of the ``embed`` stage:
``data/embed/<embedder>/<classify.real_artifact>/<scenario>/{split}.npy + .parquet`` (real audio) and
``data/embed/<embedder>/<generator>/clean/`` (generated audio; a row carries its source track's id, split
and labels). In order, into ``data/classify/<task>-<embedder>/``:

* ``baseline/``: real train -> real test, ``classify.trials`` trials (``baseline/model`` is trial 0, the
  folder ``mgdata classify predict`` takes), a permutation p-value per seed, majority/chance references,
  ``confusion_test.csv`` (trial 0 on the test split, one row per track: the matrix ``dvc plots`` draws);
* per generator G: ``augmented@G/`` (real + generated train; deltas vs the baseline, per-class delta
  plot), ``generated_classified@G/`` (confusion matrices, source track in training / unseen),
  ``synthetic_only@G`` (trained on generated audio only), ``fad@G`` (Frechet distance vs real train);
* ``robustness``: every probe on each deformation scenario of the test split (drop vs clean);
* ``results.md``: the seed paper's Table III layout (baseline and each generator, cells >= +1 % marked).

Every experiment that trains runs ``classify.trials`` seeds: mean and std over them, significance tests once
per seed over tracks, with the count of seeds that agree. ``metrics/classify/<task>-<embedder>.json`` holds
the headline (:func:`headline`); the stage report holds every block. The builder (plan -> run -> summarise) is
:func:`mgdata.classify.build.build_classify`; this module keeps the pipeline glue.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mgdata.classify.build import build_classify
from mgdata.classify.records import ClassifyResult

log = logging.getLogger(__name__)


def run_all(task: str, embedder: str, cfg, *, embed_root: Path, out_dir: Path) -> dict[str, Any]:
    """Run every experiment of (task, embedder); returns the metrics (numbers only, one block each).

    Kept for callers of the old entry; the builder is :func:`mgdata.classify.build.build_classify`.

    Raises:
        InputError: A missing embedding table, task column or class (names it).
    """
    return build_classify(embed_root, out_dir, cfg=cfg, task=task, embedder=embedder).metrics


def headline(metrics: dict[str, Any], cfg) -> dict[str, float]:
    """The numbers per (task, embedder) that ``dvc metrics show/diff`` lists.

    ``dvc metrics show`` of the whole pipeline is one table whose columns are the union of every metrics
    file's keys, kept under 50 (``tests/test_pipeline_framework.py``), so classify keeps the figures that
    answer its question -- does generated audio help a classifier, and is it close to real audio -- each
    model figure that is a mean over seeds with its ``_std``: the baseline (macro ROC-AUC and F1; the largest
    permutation p over seeds), the augmented relative deltas, the unseen-source generated-classified accuracy
    (single-label tasks), synthetic-only ROC-AUC, and FAD (no seed). Chance/majority references, PR-AUC,
    source-in-training accuracy, robustness drops, seed-agreement counts and every count are in the stage
    report (``experiments``) and ``results.md``.
    """
    b = metrics["baseline"]
    s = b["summary"]
    out = {
        "baseline_roc_auc_macro": s.get("roc_auc_macro_mean"),
        "baseline_roc_auc_macro_std": s.get("roc_auc_macro_std"),
        "baseline_f1_macro": s.get("f1_macro_mean"),
        "baseline_f1_macro_std": s.get("f1_macro_std"),
        # the weakest seed's evidence: below 0.05 iff every seed's test is
        "baseline_perm_p_max": b.get("permutation", {}).get("p_value_max"),
    }
    for g in cfg.generators:
        delta = metrics.get(f"augmented@{g}", {}).get("delta", {})
        for k in ("f1_macro", "roc_auc_macro"):
            out[f"augmented_{g}_{k}_rel"] = delta.get(f"{k}_rel")
            out[f"augmented_{g}_{k}_rel_std"] = delta.get(f"{k}_rel_std")
        unseen = metrics.get(f"generated_classified@{g}", {}).get("source_unseen", {}).get("summary", {})
        out[f"generated_{g}_acc_source_unseen"] = unseen.get("accuracy_mean")  # absent for multi-label tasks
        out[f"generated_{g}_acc_source_unseen_std"] = unseen.get("accuracy_std")
        syn = metrics.get(f"synthetic_only@{g}", {}).get("summary", {})
        out[f"synthetic_only_{g}_roc_auc_macro"] = syn.get("roc_auc_macro_mean")
        out[f"synthetic_only_{g}_roc_auc_macro_std"] = syn.get("roc_auc_macro_std")
        out[f"fad_{g}"] = metrics.get(f"fad@{g}", {}).get("overall", {}).get("fd")
    return {k: v for k, v in out.items() if isinstance(v, (int, float))}


def run(ctx) -> Any:
    """Stage entry: ``--task`` x ``--embedder`` of the DVC matrix."""
    from mgdata.pipeline import StageOutcome

    a = ctx.args
    cfg = ctx.section("classify")
    out_dir = a.out_root / ctx.name
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = build_classify(a.embed_root, out_dir, cfg=cfg, task=a.task, embedder=a.embedder).metrics
    for key, value in headline(metrics, cfg).items():
        ctx.report.set(key, value)
    ctx.report.set("experiments", metrics)  # every block, in the stage report
    # Under plots/ (committed, cache: false) so a fresh clone's `dvc plots show/diff` and the HTML report have
    # them without the data: the results table (markdown: a stage output, not a DVC plot) and the baseline's
    # track-level test confusion (a DVC plot, template `confusion`).
    plots = a.plots_dir / f"{ctx.name}.md"
    plots.parent.mkdir(parents=True, exist_ok=True)
    plots.write_text((out_dir / "results.md").read_text(encoding="utf-8"), encoding="utf-8")
    confusion = a.plots_dir / "confusion" / f"{ctx.name}.csv"
    confusion.parent.mkdir(parents=True, exist_ok=True)
    confusion.write_bytes((out_dir / "baseline" / "confusion_test.csv").read_bytes())
    s = metrics["baseline"]["summary"]
    perm = metrics["baseline"].get("permutation", {})
    return StageOutcome(
        summary=f"baseline macro ROC-AUC {s.get('roc_auc_macro_mean', float('nan')):.3f} ± "
        f"{s.get('roc_auc_macro_std', float('nan')):.3f} over {cfg.trials} seeds (permutation p < 0.05 for "
        f"{perm.get('n_significant', 0)} of {perm.get('n_trials', 0)}), experiments: {', '.join(metrics)} "
        f"-> {out_dir}",
        inputs=metrics["baseline"]["counts"].get("test_tracks", 0),
        outputs=len(metrics),
    )


__all__ = ["ClassifyResult", "build_classify", "headline", "run", "run_all"]
