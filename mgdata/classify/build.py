"""The ``classify`` builder: every classifier experiment of one (task, embedder) pair.

:func:`plan` (read the real embedding tables and the deformation scenarios, prepare the task's splits) ->
:func:`_run` (baseline, then per generator augmented / generated_classified / synthetic_only / FAD, then
robustness; each writes its probes, confusion tables and plots as it finishes) -> :func:`_summarise`
(``results.md``, numbers-only metrics); :func:`headline` picks the numbers ``dvc metrics`` lists. Pipeline glue
(paths, params, the stage report) is in :mod:`mgdata.classify.stage`. The experiments themselves are one per
module (:mod:`mgdata.classify.experiments` lists them).

There is no executor and no worker: the experiments run one after another in this process (each trains a few
small probes per seed), and later experiments reuse the baseline's models.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from mgdata.classify.augment import run_augmented
from mgdata.classify.baseline import run_baseline
from mgdata.classify.data import TaskData, class_coverage, prepare_task
from mgdata.classify.fd import run_fad
from mgdata.classify.generated import run_generated_classified
from mgdata.classify.records import ClassifyResult
from mgdata.classify.report import (
    numbers_only,
    permutation_line,
    results_table,
    write_confusion,
    write_delta_plot,
    write_track_confusion,
)
from mgdata.classify.robustness import run_robustness
from mgdata.classify.synthetic import run_synthetic_only
from mgdata.classify.tables import EmbTable, concat_tables, load_artifact, load_table
from mgdata.errors import InputError
from mgdata.report import write_json

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _Plan:
    """What every experiment reads: the task's real splits, the embedder's description, the scenario tables."""

    task: str
    embedder: str
    embed_root: Path
    td: TaskData
    meta: dict[str, Any]
    scenarios: dict[str, EmbTable]

    @property
    def name(self) -> str:
        return f"classify {self.task}-{self.embedder}"


def _embed_meta(artifact_dir: Path) -> dict:
    """Embedder description and windowing recorded by the embed stage (saved with each probe)."""
    from mgdata.store import read_artifact_info

    embed = read_artifact_info(artifact_dir).get("embed") or {}
    return {"embedder": embed.get("embedder") or {}, "windowing": embed.get("windowing") or {}}


def build_classify(
    embed_root: str | Path,
    out_dir: str | Path | None = None,
    *,
    cfg,
    task: str,
    embedder: str,
    executor=None,
    progress: bool = True,
) -> ClassifyResult:
    """Run every experiment of (task, embedder) into ``out_dir``.

    Args:
        embed_root: Root of the embed stage's outputs (``<embedder>/<artifact>/<scenario>/{split}.npy``).
        out_dir: Output folder: the probes, ``results.json`` per experiment, confusion tables, plots and
            ``results.md``; None runs every experiment in memory and writes nothing (the metrics and the
            ``results.md`` text are in the result).
        cfg: Section ``classify``.
        task: Label column (``quadrant``, ``mood``, ``style``).
        embedder: Embedder name (folder under ``embed_root``).
        executor: Accepted for the builders' common shape and not used: the experiments run one after another
            in this process (each trains a few small probes per seed; later ones reuse the baseline's models).
        progress: Accepted for the common shape; there are no progress bars (each experiment is logged as it
            starts instead).

    Raises:
        InputError: A missing embedding table, task column or class (names it).
    """
    del executor, progress  # see Args: the shape is shared, the work here is sequential and logged
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    p = plan(Path(embed_root), task, embedder, cfg)
    metrics, augmented = _run(p, cfg, out)
    return _summarise(p, metrics, augmented, cfg, out)


def plan(embed_root: Path, task: str, embedder: str, cfg) -> _Plan:
    """Read the real tables (clean, and the test split of each scenario) and prepare the task's splits.

    Raises:
        InputError: A missing embedding table, task column or class.
    """
    real_dir = embed_root / embedder / cfg.real_artifact
    meta = _embed_meta(real_dir / "clean")
    td = prepare_task(load_artifact(real_dir / "clean"), task, cfg)
    scenarios = {}
    for sc in cfg.scenarios:
        d = real_dir / sc
        if not (d / "test.npy").exists():
            raise InputError(str(d / "test.npy"), f"scenario {sc!r}: test embeddings missing (run the embed stage)")
        scenarios[sc] = load_table(d, "test")
    return _Plan(task, embedder, embed_root, td, meta, scenarios)


def _run(p: _Plan, cfg, out: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every experiment in order; the metrics blocks and each generator's augmented summary."""
    metrics: dict[str, Any] = {"classes": class_coverage(p.td)}
    base = _baseline(p, cfg, out, metrics)
    augmented = {}
    for g in cfg.generators:
        augmented[g] = _generator(p, g, base, cfg, out, metrics)
    if p.scenarios:
        log.info("%s: robustness (%s)", p.name, ", ".join(p.scenarios))
        metrics["robustness"] = run_robustness(p.td, p.scenarios, cfg, baseline=base, embedder=p.meta.get("embedder"))
    return metrics, augmented


def _baseline(p: _Plan, cfg, out: Path | None, metrics: dict[str, Any]) -> dict[str, Any]:
    """Real train -> real test over the trials; writes the probes and the test confusion; returns the block
    the later experiments compare with (``models`` included)."""
    log.info("%s: baseline (%d trials, %d train rows)", p.name, cfg.trials, len(p.td.train))
    base = run_baseline(p.td, cfg, embedder=p.meta.get("embedder"))
    models = base.pop("models")
    confusion = base.pop("test_confusion")
    for m in models:
        m.meta["windowing"] = p.meta.get("windowing") or {}
    if out is not None:
        write_track_confusion(out / "baseline" / "confusion_test.csv", confusion)
        for t, m in enumerate(models):
            m.save(out / "baseline" / ("model" if t == 0 else f"trials/t{t}"))
        write_json(out / "baseline" / "results.json", numbers_only(base) | {"classes": p.td.classes})
    base["models"] = models
    metrics["baseline"] = {k: base[k] for k in ("summary", "references", "permutation", "counts")}
    return base


def _generator(
    p: _Plan, g: str, base: dict[str, Any], cfg, out: Path | None, metrics: dict[str, Any]
) -> dict[str, Any]:
    """The four experiments of generator ``g``; returns its augmented summary (for ``results.md``)."""
    gen = concat_tables(list(load_artifact(p.embed_root / p.embedder / g / "clean").values()))
    log.info("%s: augmented@%s, generated_classified@%s, synthetic_only@%s, fad@%s", p.name, g, g, g, g)
    res = run_augmented(p.td, gen, base, cfg, embedder=p.meta.get("embedder"))
    if out is not None:
        write_delta_plot(
            out / f"augmented@{g}" / "per_class_delta.png",
            res["per_class_delta"],
            f"{p.task} / {p.embedder}: real + {g} vs real",
        )
        write_json(out / f"augmented@{g}" / "results.json", numbers_only(res))
    metrics[f"augmented@{g}"] = {k: res[k] for k in ("summary", "delta", "per_class_delta", "counts")}
    summary = res["summary"]

    res = run_generated_classified(p.td, gen, base, cfg, embedder=p.meta.get("embedder"))
    block: dict[str, Any] = {"counts": res["counts"]}
    for variant in ("source_in_training", "source_unseen"):
        r = res[variant]
        if out is not None and "pairs" in r and r["n"]:
            write_confusion(
                out / f"generated_classified@{g}", f"confusion_{variant}", r, f"{g} -> {p.task} ({variant})"
            )
        block[variant] = {k: v for k, v in r.items() if k not in ("pairs", "classes", "counts")}
    metrics[f"generated_classified@{g}"] = block
    metrics[f"synthetic_only@{g}"] = run_synthetic_only(p.td, gen, cfg, embedder=p.meta.get("embedder"))
    metrics[f"fad@{g}"] = run_fad(p.td, gen, cfg)
    return summary


def _summarise(p: _Plan, metrics: dict[str, Any], augmented: dict[str, Any], cfg, out: Path | None) -> ClassifyResult:
    """``results.md`` (the seed paper's Table III layout and the permutation lines) and the numbers-only metrics."""
    md = results_table(
        p.task,
        p.embedder,
        metrics["baseline"]["summary"],
        augmented,
        highlight_rel=cfg.highlight_rel,
        references=metrics["baseline"].get("references"),
    )
    md += "\n" + permutation_line(metrics["baseline"]["permutation"], metrics["baseline"]["counts"]["test_tracks"])
    cov = metrics["classes"]
    md += (
        f"\nClasses: {cov['train_classes']} in train of a vocabulary of {cov['vocabulary']}; macro metrics are over "
        f"the {cov['test_classes_with_positives']} with test positives: {', '.join(cov['classes_with_test_positives'])}.\n"
    )
    for g in cfg.generators:
        syn = metrics[f"synthetic_only@{g}"]
        md += "\n" + permutation_line(syn["permutation"], syn["counts"]["test_tracks"], f"synthetic-only@{g} probe")
    if out is not None:
        (out / "results.md").write_text(md, encoding="utf-8")
    return ClassifyResult(
        task=p.task,
        embedder=p.embedder,
        out_dir=out,
        metrics=numbers_only(metrics),
        results_md=md,
        classes=metrics["classes"],
    )


def headline(metrics: dict[str, Any], cfg) -> dict[str, float]:
    """The numbers per (task, embedder) that ``dvc metrics show/diff`` lists.

    ``dvc metrics show metrics/classify`` is one table whose columns are the union of every classify metrics
    file's keys, kept at most 30 (``tests/test_pipeline_framework.py``), so classify keeps the figures that
    answer its question -- does generated audio help a classifier, and is it close to real audio -- each
    model figure that is a mean over seeds with its ``_std``: the baseline (macro ROC-AUC and F1; the largest
    permutation p over seeds), the augmented relative deltas, the unseen-source generated-classified accuracy
    (single-label tasks), synthetic-only ROC-AUC, and FAD (no seed). Chance/majority references, PR-AUC,
    source-in-training accuracy, robustness drops, seed-agreement counts and every count are in the stage
    report (``experiments``) and ``results.md``.
    """
    b = metrics["baseline"]
    s = b["summary"]
    out = {
        "baseline_roc_auc_macro": s.get("roc_auc_macro_mean"),
        "baseline_roc_auc_macro_std": s.get("roc_auc_macro_std"),
        "baseline_f1_macro": s.get("f1_macro_mean"),
        "baseline_f1_macro_std": s.get("f1_macro_std"),
        # the weakest seed's evidence: below 0.05 iff every seed's test is
        "baseline_perm_p_max": b.get("permutation", {}).get("p_value_max"),
    }
    for g in cfg.generators:
        delta = metrics.get(f"augmented@{g}", {}).get("delta", {})
        for k in ("f1_macro", "roc_auc_macro"):
            out[f"augmented_{g}_{k}_rel"] = delta.get(f"{k}_rel")
            out[f"augmented_{g}_{k}_rel_std"] = delta.get(f"{k}_rel_std")
        unseen = metrics.get(f"generated_classified@{g}", {}).get("source_unseen", {}).get("summary", {})
        out[f"generated_{g}_acc_source_unseen"] = unseen.get("accuracy_mean")  # absent for multi-label tasks
        out[f"generated_{g}_acc_source_unseen_std"] = unseen.get("accuracy_std")
        syn = metrics.get(f"synthetic_only@{g}", {}).get("summary", {})
        out[f"synthetic_only_{g}_roc_auc_macro"] = syn.get("roc_auc_macro_mean")
        out[f"synthetic_only_{g}_roc_auc_macro_std"] = syn.get("roc_auc_macro_std")
        out[f"fad_{g}"] = metrics.get(f"fad@{g}", {}).get("overall", {}).get("fd")
    return {k: v for k, v in out.items() if isinstance(v, (int, float))}


__all__ = ["ClassifyResult", "build_classify", "headline", "plan"]
