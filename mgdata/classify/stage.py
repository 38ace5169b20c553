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
the headline (:func:`mgdata.classify.build.headline`); the stage report holds every block. The builder (plan ->
run -> summarise) is :func:`mgdata.classify.build.build_classify`; this module keeps the pipeline glue (paths,
params, the stage report) and re-exports ``build_classify`` and ``headline``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mgdata.classify.build import build_classify, headline
from mgdata.classify.records import ClassifyResult

log = logging.getLogger(__name__)


def run_all(task: str, embedder: str, cfg, *, embed_root: Path, out_dir: Path) -> dict[str, Any]:
    """Run every experiment of (task, embedder); returns the metrics (numbers only, one block each).

    Kept for callers of the old entry; the builder is :func:`mgdata.classify.build.build_classify`.

    Raises:
        InputError: A missing embedding table, task column or class (names it).
    """
    return build_classify(embed_root, out_dir, cfg=cfg, task=task, embedder=embedder).metrics


def run(ctx) -> Any:
    """Stage entry: ``--task`` x ``--embedder`` of the DVC matrix."""
    from mgdata.pipeline import StageOutcome

    a = ctx.args
    cfg = ctx.section("classify")
    out_dir = a.out_root / ctx.name
    out_dir.mkdir(parents=True, exist_ok=True)
    result = build_classify(a.embed_root, out_dir, cfg=cfg, task=a.task, embedder=a.embedder, progress=ctx.progress)
    metrics = result.metrics
    for key, value in headline(metrics, cfg).items():
        ctx.report.set(key, value)
    ctx.report.set("experiments", metrics)  # every block, in the stage report
    # Which classes the macro metrics cover (names): on a small split fewer than the task's vocabulary.
    ctx.report.set("classes", result.classes)
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
