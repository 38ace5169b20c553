"""Stage ``classify@<task>-<embedder>``: every classifier experiment of one (task, embedder) pair.

Inputs are the consolidated embedding tables of the ``embed`` stage:
``data/embed/<embedder>/<classify.real_artifact>/<scenario>/{split}.npy + .parquet`` (real audio) and
``data/embed/<embedder>/<generator>/clean/`` (generated audio; a row carries its source track's id, split
and labels). In order, into ``data/classify/<task>-<embedder>/``:

* ``baseline/``: real train -> real test, ``classify.trials`` trials (``baseline/model`` is trial 0, the
  folder ``mgdata classify predict`` takes), permutation p-value, majority/chance references;
* per generator G: ``augmented@G/`` (real + generated train; deltas vs the baseline, per-class delta
  plot), ``generated_classified@G/`` (confusion matrices, source track in training / unseen),
  ``synthetic_only@G`` (trained on generated audio only), ``fad@G`` (Frechet distance vs real train);
* ``robustness``: every probe on each deformation scenario of the test split (drop vs clean);
* ``results.md``: the seed paper's Table III layout (baseline and each generator, cells >= +1 % marked).

``metrics/classify/<task>-<embedder>.json`` holds the numbers of all of them (one block per experiment).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mgdata.errors import InputError

log = logging.getLogger(__name__)


def _embed_meta(artifact_dir: Path) -> dict:
    """Embedder description and windowing recorded by the embed stage (saved with each probe)."""
    from mgdata.store import read_artifact_info

    embed = read_artifact_info(artifact_dir).get("embed") or {}
    return {"embedder": embed.get("embedder") or {}, "windowing": embed.get("windowing") or {}}


def run_all(task: str, embedder: str, cfg, *, embed_root: Path, out_dir: Path) -> dict[str, Any]:
    """Run every experiment of (task, embedder); returns the metrics (numbers only, one block each).

    Raises:
        InputError: A missing embedding table, task column or class (names it).
    """
    from mgdata.classify import experiments as ex
    from mgdata.classify.report import numbers_only, results_table, write_confusion, write_delta_plot
    from mgdata.report import write_json

    real_dir = embed_root / embedder / cfg.real_artifact
    meta = _embed_meta(real_dir / "clean")
    td = ex.prepare_task(ex.load_artifact(real_dir / "clean"), task, cfg)
    metrics: dict[str, Any] = {}
    name = f"classify {task}-{embedder}"
    log.info("%s: baseline (%d trials, %d train rows)", name, cfg.trials, len(td.train))
    base = ex.run_baseline(td, cfg, embedder=meta.get("embedder"))
    models = base.pop("models")
    for t, m in enumerate(models):
        m.meta["windowing"] = meta.get("windowing") or {}
        m.save(out_dir / "baseline" / ("model" if t == 0 else f"trials/t{t}"))
    write_json(out_dir / "baseline" / "results.json", numbers_only(base) | {"classes": td.classes})
    base["models"] = models
    metrics["baseline"] = {k: base[k] for k in ("summary", "references", "permutation", "counts")}

    augmented = {}
    for g in cfg.generators:
        gen = ex.concat_tables(list(ex.load_artifact(embed_root / embedder / g / "clean").values()))
        log.info("%s: augmented@%s, generated_classified@%s, synthetic_only@%s, fad@%s", name, g, g, g, g)
        res = ex.run_augmented(td, gen, base, cfg, embedder=meta.get("embedder"))
        write_delta_plot(
            out_dir / f"augmented@{g}" / "per_class_delta.png",
            res["per_class_delta"],
            f"{task} / {embedder}: real + {g} vs real",
        )
        write_json(out_dir / f"augmented@{g}" / "results.json", numbers_only(res))
        metrics[f"augmented@{g}"] = {k: res[k] for k in ("summary", "delta", "per_class_delta", "counts")}
        augmented[g] = res["summary"]

        res = ex.run_generated_classified(td, gen, base, cfg, embedder=meta.get("embedder"))
        block: dict[str, Any] = {"counts": res["counts"]}
        for variant in ("source_in_training", "source_unseen"):
            r = res[variant]
            if "pairs" in r and r["n"]:
                write_confusion(
                    out_dir / f"generated_classified@{g}", f"confusion_{variant}", r, f"{g} -> {task} ({variant})"
                )
            block[variant] = {k: v for k, v in r.items() if k not in ("pairs", "classes", "counts")}
        metrics[f"generated_classified@{g}"] = block
        metrics[f"synthetic_only@{g}"] = ex.run_synthetic_only(td, gen, cfg, embedder=meta.get("embedder"))
        metrics[f"fad@{g}"] = ex.run_fad(td, gen, cfg)

    scenarios = {}
    for sc in cfg.scenarios:
        d = real_dir / sc
        if not (d / "test.npy").exists():
            raise InputError(str(d / "test.npy"), f"scenario {sc!r}: test embeddings missing (run the embed stage)")
        scenarios[sc] = ex.load_table(d, "test")
    if scenarios:
        log.info("%s: robustness (%s)", name, ", ".join(scenarios))
        metrics["robustness"] = ex.run_robustness(td, scenarios, cfg, baseline=base, embedder=meta.get("embedder"))

    md = results_table(
        task,
        embedder,
        metrics["baseline"]["summary"],
        augmented,
        highlight_rel=cfg.highlight_rel,
        references=metrics["baseline"].get("references"),
    )
    perm = metrics["baseline"].get("permutation", {})
    md += (
        f"\nPermutation test (labels permuted over {metrics['baseline']['counts']['test_tracks']} test tracks, "
        f"model fixed, {perm.get('n_permutations', 0)} permutations): macro ROC-AUC "
        f"{perm.get('roc_auc_macro', 0):.3f}, p = {perm.get('p_value', float('nan')):.4f}.\n"
    )
    (out_dir / "results.md").write_text(md, encoding="utf-8")
    return numbers_only(metrics)


def headline(metrics: dict[str, Any], cfg) -> dict[str, float]:
    """The few numbers per (task, embedder) that ``dvc metrics show/diff`` lists (all experiments' full blocks
    are in the stage report and ``data/classify/<task>-<embedder>/``)."""
    b = metrics["baseline"]
    s = b["summary"]
    out = {
        "baseline_roc_auc_macro": s.get("roc_auc_macro_mean"),
        "baseline_roc_auc_macro_std": s.get("roc_auc_macro_std"),
        "baseline_f1_macro": s.get("f1_macro_mean"),
        "baseline_f1_macro_std": s.get("f1_macro_std"),
        "baseline_pr_auc_macro": s.get("pr_auc_macro_mean"),
        "baseline_perm_p": b.get("permutation", {}).get("p_value"),
        "chance_roc_auc_macro": b.get("references", {}).get("chance", {}).get("roc_auc_macro"),
        "chance_f1_macro": b.get("references", {}).get("chance", {}).get("f1_macro"),
        "test_tracks": b["counts"].get("test_tracks"),
    }
    for g in cfg.generators:
        delta = metrics.get(f"augmented@{g}", {}).get("delta", {})
        out[f"augmented_{g}_f1_macro_rel"] = delta.get("f1_macro_rel")
        out[f"augmented_{g}_roc_auc_macro_rel"] = delta.get("roc_auc_macro_rel")
        gc = metrics.get(f"generated_classified@{g}", {})
        out[f"generated_{g}_acc_source_in_training"] = gc.get("source_in_training", {}).get("accuracy")
        out[f"generated_{g}_acc_source_unseen"] = gc.get("source_unseen", {}).get("accuracy")
        out[f"synthetic_only_{g}_roc_auc_macro"] = (
            metrics.get(f"synthetic_only@{g}", {}).get("summary", {}).get("roc_auc_macro_mean")
        )
        out[f"fad_{g}"] = metrics.get(f"fad@{g}", {}).get("overall", {}).get("fd")
    for sc, block in metrics.get("robustness", {}).get(cfg.probe, {}).items():
        if sc != "clean":
            out[f"robustness_{sc}_roc_auc_macro_drop"] = block.get("roc_auc_macro_drop")
    return {k: v for k, v in out.items() if isinstance(v, (int, float))}


def run(ctx) -> Any:
    """Stage entry: ``--task`` x ``--embedder`` of the DVC matrix."""
    from mgdata.pipeline import StageOutcome

    a = ctx.args
    cfg = ctx.section("classify")
    out_dir = a.out_root / ctx.name
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = run_all(a.task, a.embedder, cfg, embed_root=a.embed_root, out_dir=out_dir)
    for key, value in headline(metrics, cfg).items():
        ctx.report.set(key, value)
    ctx.report.set("experiments", metrics)  # every block, in the stage report
    # The results table also lands under plots/ so the report and `dvc plots` find it.
    plots = a.plots_dir / f"{ctx.name}.md"
    plots.parent.mkdir(parents=True, exist_ok=True)
    plots.write_text((out_dir / "results.md").read_text(encoding="utf-8"), encoding="utf-8")
    s = metrics["baseline"]["summary"]
    p = metrics["baseline"].get("permutation", {}).get("p_value")
    return StageOutcome(
        summary=f"baseline macro ROC-AUC {s.get('roc_auc_macro_mean', float('nan')):.3f} ± "
        f"{s.get('roc_auc_macro_std', float('nan')):.3f} (permutation p = {p}), experiments: {', '.join(metrics)} "
        f"-> {out_dir}",
        inputs=metrics["baseline"]["counts"].get("test_tracks", 0),
        outputs=len(metrics),
    )
