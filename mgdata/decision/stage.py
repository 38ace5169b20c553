"""The ``decision`` stage builder: token artifact -> trained model, evaluation, plots and renders.

plan (read pairs, check splits) -> run (train with checkpoints, evaluate, render a few test
pairs) -> summarise (metrics dict of numbers, plots, eval tables).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import resource
import time
from pathlib import Path
from typing import Any

from mgdata.decision.config import DecisionConfig
from mgdata.decision.data import TokenData, load_pairs
from mgdata.decision.evaluate import EvalResult, evaluate, write_plots
from mgdata.decision.generate import generate
from mgdata.decision.metrics import silence_token
from mgdata.decision.render import (
    SegmentCorpus,
    corpus_keys,
    read_window_audio,
    render_pair,
)
from mgdata.decision.train import TrainResult, check_pairs, train_model
from mgdata.errors import InputError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DecisionResult:
    """What :func:`build_decision` produced."""

    name: str
    train: TrainResult
    evaluation: EvalResult
    metrics: dict[str, Any]
    renders: list[dict[str, Any]]


def plan(tokens_path: str | Path, cfg: DecisionConfig, k: int | None = None) -> TokenData:
    """Read the token artifact and check K and every split the stage needs (clear errors before training)."""
    data = load_pairs(tokens_path)
    if k is not None and data.k != k:
        raise InputError(data.path / "codebook.npy", f"codebook has K={data.k}, the configuration asks for K={k}")
    for split in (cfg.train_split, cfg.val_split, cfg.test_split):
        check_pairs(data.split(split), data.k, cfg.max_len, split)
    return data


def render_examples(
    data: TokenData, model, stems_path: str | Path, out_dir: str | Path, cfg: DecisionConfig, segment_s: float, n: int
) -> list[dict[str, Any]]:
    """Render the first ``n`` test pairs (sorted by pair key, one per track first) into ``out_dir``."""
    test = sorted(data.split(cfg.test_split), key=lambda p: (p.track_id, p.pair_key))
    picks, seen = [], set()
    for p in test:  # one pair per track, so the examples differ
        if p.track_id not in seen:
            picks.append(p)
            seen.add(p.track_id)
        if len(picks) == n:
            break
    if not picks:
        return []
    ckeys = corpus_keys(data, cfg.render_corpus_split, cfg.render_corpus_windows)
    audio = read_window_audio(stems_path, set(ckeys) | {p.a_key for p in picks})
    corpus = SegmentCorpus.build({k: audio[k] for k in ckeys}, {k: data.windows[k]["tokens"] for k in ckeys}, segment_s)
    allowed = corpus.allowed()
    preds = generate(
        model,
        [p.a for p in picks],
        [len(p.b) for p in picks],
        seed=cfg.seed,
        indices=list(range(len(picks))),
        strategy=cfg.strategy,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        temperature=cfg.temperature,
        allowed=[allowed] * len(picks),
    )
    out = []
    for p, pred in zip(picks, preds):
        paths = render_pair(
            out_dir, p, pred, audio, corpus, data.codebook, crossfade_s=cfg.crossfade_s, track_id=p.track_id
        )
        out.append({"pair_key": p.pair_key, **{k: str(v) for k, v in paths.items()}})
    return out


def build_decision(
    tokens_path: str | Path,
    out_dir: str | Path,
    *,
    cfg: DecisionConfig,
    segment_s: float,
    name: str = "",
    k: int | None = None,
    stems_path: str | Path | None = None,
    plots_dir: str | Path | None = None,
    executor=None,
    progress: bool = False,
) -> DecisionResult:
    """Train, evaluate and render one token configuration.

    Args:
        tokens_path: Token artifact (either layout, see :mod:`mgdata.decision.data`).
        out_dir: Output folder: ``model.pt``, ``checkpoints/last.pt``, ``eval.json``, ``renders/``.
        cfg: Section ``decision``.
        segment_s: Segment length of the tokens (seconds), for rendering.
        name: Configuration name (plots titles).
        k: Expected codebook size (None: take the artifact's).
        stems_path: Stems artifact with the stem-window audio; None skips the renders.
        plots_dir: Folder for the plots; None skips them.
        executor: Where evaluation's generation runs (section ``executor``; None: in this process); the
            results do not depend on it.
        progress: Show a progress bar over evaluation's generation.

    Raises:
        InputError: See :func:`plan`.
    """
    t0 = time.perf_counter()
    data = plan(tokens_path, cfg, k)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tr = train_model(data.split(cfg.train_split), data.split(cfg.val_split), data.k, cfg, out)
    if not tr.finished:
        raise InputError(out, "training stopped before the schedule ended")
    t_train = time.perf_counter() - t0
    sil = silence_token(data.codebook)
    ev = evaluate(
        tr.model,
        data.split(cfg.test_split),
        data.split(cfg.train_split),
        cfg,
        silence=sil,
        executor=executor,
        progress=progress,
    )
    t_eval = time.perf_counter() - t0 - t_train
    renders: list[dict[str, Any]] = []
    if stems_path is not None and cfg.n_renders > 0:
        renders = render_examples(data, tr.model, stems_path, out / "renders", cfg, segment_s, cfg.n_renders)
    metrics = {
        **ev.metrics,
        "train": tr.summary(),
        "layout_per_stem_window": int(data.layout == "stem-window"),
        "seconds": {"train": t_train, "evaluate": t_eval, "total": time.perf_counter() - t0},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "n_renders": len(renders),
    }
    tables = {**ev.tables(), "history": tr.history, "renders": renders}
    (out / "eval.json").write_text(json.dumps(tables, indent=1, sort_keys=True, default=float) + "\n")
    if plots_dir is not None:
        write_plots(ev, plots_dir, title=name)
    log.info(
        "decision %s: model TPP median %.2f vs random %.2f (p=%.2g)",
        name,
        ev.metrics["free"]["tpp"]["model"]["median"],
        ev.metrics["free"]["tpp"]["random"]["median"],
        ev.metrics["free"]["vs_random"]["p_value"],
    )
    return DecisionResult(name=name, train=tr, evaluation=ev, metrics=metrics, renders=renders)


def format_report(metrics: dict[str, Any]) -> str:
    """Human summary: per setting, TPP median [IQR] of every configuration and the models' tests vs each baseline."""
    lines = []
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


__all__ = ["DecisionResult", "build_decision", "format_report", "plan", "render_examples"]


BASELINES = ("random", "most_frequent", "cond_argmax", "cond_sample", "model_shuffled_a")


def headline(m: dict[str, Any]) -> dict[str, float]:
    """The numbers ``dvc metrics show/diff`` lists per configuration (the full blocks are in the stage report).

    Per setting (free, constrained): TPP median of the model and of every baseline, and the one-sided
    Mann-Whitney p and rank-biserial effect of the (sampled) model against each baseline, over test tracks.
    """
    out: dict[str, float] = {
        "test_tracks": m["n_test_tracks"],
        "test_pairs": m["n_test_pairs"],
        "epochs": m["train"]["epochs"],
        "best_epoch": m["train"]["best_epoch"],
        "best_val_loss": m["train"]["best_val_loss"],
    }
    for setting in ("free", "constrained"):
        block = m.get(setting) or {}
        tpp = block.get("tpp", {})
        for name in ("model", "model_greedy", *BASELINES):
            if name in tpp:
                out[f"{setting}_tpp_{name}"] = tpp[name]["median"]
        for b in BASELINES:
            vs = block.get(f"vs_{b}") or {}
            if "p_value" in vs:
                out[f"{setting}_p_vs_{b}"] = vs["p_value"]
                out[f"{setting}_rb_vs_{b}"] = vs["rank_biserial"]
        if "model" in block.get("lcp_mean", {}):
            out[f"{setting}_lcp_mean_model"] = block["lcp_mean"]["model"]
        if "model" in block.get("entropy_bits", {}):
            out[f"{setting}_entropy_model"] = block["entropy_bits"]["model"]
    return {k: v for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


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
    for key, value in headline(m).items():
        ctx.report.set(key, value)
    ctx.report.set("results", m)  # every block, in the stage report
    ctx.report.set("renders", [str(r) for r in res.renders])
    log.info("%s", format_report(res.metrics))
    return StageOutcome(
        summary=f"{m['n_test_tracks']} test tracks, {m['n_test_pairs']} pairs, {m['train']['epochs']} epochs "
        f"(best {m['train']['best_epoch']}), {len(res.renders)} renders",
        inputs=m["n_test_pairs"],
        outputs=m["n_test_pairs"],
    )
