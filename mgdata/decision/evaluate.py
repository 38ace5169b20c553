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
* ``cond_argmax_role``: argmax of P(b_t | a_t, role of A, role of B) (counts per role pair with P(b | a) as a
  one-count prior), the table that knows what the model with ``decision.roles`` knows;
* ``context``: argmax of a multinomial logistic regression on one-hot A tokens at t-w..t+w
  (``decision.context_window``; fit on train, no B history): the strongest simple aligned baseline;
* ``model_shuffled_a``: the model fed the A of another test track (tests whether it uses A).

TPP is averaged per track (pairs of one track share windows and stems, so they are not
independent); the model is compared with each baseline over tracks by a one-sided
Mann-Whitney U test (scipy) and a paired sign-flip permutation test over tracks (exact when the
``2^n`` sign patterns are no more than ``decision.n_permutations``) with its matched-pairs rank-biserial.
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
from mgdata.decision.model import DecisionModel, make_model
from mgdata.errors import InputError
from mgdata.exec import ExecConfig, executor_for, get_executor

MODELS = ("model", "model_greedy")
BASELINES = (
    "random",
    "most_frequent",
    "cond_argmax",
    "cond_sample",
    "cond_argmax_role",
    "context",
    "model_shuffled_a",
)
#: Baselines computed from training-split statistics (not by the model).
TABLE_BASELINES = ("random", "most_frequent", "cond_argmax", "cond_sample", "cond_argmax_role", "context")
CONFIGS = MODELS + BASELINES
SETTINGS = ("free", "constrained")


@dataclasses.dataclass(frozen=True)
class ContextModel:
    """Multinomial logistic regression P(b_t | a_{t-w..t+w}) on one-hot A tokens (PAD past A's ends)."""

    k: int
    window: int
    coef: np.ndarray  # [K, (2w + 1) (K + 1)] (rows of classes absent from train stay 0 with -inf intercept)
    intercept: np.ndarray  # [K]

    @staticmethod
    def features(a: np.ndarray, n: int, k: int, window: int):
        """Sparse one-hot design [n, (2w + 1) (K + 1)] of positions 0..n-1 of A (slot j = offset j - w)."""
        from scipy.sparse import csr_matrix

        a = np.asarray(a, dtype=np.int64)
        padded = np.full(n + 2 * window, k, dtype=np.int64)  # token K = outside A
        m = min(len(a), n)
        padded[window : window + m] = a[:m]
        slots = 2 * window + 1
        cols = np.stack([padded[j : j + n] + j * (k + 1) for j in range(slots)], 1).reshape(-1)
        rows = np.repeat(np.arange(n), slots)
        return csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(n, slots * (k + 1)))

    @classmethod
    def fit(cls, pairs: Sequence[TokenPair], k: int, window: int, c: float = 1.0) -> ContextModel:
        """Fit on every aligned position of ``pairs`` (lbfgs, L2 with inverse strength ``c``, one BLAS thread).

        One thread: lbfgs on other thread counts sums in another order, and the fit must be byte-identical.
        """
        from scipy.sparse import vstack
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        x = vstack([cls.features(p.a, len(p.b), k, window) for p in pairs]).tocsr()
        y = np.concatenate([np.asarray(p.b, dtype=np.int64) for p in pairs])
        with threadpool_limits(1):
            # sklearn's tol 1e-4: 72 lbfgs iterations at K=16 (3.6 s) and the same validation accuracy as 1e-6 (375, 39 s)
            lr = LogisticRegression(C=c, max_iter=300, tol=1e-4).fit(x, y)
        coef = np.zeros((k, x.shape[1]))
        intercept = np.full(k, -np.inf)
        classes = np.asarray(lr.classes_, dtype=np.int64)
        if len(classes) == 1:  # sklearn refuses one class; the constant predictor is exact
            intercept[classes[0]] = 0.0
        elif len(classes) == 2:  # binary: one coefficient row for class 1 vs class 0
            coef[classes[1]], intercept[classes[1]], intercept[classes[0]] = lr.coef_[0], lr.intercept_[0], 0.0
        else:
            coef[classes], intercept[classes] = lr.coef_, lr.intercept_
        return cls(k=k, window=window, coef=coef, intercept=intercept)

    def proba(self, a: np.ndarray, n: int) -> np.ndarray:
        """P(b_t | A window) [n, K] for positions 0..n-1."""
        z = np.asarray(self.features(a, n, self.k, self.window) @ self.coef.T) + self.intercept
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class Tables:
    """Statistics of the training split used by the baselines."""

    k: int
    b_counts: np.ndarray  # [K]
    cond: np.ndarray  # [K, K] P(b | a), rows sum to 1
    context: ContextModel | None = None  # the context baseline (None: not fit)
    role_names: tuple[str, ...] = ()
    role_counts: dict[tuple[int, int], np.ndarray] = dataclasses.field(default_factory=dict)  # [K, K] per role pair

    @classmethod
    def fit(
        cls,
        pairs: Sequence[TokenPair],
        k: int,
        *,
        context_window: int | None = None,
        c: float = 1.0,
        role_names: Sequence[str] = (),
    ) -> Tables:
        """Fit on aligned (a_t, b_t) positions of ``pairs`` (add-one smoothing of the conditional).

        ``context_window`` (None: skip) fits the context baseline too (:class:`ContextModel`, inverse L2 ``c``);
        ``role_names`` are the stem roles of ``cond_argmax_role`` (other names, or none, count as ``other``).
        """
        joint = np.ones((k, k), dtype=np.float64)
        b_counts = np.zeros(k, dtype=np.int64)
        tables = cls(k=k, b_counts=b_counts, cond=joint, role_names=tuple(role_names))
        for p in pairs:
            n = min(len(p.a), len(p.b))
            a, b = np.asarray(p.a[:n]), np.asarray(p.b[:n])
            np.add.at(joint, (a, b), 1.0)
            np.add.at(tables.role_counts.setdefault(tables.roles_of(p), np.zeros((k, k))), (a, b), 1.0)
            b_counts += np.bincount(np.asarray(p.b), minlength=k)
        ctx = None if context_window is None else ContextModel.fit(pairs, k, context_window, c)
        return dataclasses.replace(tables, cond=joint / joint.sum(1, keepdims=True), context=ctx)

    def roles_of(self, p: TokenPair) -> tuple[int, int]:
        """``(A's, B's)`` role index of a pair: 1 + position in ``role_names``, 0 for ``other``."""
        idx = {name: i + 1 for i, name in enumerate(self.role_names)}
        return idx.get(p.stem_a, 0), idx.get(p.stem_b, 0)

    def cond_role(self, p: TokenPair) -> np.ndarray:
        """P(b | a, roles of ``p``) [K, K]: the role pair's counts plus P(b | a) as a one-count prior."""
        counts = self.role_counts.get(self.roles_of(p))
        joint = self.cond if counts is None else counts + self.cond
        return joint / joint.sum(1, keepdims=True)


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
        elif name in ("cond_argmax", "cond_sample", "cond_argmax_role"):
            a = np.resize(np.asarray(p.a, dtype=np.int64), n)  # B and A cover the same window
            cond = tables.cond_role(p) if name == "cond_argmax_role" else tables.cond
            pred = np.empty(n, dtype=np.int64)
            for t in range(n):
                row = _restrict(cond[a[t]], mask)
                pred[t] = int(np.argmax(row)) if name != "cond_sample" else int(rng.choice(k, p=row))
        elif name == "context":
            if tables.context is None:
                raise ValueError("the context baseline needs Tables.fit(..., context_window=w)")
            probs = tables.context.proba(p.a, n)
            pred = np.array([int(np.argmax(_restrict(row, mask))) for row in probs], dtype=np.int64)
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
        (median model - median baseline, TPP points), ``rank_biserial`` (2U / (n1 n2) - 1),
        ``perm_p_value`` (:func:`paired_permutation_p`, model > baseline), ``paired_rank_biserial``
        (:func:`paired_rank_biserial`) and ``mean_diff`` (mean per-track difference).
    """
    from scipy.stats import mannwhitneyu

    x, y = np.asarray(model, dtype=np.float64), np.asarray(base, dtype=np.float64)
    res = mannwhitneyu(x, y, alternative="greater")
    u = float(res.statistic)
    d = x - y
    return {
        "u": u,
        "p_value": float(res.pvalue),
        "median_diff": float(np.median(x) - np.median(y)),
        "rank_biserial": float(2.0 * u / (len(x) * len(y)) - 1.0),
        "perm_p_value": paired_permutation_p(d, n_permutations=n_permutations, seed=seed),
        "paired_rank_biserial": paired_rank_biserial(d),
        "mean_diff": float(d.mean()),
    }


def paired_permutation_p(diffs: Sequence[float], *, n_permutations: int, seed: int) -> float:
    """One-sided p of a paired sign-flip permutation test: is the mean of ``diffs`` (model - baseline) > 0?

    Under H0 each track's difference is as likely negated. Exact (every one of the ``2^n`` sign patterns, the
    observed one included) when ``2^n <= n_permutations``; otherwise ``n_permutations`` seeded random patterns
    with the observed one counted, ``(1 + #{mean >= observed}) / (1 + n_permutations)``.
    """
    d = np.asarray(diffs, dtype=np.float64)
    obs = d.mean()
    tol = 1e-12 * max(1.0, float(np.abs(d).max(initial=0.0)))  # ties of the observed mean count as extreme
    n = len(d)
    if n <= 20 and 2**n <= n_permutations:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)[None]) & 1
        perm = ((1.0 - 2.0 * bits) * d).mean(1)
        return float(np.mean(perm >= obs - tol))
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_permutations, n))
    perm = (signs * d).mean(1)
    return float((1 + np.sum(perm >= obs - tol)) / (1 + n_permutations))


def paired_rank_biserial(diffs: Sequence[float]) -> float:
    """Matched-pairs rank-biserial correlation of ``diffs``: (R+ - R-) / (R+ + R-) over the non-zero ranks.

    +1: every track better under the model; 0: no tendency (also when every difference is 0).
    """
    from scipy.stats import rankdata

    d = np.asarray(diffs, dtype=np.float64)
    d = d[d != 0]
    if not len(d):
        return 0.0
    r = rankdata(np.abs(d))
    return float((r[d > 0].sum() - r[d < 0].sum()) / r.sum())


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

    model = make_model(job.k, job.cfg)
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
    model: DecisionModel,
    test_pairs: Sequence[TokenPair],
    train_pairs: Sequence[TokenPair],
    cfg: DecisionConfig,
    *,
    silence: int | None = None,
    executor: ExecConfig | None = None,
    progress: bool = False,
    tables: Tables | None = None,
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
        tables: The baselines' statistics of ``train_pairs`` (:func:`fit_tables`), fit once for every seed;
            None fits them here.

    Raises:
        InputError: Empty test split or fewer than 2 test tracks.
    """
    if not test_pairs:
        raise InputError(f"split {cfg.test_split}", "no pairs in this split (empty split)")
    k = model.k
    tables = fit_tables(train_pairs, k, cfg) if tables is None else tables
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
        for j, name in enumerate(TABLE_BASELINES):
            preds[name] = baseline_predictions(
                name, test_pairs, tables, seed=cfg.seed + 1000 * (j + 1), allowed=allowed
            )
        metrics[setting], track_tpp[setting], curves[setting] = _score_setting(preds, test_pairs, k, cfg, silence)
        preds_all[setting] = preds
    return EvalResult(metrics=metrics, track_tpp=track_tpp, lcp_curves=curves, predictions=preds_all)


def fit_tables(train_pairs: Sequence[TokenPair], k: int, cfg: DecisionConfig) -> Tables:
    """The baselines' statistics of the training split, the context baseline included (params ``decision``)."""
    return Tables.fit(train_pairs, k, context_window=cfg.context_window, c=cfg.context_c, role_names=cfg.role_names)


def _generate_models(
    model: DecisionModel,
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
    own = [model.pair_source(p) for p in test_pairs]
    # another track's A, with this pair's roles: the shuffled-A control asks whether the model uses A itself
    other = [model.source(a, p.stem_a, p.stem_b) for a, p in zip(shuffled_sources(test_pairs, cfg.seed), test_pairs)]
    sources = {"model": own, "model_shuffled_a": other, "model_greedy": own}
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
    "TABLE_BASELINES",
    "ContextModel",
    "Tables",
    "baseline_predictions",
    "compare",
    "evaluate",
    "fit_tables",
    "paired_permutation_p",
    "paired_rank_biserial",
    "per_track",
    "shuffled_sources",
    "write_plots",
]
