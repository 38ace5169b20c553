"""Summarise the curves: paired tests per point, and per source synthetic-only, novelty, label validity and FD."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mgdata.classify.data import Data, track_level
from mgdata.classify.fd import frechet_distance
from mgdata.geneval.config import GenevalConfig, point_name
from mgdata.geneval.sources import rows_of
from mgdata.geneval.stats import paired_gain

log = logging.getLogger(__name__)


def novelty(rows: Data, train: Data, test: Data, reference: Data) -> float:
    """Memorisation index of a source's clips: 1 = as novel as real music never trained on; a copier sits above.

    Per clip (features standardised on train, cosine similarity), is its nearest training clip closer than its
    nearest real test clip? Real unseen clips (``reference``: validation) answer yes at some rate ``q`` (the
    training set is larger, so it often holds the nearest neighbour); the index is the source's rate over ``q``.
    Comparing train with test cancels what moves a clip away from all real audio alike (a resynthesis's timbre), so
    the index measures closeness to the training material itself (at most ``1 / q`` for verbatim copies).
    """
    if len(rows) == 0 or len(reference) == 0:
        return float("nan")
    mu, sd = train.x.mean(0), train.x.std(0) + 1e-8

    def unit(x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - mu) / sd
        return z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)

    tr, te = unit(train.x), unit(test.x)

    def rate(x: np.ndarray) -> float:
        u = unit(x)
        return float(np.mean((u @ tr.T).max(axis=1) > (u @ te.T).max(axis=1)))

    q = rate(reference.x)
    return rate(rows.x) / q if q > 0 else float("nan")


def _curve_points(p, results: list, cfg: GenevalConfig) -> tuple[list[dict[str, Any]], np.ndarray]:
    """One row per (source, f, r): gains with p, interval and MDE; plus the largest-f baselines' extra scores."""
    scores: dict[str, list[np.ndarray]] = {}
    extras = []
    for task, (s, extra) in zip(p.tasks, results):
        scores.setdefault(task.name, []).append(s)
        if extra is not None:
            extras.append(extra)
    _, yt, _ = track_level(p.td.test.tracks, p.td.test.y, np.zeros(p.td.test.y.shape))
    sizes = {t.name: len(t.train) for t in p.tasks}
    rows = []
    for f in cfg.fractions:
        base_name = f"baseline_f{round(f * 100)}"
        base = np.stack(scores[base_name])
        for r in cfg.ratios:
            for source in cfg.sources():
                name = point_name(source, f, r)
                stats = paired_gain(
                    yt,
                    base,
                    np.stack(scores[name]),
                    permutations=cfg.permutations,
                    bootstrap=cfg.bootstrap,
                    seed=cfg.seed,
                )
                added = sizes[name] - sizes[base_name]
                rows.append(
                    {
                        "source": source,
                        "series": f"{source} r={r:g}",
                        "f": f,
                        "r": r,
                        "real_rows": sizes[base_name],
                        "added_rows": added,
                        "r_effective": added / sizes[base_name],
                        **stats,
                    }
                )
    return rows, np.stack(extras) if extras else np.zeros((0, 0, 0))


def _validity(p, extras: np.ndarray) -> dict[str, dict[str, float]]:
    """Accuracy of the largest-fraction baselines on clips whose source track they never saw, per source."""
    out, start = {}, 0
    for source, rows in p.validity.items():
        n = len(rows)
        if n == 0 or extras.size == 0:
            out[source] = {"accuracy": float("nan"), "n": n}
        else:
            pred = extras[:, start : start + n].argmax(-1)
            acc = (pred == rows.y.argmax(-1)[None]).mean(axis=1)
            out[source] = {"accuracy": float(acc.mean()), "accuracy_std": float(acc.std(ddof=1)), "n": n}
        start += n
    return out


def summarise(p, results: list, cfg: GenevalConfig):
    """The :class:`~mgdata.geneval.build.GenevalResult` of a run: headline metrics (numbers only, the issue's
    key names) and every figure."""
    from mgdata.classify.synthetic import run_synthetic_only
    from mgdata.geneval.build import GenevalResult, classify_config
    from mgdata.geneval.report import leaderboard

    curves, extras = _curve_points(p, results, cfg)
    validity = _validity(p, extras)
    curve_tracks = frozenset().union(*p.split.subsets.values())
    real_train = rows_of(p.td.train, curve_tracks)
    ntd = p.novelty_td or p.td
    ngen = p.novelty_gen or p.gen_rows
    n_train, n_pool = rows_of(ntd.train, curve_tracks), rows_of(ntd.train, p.split.pool)
    pool = p.validity["oracle"]
    per_source: dict[str, dict[str, Any]] = {}
    for source in cfg.sources():
        rows = pool if source.startswith("oracle") else p.gen_rows[source]
        nrows = n_pool if source.startswith("oracle") else ngen[source]
        entry = {"novelty": novelty(nrows, n_train, ntd.test, ntd.val), "validity": validity.get(source, {})}
        entry["fd"] = frechet_distance(rows.x, real_train.x) if len(rows) >= 2 else float("nan")
        entry["n_rows"] = len(rows)
        if source in p.generated:
            syn = run_synthetic_only(p.td, p.generated[source], classify_config(cfg, p.task))
            entry["synthetic_only"] = {
                "f1_macro": syn["summary"]["f1_macro_mean"],
                "f1_macro_std": syn["summary"]["f1_macro_std"],
                "roc_auc_macro": syn["summary"]["roc_auc_macro_mean"],
                "p": syn["permutation"]["p_value_max"],
            }
        per_source[source] = entry
    mde = {f"{f:g}": float(np.median([r["mde_roc_auc_macro"] for r in curves if r["f"] == f])) for f in cfg.fractions}
    metrics = _headline(curves, per_source, mde)
    details = {
        "points": curves,
        "sources": per_source,
        "chance_accuracy": 1 / len(p.td.classes),
        "pool_tracks": len(p.split.pool),
        "curve_tracks": {str(f): len(t) for f, t in p.split.subsets.items()},
        "test_tracks": int(np.unique(p.td.test.tracks.astype(str)).size),
        "classes": p.td.classes,
        "mde_roc_auc_macro": mde,
        "novelty_embedder": cfg.novelty_embedder or cfg.embedder,
    }
    return GenevalResult(metrics, details, leaderboard(p.task, p.embedder, details, cfg), curves)


def _headline(
    curves: list[dict[str, Any]], per_source: dict[str, dict[str, Any]], mde: dict[str, float]
) -> dict[str, float]:
    """The issue's keys: gain and p per point, synthetic-only F1 and p, novelty per source, MDE per fraction."""
    m: dict[str, float] = {}
    for row in curves:
        name = point_name(row["source"], row["f"], row["r"])
        m[f"gain_{name}_roc_auc_macro"] = row["gain_roc_auc_macro"]
        m[f"gain_{name}_p"] = row["p_roc_auc_macro"]
    for source, entry in per_source.items():
        if "synthetic_only" in entry:
            m[f"synthetic_only_{source}_f1_macro"] = entry["synthetic_only"]["f1_macro"]
            m[f"synthetic_only_{source}_p"] = entry["synthetic_only"]["p"]
        m[f"novelty_{source}"] = entry["novelty"]
    for f, value in mde.items():
        m[f"mde_f{round(float(f) * 100)}_roc_auc_macro"] = value
    return {k: round(float(v), 6) for k, v in sorted(m.items())}


__all__ = ["novelty", "summarise"]
