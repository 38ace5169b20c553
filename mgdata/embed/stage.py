"""Stage ``embed@<embedder>-<artifact>-<scenario>``: an audio artifact -> embeddings (+ per-split matrices)."""

from __future__ import annotations

from pathlib import Path

from mgdata.pipeline import StageContext, StageOutcome


def run(ctx: StageContext) -> StageOutcome:
    """Embed one input artifact under one scenario."""
    from mgdata.embed.build import build_embeddings

    a = ctx.args
    cfg = ctx.section("embed")
    artifact_dir = a.artifact_dir or Path(cfg.artifact(a.artifact).path)
    out_dir = a.out_root / a.embedder / a.artifact / a.scenario
    result = build_embeddings(
        artifact_dir,
        out_dir,
        cfg=cfg,
        embedder=a.embedder,
        scenario=a.scenario,
        shards=ctx.shards,
        report=ctx.report,
        executor=ctx.executor,
        progress=ctx.progress,
    )
    n = sum(result.samples.values())
    per_split = ", ".join(f"{s} {k}" for s, k in sorted(result.samples.items())) or "none"
    return StageOutcome(
        summary=f"{n} samples ({per_split}), dim {result.dim}, skipped {len(ctx.report.skipped)}",
        inputs=n + len(ctx.report.skipped),
        outputs=n,
    )
