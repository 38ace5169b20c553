"""Stage ``stems``: multitrack tracks -> stem-windows stored once + the (A, B) pair index (``pairs.parquet``)."""

from __future__ import annotations

from mgdata.pipeline import StageContext, StageOutcome


def run(ctx: StageContext) -> StageOutcome:
    """Build ``data/stems`` from the source ``stems.source`` names (corpus or MoisesDB)."""
    from mgdata.stems.build import build_stems_stage

    a = ctx.args
    cfg = ctx.section("stems")
    manifest = getattr(a, "manifest", None)
    result = build_stems_stage(
        cfg,
        ctx.shards,
        corpus_stems_dir=a.corpus_stems,
        out_dir=a.out_dir,
        manifest=manifest if manifest is not None and manifest.exists() else None,
        report=ctx.report,
        executor=ctx.executor,
        progress=ctx.progress,
    )
    return StageOutcome(
        summary=f"stems ({cfg.source}): {result.tracks_used}/{result.tracks_in} tracks, {result.windows} windows, "
        f"{result.stem_windows} stem-windows, pairs per split {dict(sorted(result.pairs_per_split.items()))}, "
        f"near-duplicate pairs dropped {result.pairs_near_duplicate}, silent stem-windows "
        f"{result.silent_stem_windows}, skipped {len(ctx.report.skipped)}",
        inputs=result.tracks_in,
        outputs=result.stem_windows,
    )
