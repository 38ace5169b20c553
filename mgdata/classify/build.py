"""The ``classify`` builder: every classifier experiment of one (task, embedder) pair.

:func:`plan` (read the real embedding tables and the deformation scenarios, prepare the task's splits) ->
:func:`_run` (baseline, then per generator augmented / generated_classified / synthetic_only / FAD, then
robustness; each writes its probes, confusion tables and plots as it finishes) -> :func:`_summarise`
(``results.md``, numbers-only metrics). Pipeline glue (paths, params, headline, stage report) is in
:mod:`mgdata.classify.stage`.

There is no executor and no worker: the experiments run one after another in this process (each trains a few
small probes per seed), and later experiments reuse the baseline's models.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from mgdata.classify import experiments as ex
from mgdata.classify.records import ClassifyResult
from mgdata.classify.report import (
    numbers_only,
    permutation_line,
    results_table,
    write_confusion,
    write_delta_plot,
    write_track_confusion,
)
from mgdata.errors import InputError
from mgdata.report import write_json

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _Plan:
    """What every experiment reads: the task's real splits, the embedder's description, the scenario tables."""

    task: str
    embedder: str
    embed_root: Path
    td: ex.TaskData
    meta: dict[str, Any]
    scenarios: dict[str, ex.EmbTable]

    @property
    def name(self) -> str:
        return f"classify {self.task}-{self.embedder}"


def _embed_meta(artifact_dir: Path) -> dict:
    """Embedder description and windowing recorded by the embed stage (saved with each probe)."""
    from mgdata.store import read_artifact_info

    embed = read_artifact_info(artifact_dir).get("embed") or {}
    return {"embedder": embed.get("embedder") or {}, "windowing": embed.get("windowing") or {}}


def build_classify(embed_root: str | Path, out_dir: str | Path, *, cfg, task: str, embedder: str) -> ClassifyResult:
    """Run every experiment of (task, embedder) into ``out_dir``.

    Args:
        embed_root: Root of the embed stage's outputs (``<embedder>/<artifact>/<scenario>/{split}.npy``).
        out_dir: Output folder (required: the probes, confusion tables and plots are the outputs).
        cfg: Section ``classify``.
        task: Label column (``quadrant``, ``mood``, ``style``).
        embedder: Embedder name (folder under ``embed_root``).

    Raises:
        InputError: A missing embedding table, task column or class (names it).
    """
    out = Path(out_dir)
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
    td = ex.prepare_task(ex.load_artifact(real_dir / "clean"), task, cfg)
    scenarios = {}
    for sc in cfg.scenarios:
        d = real_dir / sc
        if not (d / "test.npy").exists():
            raise InputError(str(d / "test.npy"), f"scenario {sc!r}: test embeddings missing (run the embed stage)")
        scenarios[sc] = ex.load_table(d, "test")
    return _Plan(task, embedder, embed_root, td, meta, scenarios)


def _run(p: _Plan, cfg, out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every experiment in order; the metrics blocks and each generator's augmented summary."""
    metrics: dict[str, Any] = {}
    base = _baseline(p, cfg, out, metrics)
    augmented = {}
    for g in cfg.generators:
        augmented[g] = _generator(p, g, base, cfg, out, metrics)
    if p.scenarios:
        log.info("%s: robustness (%s)", p.name, ", ".join(p.scenarios))
        metrics["robustness"] = ex.run_robustness(
            p.td, p.scenarios, cfg, baseline=base, embedder=p.meta.get("embedder")
        )
    return metrics, augmented


def _baseline(p: _Plan, cfg, out: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """Real train -> real test over the trials; writes the probes and the test confusion; returns the block
    the later experiments compare with (``models`` included)."""
    log.info("%s: baseline (%d trials, %d train rows)", p.name, cfg.trials, len(p.td.train))
    base = ex.run_baseline(p.td, cfg, embedder=p.meta.get("embedder"))
    models = base.pop("models")
    write_track_confusion(out / "baseline" / "confusion_test.csv", base.pop("test_confusion"))
    for t, m in enumerate(models):
        m.meta["windowing"] = p.meta.get("windowing") or {}
        m.save(out / "baseline" / ("model" if t == 0 else f"trials/t{t}"))
    write_json(out / "baseline" / "results.json", numbers_only(base) | {"classes": p.td.classes})
    base["models"] = models
    metrics["baseline"] = {k: base[k] for k in ("summary", "references", "permutation", "counts")}
    return base


def _generator(p: _Plan, g: str, base: dict[str, Any], cfg, out: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """The four experiments of generator ``g``; returns its augmented summary (for ``results.md``)."""
    gen = ex.concat_tables(list(ex.load_artifact(p.embed_root / p.embedder / g / "clean").values()))
    log.info("%s: augmented@%s, generated_classified@%s, synthetic_only@%s, fad@%s", p.name, g, g, g, g)
    res = ex.run_augmented(p.td, gen, base, cfg, embedder=p.meta.get("embedder"))
    write_delta_plot(
        out / f"augmented@{g}" / "per_class_delta.png",
        res["per_class_delta"],
        f"{p.task} / {p.embedder}: real + {g} vs real",
    )
    write_json(out / f"augmented@{g}" / "results.json", numbers_only(res))
    metrics[f"augmented@{g}"] = {k: res[k] for k in ("summary", "delta", "per_class_delta", "counts")}
    summary = res["summary"]

    res = ex.run_generated_classified(p.td, gen, base, cfg, embedder=p.meta.get("embedder"))
    block: dict[str, Any] = {"counts": res["counts"]}
    for variant in ("source_in_training", "source_unseen"):
        r = res[variant]
        if "pairs" in r and r["n"]:
            write_confusion(
                out / f"generated_classified@{g}", f"confusion_{variant}", r, f"{g} -> {p.task} ({variant})"
            )
        block[variant] = {k: v for k, v in r.items() if k not in ("pairs", "classes", "counts")}
    metrics[f"generated_classified@{g}"] = block
    metrics[f"synthetic_only@{g}"] = ex.run_synthetic_only(p.td, gen, cfg, embedder=p.meta.get("embedder"))
    metrics[f"fad@{g}"] = ex.run_fad(p.td, gen, cfg)
    return summary


def _summarise(p: _Plan, metrics: dict[str, Any], augmented: dict[str, Any], cfg, out: Path) -> ClassifyResult:
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
    for g in cfg.generators:
        syn = metrics[f"synthetic_only@{g}"]
        md += "\n" + permutation_line(syn["permutation"], syn["counts"]["test_tracks"], f"synthetic-only@{g} probe")
    (out / "results.md").write_text(md, encoding="utf-8")
    return ClassifyResult(task=p.task, embedder=p.embedder, out_dir=out, metrics=numbers_only(metrics))


__all__ = ["ClassifyResult", "build_classify", "plan"]
