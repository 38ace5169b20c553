"""Stages ``tokens@<segment_s>-<k>`` (stem-windows -> token sequences) and ``tokens_summary``."""

from __future__ import annotations

from mgdata.errors import ParamsError
from mgdata.pipeline import StageContext, StageOutcome


def run(ctx: StageContext) -> StageOutcome:
    """Tokenise every stem-window for one (segment_s, k) of the grid; the encoder is ``tokens.encoder``."""
    from mgdata.tokens.build import build_tokens
    from mgdata.tokens.config import config_name

    a = ctx.args
    cfg = ctx.section("tokens")
    try:
        segment_s, k = float(a.segment_s), int(a.k)
    except ValueError:
        raise ParamsError(
            "tokens", f"--segment-s {a.segment_s!r} / --k {a.k!r}: expected a number and an integer"
        ) from None
    # segment_s spelled as given: the folder must match what DVC renders for ${item.segment_s}.
    name = config_name(cfg.encoder, str(a.segment_s), k)
    result = build_tokens(
        a.stems,
        a.out_root / name,
        cfg=cfg,
        segment_s=segment_s,
        k=k,
        shards=ctx.shards,
        report=ctx.report,
        name=name,
        executor=ctx.executor,
        progress=ctx.progress,
    )
    st = result.stats["all"]
    c = result.counts
    return StageOutcome(
        summary=f"tokens {name}: {c['stem_windows_written']} stem-windows, {c['pairs_kept']} pairs, {st.n_tokens} "
        f"tokens, usage {st.usage:.3f}, entropy {st.entropy_bits:.3f} bits, mean run {st.mean_run_length:.2f}, "
        f"pair MI {result.pair_mi.get('mi_bits', 0.0):.3f} bits (shuffled "
        f"{result.pair_mi.get('mi_shuffled_bits', 0.0):.3f}), skipped {len(ctx.report.skipped)}",
        inputs=c["stem_windows_in"],
        outputs=c["stem_windows_written"],
    )


def run_summary(ctx: StageContext) -> StageOutcome:
    """Merge the metrics of every configuration of the grid into one table.

    Every number of each configuration is read from its stage report (its metrics file keeps the
    headline only). The table goes to the stage report and to ``--plots`` (CSV, one row per
    configuration, for ``dvc plots``); the metrics keep the count only, so ``dvc metrics show``
    stays narrow.
    """
    import csv
    import io

    from mgdata.tokens.summary import FIELDS, grid_names, summarize

    cfg = ctx.section("tokens")
    summary = summarize(ctx.args.reports_dir, grid_names(cfg.encoder, cfg.segment_s, cfg.k))
    ctx.report.set("configs", summary["configs"])
    ctx.report.set("n_configs", summary["n_configs"])
    fields = [f for f in FIELDS if any(f in entry for entry in summary["configs"].values())]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["config", *fields])
    for name, entry in summary["configs"].items():
        writer.writerow([name, *[entry.get(f, "") for f in fields]])
    out = ctx.args.plots
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(buf.getvalue())
    return StageOutcome(
        summary=f"{summary['n_configs']} configurations -> {out}",
        inputs=summary["n_configs"],
        outputs=summary["n_configs"],
    )
