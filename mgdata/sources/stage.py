"""Stage ``jamendo`` (outside the default pipeline): MTG-Jamendo audio -> clips in the corpus mix format."""

from __future__ import annotations

from mgdata.pipeline import StageContext, StageOutcome


def run_jamendo(ctx: StageContext) -> StageOutcome:
    """Cut the clips of ``relabel.jamendo`` into ``--out-dir``."""
    from mgdata.sources.jamendo_clips import build_jamendo_clips

    result = build_jamendo_clips(
        ctx.args.out_dir,
        cfg=ctx.section("relabel").jamendo,
        shards=ctx.shards,
        report=ctx.report,
        progress=ctx.progress,
    )
    m = ctx.report.to_dict()
    return StageOutcome(
        summary=f"{m['tracks']} clips ({m['hours']:.3f} h) per split {m['tracks_per_split']}, "
        f"resumed {result.resumed_tracks}, skipped {len(ctx.report.skipped)}",
        inputs=m.get("tracks_in_split_files", m["tracks"]),
        outputs=m["tracks"],
    )
