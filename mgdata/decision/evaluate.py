"""Honest evaluation of the decision model on the test split: baselines, per-track statistics, plots.

Everything is free-running (no teacher forcing). For each *configuration* (the model and
each baseline) and each *setting* (``free``: unconstrained; ``constrained``: constrained
generation with the allowed set = the tokens of the ground-truth B stem-window, i.e. the
target corpus one would render from; the same constraint is given to every baseline):

* ``model``: the trained model, top-p sampling (params ``decision.top_p``...);
* ``model_greedy``: the trained model, greedy decoding (the fair match for the argmax baselines);
* ``random``: uniform over the K tokens;
* ``most_frequent``: always the most frequent B token of the training split;
* ``cond_argmax`` / ``cond_sample``: argmax of / a sample from P(b_t | a_t), fit on train
  (add-one smoothing);
* ``model_shuffled_a``: the model fed the A of another test track (tests whether it uses A).

TPP is averaged per track (pairs of one track share windows and stems, so they are not
independent); the model is compared with each baseline over tracks by a one-sided
Mann-Whitney U test (scipy) and a paired sign-flip permutation test over tracks.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.decision.config import DecisionConfig
from mgdata.decision.data import TokenPair
from mgdata.decision.generate import generate, sequence_seed
from mgdata.decision.metrics import (
    codebook_usage,
    entropy_bits,
    lcp_curve,
    longest_common_prefix,
    longest_common_prefix_nonsilent,
    true_positive_percentage,
)
from mgdata.decision.model import DecisionTransformer
from mgdata.errors import InputError
from mgdata.exec import ExecConfig, executor_for, get_executor

MODELS = ("model", "model_greedy")
BASELINES = ("random", "most_frequent", "cond_argmax", "cond_sample", "model_shuffled_a")
CONFIGS = MODELS + BASELINES
SETTINGS = ("free", "constrained")


@dataclasses.dataclass(frozen=True)
class Tables:
    """Statistics of the training split used by the baselines."""

    k: int
    b_counts: np.ndarray  # [K]
    cond: np.ndarray  # [K, K] P(b | a), rows sum to 1

    @classmethod
    def fit(cls, pairs: Sequence[TokenPair], k: int) -> Tables:
        """Fit on aligned (a_t, b_t) positions of ``pairs`` (add-one smoothing of the conditional)."""
        joint = np.ones((k, k), dtype=np.float64)
        b_counts = np.zeros(k, dtype=np.int64)
        for p in pairs:
            n = min(len(p.a), len(p.b))
            np.add.at(joint, (np.asarray(p.a[:n]), np.asarray(p.b[:n])), 1.0)
            b_counts += np.bincount(np.asarray(p.b), minlength=k)
        return cls(k=k, b_counts=b_counts, cond=joint / joint.sum(1, keepdims=True))


def _restrict(probs: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    """Constraint rule with the full distribution as candidate set: renormalise over allowed if any."""
    if allowed is None:
        return probs
    cand = probs > 0
    keep = cand & allowed
    if not keep.any():
        return probs
    out = np.where(keep, probs, 0.0)
    return out / out.sum()


def _mask(tokens: np.ndarray | None, k: int) -> np.ndarray | None:
    if tokens is None:
        return None
    m = np.zeros(k, dtype=bool)
    m[np.asarray(tokens, dtype=np.int64)] = True
    return m


def baseline_predictions(
    name: str, pairs: Sequence[TokenPair], tables: Tables, *, seed: int, allowed: Sequence[np.ndarray | None]
) -> list[np.ndarray]:
    """Predictions of a table baseline for every pair (seeded per pair index)."""
    k = tables.k
    out = []
    for i, (p, allow) in enumerate(zip(pairs, allowed)):
        mask = _mask(allow, k)
        rng = np.random.default_rng(sequence_seed(seed, i))
        n = len(p.b)
        if name == "random":
            probs = _restrict(np.full(k, 1.0 / k), mask)
            pred = rng.choice(k, size=n, p=probs)
        elif name == "most_frequent":
            counts = tables.b_counts.astype(np.float64)
            if mask is not None and mask.any():
                counts = np.where(mask, counts, -1.0)
            pred = np.full(n, int(np.argmax(counts)))
        elif name in ("cond_argmax", "cond_sample"):
            a = np.resize(np.asarray(p.a, dtype=np.int64), n)  # B and A cover the same window
            pred = np.empty(n, dtype=np.int64)
            for t in range(n):
                row = _restrict(tables.cond[a[t]], mask)
                pred[t] = int(np.argmax(row)) if name == "cond_argmax" else int(rng.choice(k, p=row))
        else:
            raise ValueError(f"unknown baseline {name!r}")
        out.append(np.asarray(pred, dtype=np.int64))
    return out


def shuffled_sources(pairs: Sequence[TokenPair], seed: int) -> list[np.ndarray]:
    """For each pair, the A of a pair of ANOTHER track (seeded derangement of the test tracks)."""
    by_track: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        by_track[p.track_id].append(i)
    tracks = sorted(by_track)
    if len(tracks) < 2:
        raise InputError("test split", "the shuffled-A baseline needs at least 2 test tracks")
    perm = np.random.default_rng(seed).permutation(len(tracks))
    partner = {tracks[perm[j]]: tracks[perm[(j + 1) % len(tracks)]] for j in range(len(tracks))}
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(pairs)
    counters: dict[str, int] = defaultdict(int)
    for i, p in enumerate(pairs):
        others = by_track[partner[p.track_id]]
        c = counters[p.track_id]
        counters[p.track_id] += 1
        out[i] = np.asarray(pairs[others[c % len(others)]].a, dtype=np.int64)
    return out


def per_track(values: Sequence[float], tracks: Sequence[str]) -> dict[str, float]:
    """Mean of ``values`` per track id (sorted by track)."""
    acc: dict[str, list[float]] = defaultdict(list)
    for v, t in zip(values, tracks):
        acc[t].append(float(v))
    return {t: float(np.mean(acc[t])) for t in sorted(acc)}


def compare(model: Sequence[float], base: Sequence[float], *, n_permutations: int, seed: int) -> dict[str, float]:
    """Model vs baseline over tracks (same track order in both).

    Returns:
        ``u`` and ``p_value`` (one-sided Mann-Whitney U, model > baseline), ``median_diff``
        (median model - median baseline, TPP points), ``rank_biserial`` (2U / (n1 n2) - 1) and
        ``perm_p_value`` (paired sign-flip permutation test of the mean per-track difference).
    """
    from scipy.stats import mannwhitneyu

    x, y = np.asarray(model, dtype=np.float64), np.asarray(base, dtype=np.float64)
    res = mannwhitneyu(x, y, alternative="greater")
    u = float(res.statistic)
    d = x - y
    obs = d.mean()
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_permutations, len(d)))
    perm = (signs * d).mean(1)
    perm_p = float((1 + np.sum(perm >= obs - 1e-12)) / (1 + n_permutations))
    return {
        "u": u,
        "p_value": float(res.pvalue),
        "median_diff": float(np.median(x) - np.median(y)),
        "rank_biserial": float(2.0 * u / (len(x) * len(y)) - 1.0),
        "perm_p_value": perm_p,
        "mean_diff": float(obs),
    }


@dataclasses.dataclass
class EvalResult:
    """Per configuration and setting: predictions' per-track TPP, LCP curves, entropy; plus the metrics dict."""

    metrics: dict[str, Any]
    track_tpp: dict[str, dict[str, dict[str, float]]]  # setting -> config -> track -> TPP
    lcp_curves: dict[str, dict[str, dict[str, list[float]]]]  # setting -> config -> curve
    predictions: dict[str, dict[str, list[np.ndarray]]]

    def tables(self) -> dict[str, Any]:
        """JSON-safe per-track tables and curves (for the stage's eval.json)."""
        return {"track_tpp": self.track_tpp, "lcp_curves": self.lcp_curves}


def _summary(vals: Sequence[float]) -> dict[str, float]:
    a = np.asarray(vals, dtype=np.float64)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1), "mean": float(a.mean())}


#: Generation chunk per executor task, in batches (whole batches keep every batch as in a serial run).
GEN_CHUNK_BATCHES = 4


@dataclasses.dataclass(frozen=True)
class _GenJob:
    """One chunk of one generation configuration (picklable: weights travel as a state dict)."""

    setting: str
    name: str
    k: int
    cfg: DecisionConfig
    state: dict[str, Any]
    start: int
    sources: list[np.ndarray]
    lengths: list[int]
    allowed: list[np.ndarray | None]
    kw: dict[str, Any]


def _run_gen_job(job: _GenJob) -> list[np.ndarray]:
    """Worker side: rebuild the model from its weights and generate one chunk on one torch thread."""
    import torch

    model = DecisionTransformer(job.k, job.cfg)
    model.load_state_dict(job.state)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same kernels in every backend (a worker has one thread)
    try:
        return generate(
            model,
            job.sources,
            job.lengths,
            indices=range(job.start, job.start + len(job.sources)),
            allowed=job.allowed,
            **job.kw,
        )
    finally:
        torch.set_num_threads(threads)


def evaluate(
    model: DecisionTransformer,
    test_pairs: Sequence[TokenPair],
    train_pairs: Sequence[TokenPair],
    cfg: DecisionConfig,
    *,
    silence: int | None = None,
    executor: ExecConfig | None = None,
    progress: bool = False,
) -> EvalResult:
    """Generate for the test pairs with the model and every baseline, in both settings; compare over tracks.

    Args:
        model: The trained model.
        test_pairs: Pairs every reported number comes from.
        train_pairs: Pairs the baselines' statistics are fit on.
        cfg: Section ``decision``.
        silence: Token of the silent segment (LCP without leading silence), or None.
        executor: Where the model's generation runs, in chunks of whole batches (section ``executor``;
            None: in this process). Every sequence has its own seed and the chunks keep the batches of
            a serial run, so the results do not depend on it.
        progress: Show a progress bar over generation chunks.

    Raises:
        InputError: Empty test split or fewer than 2 test tracks.
    """
    if not test_pairs:
        raise InputError(f"split {cfg.test_split}", "no pairs in this split (empty split)")
    k = model.k
    tables = Tables.fit(train_pairs, k)
    tracks = [p.track_id for p in test_pairs]
    metrics: dict[str, Any] = {
        "k": k,
        "n_test_pairs": len(test_pairs),
        "n_test_tracks": len(set(tracks)),
        "n_train_pairs": len(train_pairs),
        "silence_token": -1 if silence is None else silence,
    }
    track_tpp: dict[str, dict[str, dict[str, float]]] = {}
    curves: dict[str, dict[str, dict[str, list[float]]]] = {}
    preds_all: dict[str, dict[str, list[np.ndarray]]] = {}
    allowed_by = {s: [np.unique(p.b) if s == "constrained" else None for p in test_pairs] for s in SETTINGS}
    generated = _generate_models(model, test_pairs, cfg, allowed_by, executor=executor, progress=progress)
    for setting in SETTINGS:
        allowed = allowed_by[setting]
        preds: dict[str, list[np.ndarray]] = {
            n: generated[setting, n] for n in ("model", "model_shuffled_a", "model_greedy")
        }
        for j, name in enumerate(("random", "most_frequent", "cond_argmax", "cond_sample")):
            preds[name] = baseline_predictions(
                name, test_pairs, tables, seed=cfg.seed + 1000 * (j + 1), allowed=allowed
            )
        metrics[setting], track_tpp[setting], curves[setting] = _score_setting(preds, test_pairs, k, cfg, silence)
        preds_all[setting] = preds
    return EvalResult(metrics=metrics, track_tpp=track_tpp, lcp_curves=curves, predictions=preds_all)


def _generate_models(
    model: DecisionTransformer,
    test_pairs: Sequence[TokenPair],
    cfg: DecisionConfig,
    allowed_by: dict[str, list[np.ndarray | None]],
    *,
    executor: ExecConfig | None,
    progress: bool,
) -> dict[tuple[str, str], list[np.ndarray]]:
    """The model's generations (sampled, from shuffled sources, greedy) per ``(setting, name)``, on the executor.

    Jobs are chunks of :data:`GEN_CHUNK_BATCHES` whole batches, so every backend keeps the serial batches.
    """
    lengths = [len(p.b) for p in test_pairs]
    gen_kw = dict(
        strategy=cfg.strategy, top_k=cfg.top_k, top_p=cfg.top_p, temperature=cfg.temperature, batch_size=cfg.batch_size
    )
    chunk = GEN_CHUNK_BATCHES * cfg.batch_size
    sources = {
        "model": [p.a for p in test_pairs],
        "model_shuffled_a": shuffled_sources(test_pairs, cfg.seed),
        "model_greedy": [p.a for p in test_pairs],
    }
    state = model.state_dict()  # the weights every generation job rebuilds the model from
    jobs = [
        _GenJob(
            setting=setting,
            name=name,
            k=model.k,
            cfg=cfg,
            state=state,
            start=c0,
            sources=sources[name][c0 : c0 + chunk],
            lengths=lengths[c0 : c0 + chunk],
            allowed=allowed_by[setting][c0 : c0 + chunk],
            kw={**gen_kw, "seed": cfg.seed, **({"strategy": "greedy"} if name == "model_greedy" else {})},
        )
        for setting in SETTINGS
        for name in ("model", "model_shuffled_a", "model_greedy")
        for c0 in range(0, len(test_pairs), chunk)
    ]
    generated: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    with get_executor(executor_for(executor)) as ex:
        for job, out in zip(jobs, ex.imap(_run_gen_job, jobs, desc="decision: generate", progress=progress)):
            generated[job.setting, job.name].extend(out)
    return generated


def _score_setting(
    preds: dict[str, list[np.ndarray]],
    test_pairs: Sequence[TokenPair],
    k: int,
    cfg: DecisionConfig,
    silence: int | None,
) -> tuple[dict[str, Any], dict[str, dict[str, float]], dict[str, dict[str, list[float]]]]:
    """One setting's block (TPP, LCP, entropy, usage per configuration; tests vs each baseline), TPP per track
    and LCP curves per configuration."""
    tracks = [p.track_id for p in test_pairs]
    block: dict[str, Any] = {"tpp": {}, "lcp_mean": {}, "lcp_nonsilent_mean": {}, "entropy_bits": {}, "usage": {}}
    track_tpp: dict[str, dict[str, float]] = {}
    curves: dict[str, dict[str, list[float]]] = {}
    for name in CONFIGS:
        pr = preds[name]
        tpp = [true_positive_percentage(x, p.b) for x, p in zip(pr, test_pairs)]
        lcps = [longest_common_prefix(x, p.b) for x, p in zip(pr, test_pairs)]
        lcps_ns = [longest_common_prefix_nonsilent(x, p.b, silence) for x, p in zip(pr, test_pairs)]
        track_tpp[name] = per_track(tpp, tracks)
        curves[name] = lcp_curve(lcps)
        block["tpp"][name] = _summary(list(track_tpp[name].values()))
        block["lcp_mean"][name] = float(np.mean(np.concatenate([np.asarray(x, float) for x in lcps])))
        flat_ns = np.concatenate([np.asarray(x, float) for x in lcps_ns] + [np.zeros(0)])
        block["lcp_nonsilent_mean"][name] = float(flat_ns.mean()) if len(flat_ns) else 0.0
        block["entropy_bits"][name] = entropy_bits(pr, k)
        block["usage"][name] = codebook_usage(pr, k)
    block["entropy_bits"]["ground_truth"] = entropy_bits([p.b for p in test_pairs], k)
    m = list(track_tpp["model"].values())
    g = list(track_tpp["model_greedy"].values())
    for name in BASELINES:
        block[f"greedy_vs_{name}"] = compare(
            g, list(track_tpp[name].values()), n_permutations=cfg.n_permutations, seed=cfg.seed
        )
        block[f"vs_{name}"] = compare(
            m, list(track_tpp[name].values()), n_permutations=cfg.n_permutations, seed=cfg.seed
        )
    return block, track_tpp, curves


def write_plots(result: EvalResult, plots_dir: str | Path, title: str = "") -> list[Path]:
    """TPP boxplots (per configuration, both settings), LCP-per-position curves and entropy bars.

    Writes PNGs plus ``tpp.csv`` (setting, config, track_id, tpp), ``lcp.csv`` (setting, config,
    position, mean, std, max) and ``entropy.json`` for DVC plots. Returns the written paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = Path(plots_dir)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    rows = ["setting,config,track_id,tpp"]
    for setting, by_cfg in result.track_tpp.items():
        for name, tr in by_cfg.items():
            rows += [f"{setting},{name},{t},{v:.6f}" for t, v in tr.items()]
    (d / "tpp.csv").write_text("\n".join(rows) + "\n")
    rows = ["setting,config,position,mean,std,max"]
    for setting, by_cfg in result.lcp_curves.items():
        for name, c in by_cfg.items():
            rows += [
                f"{setting},{name},{int(p)},{m:.6f},{s:.6f},{x:.1f}"
                for p, m, s, x in zip(c["position"], c["mean"], c["std"], c["max"])
            ]
    (d / "lcp.csv").write_text("\n".join(rows) + "\n")
    ent = {s: result.metrics[s]["entropy_bits"] for s in SETTINGS if s in result.metrics}
    (d / "entropy.json").write_text(json.dumps(ent, indent=2, sort_keys=True) + "\n")
    written += [d / "tpp.csv", d / "lcp.csv", d / "entropy.json"]

    fig, axes = plt.subplots(1, len(SETTINGS), figsize=(12, 4.5), sharey=True)
    for ax, setting in zip(axes, SETTINGS):
        data = [list(result.track_tpp[setting][n].values()) for n in CONFIGS]
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(CONFIGS) + 1), [n.replace("_", "\n") for n in CONFIGS], fontsize=8)
        ax.set_title(f"{title} {setting}: TPP per test track")
        ax.set_ylabel("TPP (%)")
    fig.tight_layout()
    fig.savefig(d / "tpp_boxplot.png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    fig, axes = plt.subplots(1, len(SETTINGS), figsize=(12, 4), sharey=True)
    for ax, setting in zip(axes, SETTINGS):
        for name in ("model", "random", "cond_argmax"):
            c = result.lcp_curves[setting][name]
            pos, mean, std = np.array(c["position"]), np.array(c["mean"]), np.array(c["std"])
            (line,) = ax.plot(pos, mean, label=f"{name} mean")
            ax.fill_between(pos, mean - std, mean + std, alpha=0.15, color=line.get_color())
            ax.plot(pos, c["max"], ls=":", color=line.get_color(), label=f"{name} max")
        ax.set_title(f"{title} {setting}: LCP per position")
        ax.set_xlabel("position i")
        ax.set_ylabel("LCP_i (tokens)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(d / "lcp.png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    names = [*CONFIGS, "ground_truth"]
    w = 0.4
    for j, setting in enumerate(SETTINGS):
        ax.bar(np.arange(len(names)) + (j - 0.5) * w, [ent[setting].get(n, 0.0) for n in names], w, label=setting)
    ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=8)
    ax.set_ylabel("entropy (bits)")
    ax.set_title(f"{title} entropy of generated tokens")
    ax.legend()
    fig.tight_layout()
    fig.savefig(d / "entropy.png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    written += [d / "tpp_boxplot.png", d / "lcp.png", d / "entropy.png"]
    return written


__all__ = [
    "BASELINES",
    "CONFIGS",
    "EvalResult",
    "SETTINGS",
    "Tables",
    "baseline_predictions",
    "compare",
    "evaluate",
    "per_track",
    "shuffled_sources",
    "write_plots",
]
