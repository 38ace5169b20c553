"""Stage ``generate@<generator>``: labelled training audio -> generated clips within the per-class budget."""

from __future__ import annotations

from pathlib import Path

from mgdata.pipeline import StageContext, StageOutcome


def run(ctx: StageContext) -> StageOutcome:
    """Generate the budgeted clips of one generator."""
    from mgdata.generate.build import build_generated

    a = ctx.args
    corpus = None if str(a.corpus).lower() in ("", "none") else Path(a.corpus)
    out_dir = a.out_dir or Path("data/generate") / a.generator
    result = build_generated(
        corpus,
        a.labels,
        out_dir,
        cfg=ctx.section("generate"),
        shards=ctx.shards,
        report=ctx.report,
        generator=a.generator,
        executor=ctx.executor,
        progress=ctx.progress,
    )
    b = result.plan.budget
    return StageOutcome(
        summary=f"{result.n_samples} samples, {result.seconds:.1f} s (budget {b.budget_s:.1f} s = {b.fraction:g} x "
        f"{b.train_seconds:.1f} s over {len(b.classes)} classes), failed {len(result.failed)}",
        inputs=len(b.classes),
        outputs=result.n_samples,
    )
