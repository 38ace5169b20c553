"""Stage ``relabel``: corpus manifest (and MTG-Jamendo metadata when configured) -> quadrant tables."""

from __future__ import annotations

import shutil

from mgdata.pipeline import StageContext, StageOutcome


def run(ctx: StageContext) -> StageOutcome:
    """Relabel the corpus manifest (and MTG-Jamendo when ``relabel.jamendo.metadata_dir`` is set)."""
    from mgdata.labels.relabel import build_relabel
    from mgdata.labels.stats import plot_hours_per_class, quadrant_table, table_to_dict

    cfg = ctx.section("relabel")
    # Start clean so a jamendo_quadrants.parquet from an earlier run with metadata_dir set cannot linger.
    shutil.rmtree(ctx.args.out_dir, ignore_errors=True)
    # --manifest none: no corpus (the MTG-Jamendo pipeline relabels the official split files only).
    manifest = None if str(ctx.args.manifest).lower() == "none" else ctx.args.manifest
    if manifest is None and cfg.jamendo.metadata_dir is None:
        from mgdata.errors import ParamsError

        raise ParamsError("relabel.jamendo.metadata_dir", "is not set and --manifest is none: nothing to relabel")
    results = build_relabel(manifest, ctx.args.out_dir, cfg=cfg, report=ctx.report)
    tables = {}
    for name, result in results.items():
        tables[name] = quadrant_table(result.table)
        d = result.to_dict()
        ctx.report.set(name, {**d, "per_split": table_to_dict(tables[name])})
        for key, value in d.items():  # headline numbers of each source, flat for `dvc metrics`
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                ctx.report.set(f"{name}_{key}", value)
    ctx.report.set("mapping", cfg.mapping)
    plot_hours_per_class(tables, ctx.args.plots / "hours_per_class.png")
    # The same numbers as a DVC data plot, so `dvc plots diff` overlays runs (one row per dataset x split x class).
    rows = [{"dataset": name, **row} for name, t in tables.items() for row in t.to_dicts()]
    import polars as pl

    csv = (
        pl.DataFrame(
            rows,
            schema={
                "dataset": pl.String,
                "split": pl.String,
                "quadrant": pl.String,
                "tracks": pl.Int64,
                "hours": pl.Float64,
            },
        )
        if rows
        else pl.DataFrame()
    )
    csv.write_csv(ctx.args.plots / "hours_per_class.csv", float_precision=4)
    parts = [f"{n}: {r.quadrant_counts()} dropped={r.dropped} conflicts={r.conflicts}" for n, r in results.items()]
    labelled = sum(len(r.table) for r in results.values())
    return StageOutcome(summary="; ".join(parts), inputs=labelled, outputs=labelled)
