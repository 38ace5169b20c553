"""Stage ``geneval@<task>``: learning curves with controls and the generator leaderboard of one task.

Inputs: ``data/embed/<geneval.embedder>/<real_artifact>/clean`` (real audio) and ``.../<generator>/clean``.
Outputs: ``data/geneval/<task>-<embedder>/`` (``results.json``, ``curves.csv``, ``leaderboard.md``),
``plots/geneval/<task>-<embedder>.csv`` (the learning curves: ROC-AUC gain against f per source and r),
``plots/geneval/<task>-<embedder>.md`` (the leaderboard, for the HTML report and a fresh clone) and
``metrics/geneval/<task>-<embedder>.json`` (numbers only, the keys the builder's headline names).
"""

from __future__ import annotations

from typing import Any

from mgdata.geneval.build import build_geneval
from mgdata.store.files import write_atomic


def run(ctx) -> Any:
    """Stage entry: ``--task`` of the DVC matrix."""
    from mgdata.pipeline import StageOutcome

    a, cfg = ctx.args, ctx.section("geneval")
    out_dir = a.out_root / ctx.name
    result = build_geneval(a.embed_root, out_dir, cfg=cfg, task=a.task, executor=ctx.executor, progress=ctx.progress)
    for key, value in result.metrics.items():
        ctx.report.set(key, value)
    ctx.report.set("details", result.details)
    a.plots_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("csv", "md"):
        src = out_dir / ("curves.csv" if suffix == "csv" else "leaderboard.md")
        write_atomic(a.plots_dir / f"{ctx.name}.{suffix}", src.read_bytes())
    m = result.metrics
    oracle = m.get(f"gain_oracle_f{round(cfg.fractions[0] * 100)}_r{cfg.ratios[-1]:g}_roc_auc_macro", float("nan"))
    return StageOutcome(
        summary=f"{len(result.curves)} curve points over {len(cfg.sources())} sources; oracle gain at the smallest f "
        f"and largest r {oracle:+.3f} ROC-AUC -> {out_dir}",
        inputs=result.details["test_tracks"],
        outputs=len(result.curves),
    )
