"""Stage ``corpus``: params -> :func:`mgdata.corpus.build.build_corpus` -> report."""

from __future__ import annotations

from mgdata.pipeline import StageContext, StageOutcome


def run(ctx: StageContext) -> StageOutcome:
    """Render the corpus into ``--out-dir``."""
    from mgdata.corpus.build import build_corpus

    result = build_corpus(
        ctx.args.out_dir,
        cfg=ctx.section("corpus"),
        shards=ctx.shards,
        report=ctx.report,
        progress=ctx.progress,
        executor=ctx.executor,
    )
    m = ctx.report.to_dict()
    return StageOutcome(
        summary=f"{m['tracks']} tracks ({m['stems']} stems, {m['hours']:.3f} h), per split {m['tracks_per_split']}, "
        f"skipped {len(ctx.report.skipped)}",
        inputs=m.get("scores_considered", 0),
        outputs=len(result.tracks),
    )
