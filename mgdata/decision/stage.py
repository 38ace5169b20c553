"""Pipeline glue of the ``decision`` stage: paths and params in, stage report and summary out.

The builder (plan -> run -> summarise) is :func:`mgdata.decision.build.build_decision`; its names are
re-exported here so ``from mgdata.decision.stage import build_decision`` keeps working.
"""

from __future__ import annotations

import logging
from typing import Any

from mgdata.decision.build import ALPHA, aggregate, build_decision, headline, plan, render_examples
from mgdata.decision.records import DecisionResult
from mgdata.errors import InputError

log = logging.getLogger(__name__)


def format_report(metrics: dict[str, Any]) -> str:
    """Human summary: per setting, TPP median [IQR] of every configuration and the models' tests vs each baseline.

    The blocks are the first seed's; a first line gives the mean +- std over seeds and how many seeds agree.
    """
    lines = []
    trials = metrics.get("trials")
    if trials:
        a, n = trials["aggregate"], trials["n"]
        seeds = [trials["first_seed"] + i for i in range(n)]
        lines.append(
            f"[{n} seeds {seeds}] free TPP model {a['free_tpp_model']:.2f} +- {a['free_tpp_model_std']:.2f}"
            f" (random {a['free_tpp_random']:.2f}); model > random p<{ALPHA} for {a['free_p_vs_random_agree']}/{n}"
            f" seeds (largest p={a['free_p_vs_random']:.2g}); blocks below: seed {seeds[0]}"
        )
        if "free_perm_p_vs_context" in a:
            lines.append(
                f"[{n} seeds] free TPP argmax P(b|a) {a['free_tpp_cond_argmax']:.2f}, argmax P(b|a, roles)"
                f" {a['free_tpp_cond_argmax_role']:.2f}, context {a['free_tpp_context']:.2f}; paired permutation p"
                f" (largest over seeds) model > argmax P(b|a) {a['free_perm_p_vs_cond_argmax']:.2g},"
                f" > argmax P(b|a, roles) {a['free_perm_p_vs_cond_argmax_role']:.2g},"
                f" > context {a['free_perm_p_vs_context']:.2g}; constrained model > random p"
                f" {a['constrained_p_vs_random']:.2g}"
            )
    for setting in ("free", "constrained"):
        b = metrics[setting]
        lines.append(f"[{setting}]")
        for name, s in b["tpp"].items():
            line = f"  {name:<17} TPP median {s['median']:6.2f} IQR [{s['q1']:6.2f}, {s['q3']:6.2f}]"
            for tag, label in ((f"vs_{name}", "sampled"), (f"greedy_vs_{name}", "greedy")):
                if tag in b:
                    c = b[tag]
                    line += (
                        f" | {label} vs: p={c['p_value']:.2g} perm_p={c['perm_p_value']:.2g} "
                        f"dmed={c['median_diff']:+.2f} r_rb={c['rank_biserial']:+.2f}"
                    )
            lines.append(line)
        lines.append(
            f"  LCP mean model {b['lcp_mean']['model']:.2f} (non-silent {b['lcp_nonsilent_mean']['model']:.2f}),"
            f" greedy {b['lcp_mean']['model_greedy']:.2f}, random {b['lcp_mean']['random']:.2f}"
            f" (non-silent {b['lcp_nonsilent_mean']['random']:.2f}); entropy model {b['entropy_bits']['model']:.2f}"
            f" bits, ground truth {b['entropy_bits']['ground_truth']:.2f}"
        )
    return "\n".join(lines)


def run(ctx) -> Any:
    """Stage ``decision@<segment_s>-<k>``: one token configuration (named with ``tokens.encoder``)."""
    from mgdata.pipeline import StageOutcome

    a = ctx.args
    try:
        segment_s = float(a.segment_s)
        k = int(a.k)
    except ValueError:
        raise InputError("decision", f"--segment-s {a.segment_s!r} / --k {a.k!r}: expected numbers") from None
    name = ctx.name
    res = build_decision(
        a.tokens_root / name,
        a.out_root / name,
        cfg=ctx.section("decision"),
        segment_s=segment_s,
        name=name,
        k=k,
        stems_path=None if a.no_render == "yes" else a.stems,
        plots_dir=a.plots_dir / name,
        executor=ctx.executor,
        progress=True,
    )
    # Timings and memory depend on the machine, not the data: log them, keep them out of the metrics.
    m = {k: v for k, v in res.metrics.items() if k not in ("seconds", "peak_rss_mb")}
    # Resumed epochs depend on this run, not the data: a resumed run must write the same report as a fresh one.
    run_state = ("seconds_per_epoch", "train_tokens_per_s", "resumed_epochs")
    m["train"] = {k: v for k, v in m["train"].items() if k not in run_state}
    log.info(
        "decision %s: seconds %s, peak RSS %.0f MB",
        name,
        res.metrics.get("seconds"),
        res.metrics.get("peak_rss_mb", 0.0),
    )
    # Headline = mean (and _std) over seeds, p = the largest over seeds with how many seeds agree;
    # "results" keeps the first seed's full blocks (its model is the saved and rendered one).
    agg = m["trials"]["aggregate"]
    for key, value in agg.items():
        ctx.report.set(key, value)
    ctx.report.set("results", m)  # every block, in the stage report
    ctx.report.set("renders", [str(r) for r in res.renders])
    log.info("%s", format_report(res.metrics))
    n = m["trials"]["n"]
    return StageOutcome(
        summary=f"{m['n_test_tracks']} test tracks, {m['n_test_pairs']} pairs, {n} seeds, model > random "
        f"(p<{ALPHA}) for {agg['free_p_vs_random_agree']}/{n} seeds, {m['train']['epochs']} epochs "
        f"(best {m['train']['best_epoch']}, first seed), {len(res.renders)} renders",
        inputs=m["n_test_pairs"],
        outputs=m["n_test_pairs"],
    )


__all__ = [
    "ALPHA",
    "DecisionResult",
    "aggregate",
    "build_decision",
    "format_report",
    "headline",
    "plan",
    "render_examples",
    "run",
]
