"""Stage ``hub_pull@<name>``: a published artifact at a pinned revision -> ``data/hub/<name>`` (verified)."""

from __future__ import annotations

from mgdata.pipeline import StageContext, StageOutcome


def run(ctx: StageContext) -> StageOutcome:
    """Pull one ``hub.inputs`` entry (reused from the local copy when it still matches its lock)."""
    from mgdata.hub.pull import pull_artifact

    hub = ctx.section("hub")
    item = hub.input(ctx.args.name)
    res = pull_artifact(item.uri, ctx.args.out_root / item.name, policy=hub.policy())
    ctx.report.set("files", res.files)
    ctx.report.set("uri", item.uri)
    ctx.report.set("commit", res.commit)
    return StageOutcome(
        summary=f"{item.uri} -> {res.out_dir} (commit {res.commit[:12]}, {res.files} files)",
        inputs=1,
        outputs=res.files,
    )
