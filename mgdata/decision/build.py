"""The ``decision`` builder: token artifact -> trained models, evaluation, plots and renders.

:func:`plan` (read pairs, check splits) -> :func:`_run` (train one model per trial seed in parallel on the
executor, evaluate each as its training returns) -> :func:`_summarise` (render a few test pairs with the first
seed's model; headline numbers as mean and sample std over seeds, the largest p-value over seeds, per-seed
blocks, plots, eval tables). Pipeline glue (paths, params, the stage report) is in :mod:`mgdata.decision.stage`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.decision.config import DecisionConfig
from mgdata.decision.data import TokenData, load_pairs, with_roles
from mgdata.decision.evaluate import BASELINES, EvalResult, evaluate, fit_tables, write_plots
from mgdata.decision.generate import generate
from mgdata.decision.metrics import silence_token
from mgdata.decision.records import DecisionResult
from mgdata.decision.render import (
    SegmentCorpus,
    corpus_keys,
    read_window_audio,
    render_pair,
)
from mgdata.decision.train import TrainResult, check_pairs
from mgdata.decision.worker import TrainJob, run_train_job
from mgdata.errors import InputError
from mgdata.exec import executor_for, get_executor

log = logging.getLogger(__name__)


#: Significance level of the "seeds agree" counts in the stage report.
ALPHA = 0.05
#: Baselines the model is also compared with by the paired permutation test in the headline.
PAIRED = ("cond_argmax", "cond_argmax_role", "context")


def build_decision(
    tokens_path: str | Path,
    out_dir: str | Path | None = None,
    *,
    cfg: DecisionConfig,
    segment_s: float,
    name: str = "",
    k: int | None = None,
    stems_path: str | Path | None = None,
    plots_dir: str | Path | None = None,
    executor=None,
    progress: bool = True,
) -> DecisionResult:
    """Train and evaluate one model per trial seed (``cfg.trial_seeds()``), render with the first seed's.

    Args:
        tokens_path: Token artifact (either layout, see :mod:`mgdata.decision.data`).
        out_dir: Output folder: ``model.pt``, ``checkpoints/last.pt``, ``eval.json``, ``renders/``; None trains
            and evaluates in memory (no checkpoints, no ``eval.json``, no renders).
        cfg: Section ``decision``.
        segment_s: Segment length of the tokens (seconds), for rendering.
        name: Configuration name (plots titles).
        k: Expected codebook size (None: take the artifact's).
        stems_path: Stems artifact with the stem-window audio; None skips the renders.
        plots_dir: Folder for the plots; None skips them.
        executor: Where the seeds' training (one task per seed, one torch thread each) and evaluation's
            generation run (section ``executor``; None: in this process); the results do not depend on it.
        progress: Show progress bars over training seeds and evaluation's generation.

    Raises:
        InputError: See :func:`plan`.
    """
    t0 = time.perf_counter()
    data = plan(tokens_path, cfg, k)
    cfg = with_roles(cfg, data.split(cfg.train_split))
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    trials = _run(data, cfg, out, executor=executor, progress=progress)
    t_train_eval = time.perf_counter() - t0
    return _summarise(
        data,
        trials,
        cfg,
        out,
        segment_s=segment_s,
        name=name,
        stems_path=stems_path,
        plots_dir=plots_dir,
        t0=t0,
        t_train_eval=t_train_eval,
    )


def plan(tokens_path: str | Path, cfg: DecisionConfig, k: int | None = None) -> TokenData:
    """Read the token artifact and check K and every split the stage needs (clear errors before training)."""
    data = load_pairs(tokens_path)
    if k is not None and data.k != k:
        raise InputError(data.path / "codebook.npy", f"codebook has K={data.k}, the configuration asks for K={k}")
    for split in (cfg.train_split, cfg.val_split, cfg.test_split):
        check_pairs(data.split(split), data.k, cfg.max_len, split)
    return data


def _run(
    data: TokenData, cfg: DecisionConfig, out: Path | None, *, executor, progress: bool
) -> list[tuple[TrainResult, EvalResult]]:
    """Train every trial seed on the executor and evaluate each as soon as its training returns.

    Raises:
        InputError: A seed's training stopped before its schedule ended.
    """
    cfgs = [dataclasses.replace(cfg, seed=s) for s in cfg.trial_seeds()]
    train_pairs, val_pairs = list(data.split(cfg.train_split)), list(data.split(cfg.val_split))
    # Only the first seed checkpoints into out/ (it is the saved, rendered model); the others train in memory.
    ckpt = None if out is None else str(out)
    jobs = [TrainJob(train_pairs, val_pairs, data.k, c, ckpt if i == 0 else None) for i, c in enumerate(cfgs)]
    sil = silence_token(data.codebook)
    # the baselines do not depend on the seed: fit once (the context regression is the costly one)
    tables = fit_tables(train_pairs, data.k, cfg)
    trials: list[tuple[TrainResult, EvalResult]] = []
    with get_executor(executor_for(executor)) as ex:
        # Each seed is evaluated as soon as its training returns, while the later seeds still train: with 3 seeds
        # on 2 workers the third trains alone, and the first two evaluations fill the idle worker meanwhile.
        for c, tr in zip(cfgs, ex.imap(run_train_job, jobs, desc="decision: train seeds", progress=progress)):
            if not tr.finished:
                raise InputError(out or data.path, f"training of seed {c.seed} stopped before the schedule ended")
            ev = evaluate(
                tr.model,
                data.split(cfg.test_split),
                data.split(cfg.train_split),
                c,
                silence=sil,
                executor=executor,
                progress=progress,
                tables=tables,
            )
            trials.append((tr, ev))
    return trials


def _summarise(
    data: TokenData,
    trials: list[tuple[TrainResult, EvalResult]],
    cfg: DecisionConfig,
    out: Path | None,
    *,
    segment_s: float,
    name: str,
    stems_path: str | Path | None,
    plots_dir: str | Path | None,
    t0: float,
    t_train_eval: float,
) -> DecisionResult:
    """Render with the first seed's model, aggregate the seeds, write ``eval.json`` and the plots."""
    seeds = cfg.trial_seeds()
    tr, ev = trials[0]
    renders: list[dict[str, Any]] = []
    if out is not None and stems_path is not None and cfg.n_renders > 0:
        renders = render_examples(data, tr.model, stems_path, out / "renders", cfg, segment_s, cfg.n_renders)
    per_seed = [headline({**e.metrics, "train": t.summary()}) for t, e in trials]
    metrics = {
        **ev.metrics,
        "train": tr.summary(),
        # numbers only (the seeds are first_seed + i, i < n)
        "trials": {
            "n": len(seeds),
            "first_seed": seeds[0],
            "aggregate": aggregate(per_seed),
            "per_seed": {str(s): h for s, h in zip(seeds, per_seed)},
        },
        "layout_per_stem_window": int(data.layout == "stem-window"),
        "seconds": {"train_evaluate": t_train_eval, "total": time.perf_counter() - t0},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "n_renders": len(renders),
    }
    tables = {
        **ev.tables(),
        "history": tr.history,
        "renders": renders,
        # every seed's validation curve: the evidence for the epoch budget
        "trials": {str(s): {"history": t.history, "headline": h} for s, (t, _), h in zip(seeds, trials, per_seed)},
    }
    if out is not None:
        (out / "eval.json").write_text(json.dumps(tables, indent=1, sort_keys=True, default=float) + "\n")
    if plots_dir is not None:
        write_plots(ev, plots_dir, title=name)
    agg = metrics["trials"]["aggregate"]
    log.info(
        "decision %s: model TPP median %.2f +- %.2f vs random %.2f over %d seeds (largest p=%.2g, %d seeds p<%.2f)",
        name,
        agg["free_tpp_model"],
        agg["free_tpp_model_std"],
        agg["free_tpp_random"],
        len(seeds),
        agg["free_p_vs_random"],
        agg["free_p_vs_random_agree"],
        ALPHA,
    )
    return DecisionResult(name=name, train=tr, evaluation=ev, metrics=metrics, renders=renders, trials=trials)


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
        [model.pair_source(p) for p in picks],
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


def aggregate(rows: list[dict[str, float]]) -> dict[str, float]:
    """Headline numbers over trial seeds: mean and ``_std`` (sample std, 0 for one seed) of each number.

    A p-value is the LARGEST over seeds (a claim must hold for every seed) with ``_agree``, the number of
    seeds whose p is below :data:`ALPHA`; the test counts (same split for every seed) are kept as they are.
    """
    out: dict[str, float] = {}
    for key in rows[0]:
        v = np.array([r[key] for r in rows], dtype=np.float64)
        if key in ("test_tracks", "test_pairs"):
            out[key] = rows[0][key]
        elif "_p_vs_" in key:
            out[key] = float(v.max())
            out[f"{key}_agree"] = int(np.sum(v < ALPHA))
        else:
            out[key] = float(v.mean())
            out[f"{key}_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return out


def headline(m: dict[str, Any]) -> dict[str, float]:
    """The numbers ``dvc metrics show/diff`` lists per configuration (the full blocks are in the stage report).

    Per setting (free, constrained): TPP median of the model and of every baseline, and the one-sided
    Mann-Whitney p and rank-biserial effect of the (sampled) model against each baseline, over test tracks;
    against the two strongest baselines (cond_argmax, context) also the paired sign-flip permutation p
    (``_perm_p_vs_``) and its matched-pairs rank-biserial (``_prb_vs_``): tracks are paired, so these are the
    tests the claims rest on.
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
            if b in PAIRED and "perm_p_value" in vs:
                out[f"{setting}_perm_p_vs_{b}"] = vs["perm_p_value"]
                out[f"{setting}_prb_vs_{b}"] = vs["paired_rank_biserial"]
        if "model" in block.get("lcp_mean", {}):
            out[f"{setting}_lcp_mean_model"] = block["lcp_mean"]["model"]
        if "model" in block.get("entropy_bits", {}):
            out[f"{setting}_entropy_model"] = block["entropy_bits"]["model"]
    return {k: v for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


__all__ = ["ALPHA", "DecisionResult", "aggregate", "build_decision", "headline", "plan", "render_examples"]
