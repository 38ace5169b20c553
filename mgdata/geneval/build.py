"""The ``geneval`` builder: learning curves of one (task, embedder) with controls, and the leaderboard numbers.

:func:`plan` (read the real and generated embedding tables, carve the oracle pool and the nested subsets, list
every probe fit) -> :func:`run` (the fits on the executor, in a fixed order) -> :func:`summarise` (paired tests
per point, synthetic-only, novelty, label validity and FD per source; numbers-only metrics and the leaderboard).
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.classify.config import ClassifyConfig
from mgdata.classify.data import Data, TaskData, concat_data, generated_data, prepare_task
from mgdata.classify.tables import EmbTable, concat_tables, load_artifact
from mgdata.exec import ExecConfig, get_executor
from mgdata.geneval.config import GenevalConfig, point_name
from mgdata.geneval.sources import (
    CurveSplit,
    carve,
    draw_rows,
    eligible_generated,
    rows_of,
    shuffled_labels,
    unseen_source,
)
from mgdata.geneval.worker import FitTask, fit_scores

log = logging.getLogger(__name__)


@dataclasses.dataclass
class GenevalPlan:
    """Everything the fits and the summary read."""

    task: str
    embedder: str
    td: TaskData
    split: CurveSplit
    generated: dict[str, EmbTable]
    gen_rows: dict[str, Data]
    validity: dict[str, Data]
    tasks: list[FitTask]
    novelty_td: TaskData | None = None
    novelty_gen: dict[str, Data] | None = None


@dataclasses.dataclass
class GenevalResult:
    """Numbers-only headline metrics, every figure (``details``), and the leaderboard markdown."""

    metrics: dict[str, float]
    details: dict[str, Any]
    leaderboard_md: str
    curves: list[dict[str, Any]]


def classify_config(cfg: GenevalConfig, task: str) -> ClassifyConfig:
    """The classify settings the shared helpers (task data, synthetic-only) read, from section ``geneval``."""
    return ClassifyConfig(
        tasks=[task],
        embedders=[cfg.embedder],
        real_artifact=cfg.real_artifact,
        generators=list(cfg.generators),
        scenarios=[],
        probes={"probe": cfg.probe},
        probe="probe",
        synthetic_hidden=list(cfg.synthetic_hidden),
        trials=cfg.trials,
        seed=cfg.seed,
        permutations=cfg.permutations,
    )


def _seed(cfg: GenevalConfig, *parts: Any) -> int:
    """A draw seed of (seed, names...): stable across runs and machines (crc32 of the names, not ``hash``)."""
    return int(np.random.SeedSequence([cfg.seed, zlib.crc32(repr(parts).encode())]).generate_state(1)[0])


def _source_rows(p_td: TaskData, split: CurveSplit, gen_rows: dict[str, Data], source: str, cfg, trial: int) -> Data:
    pool = rows_of(p_td.train, split.pool)
    if source == "oracle":
        return pool
    if source == "oracle_shuffled":
        return shuffled_labels(pool, _seed(cfg, "shuffle", trial))
    return gen_rows[source]


def _fit_tasks(
    td: TaskData, split: CurveSplit, gen_rows: dict[str, Data], validity: dict[str, Data], cfg: GenevalConfig
) -> list[FitTask]:
    """Every fit in a fixed order: per fraction the baselines, then per ratio and source the augmented fits;
    the largest-fraction baselines also score the label-validity rows (clips whose source track they never saw)."""
    classes = tuple(td.classes)
    unseen = np.concatenate([d.x for d in validity.values()]).astype(np.float32)
    tasks: list[FitTask] = []
    for f in cfg.fractions:
        real = rows_of(td.train, split.subsets[f])
        for t in range(cfg.trials):
            extra = unseen if f == cfg.fractions[-1] else None
            tasks.append(
                FitTask(
                    f"baseline_f{round(f * 100)}", t, cfg.seed + t, real, td.val, td.test, classes, cfg.probe, extra
                )
            )
        for r in cfg.ratios:
            for source in cfg.sources():
                for t in range(cfg.trials):
                    rows = _source_rows(td, split, gen_rows, source, cfg, t)
                    add, _ = draw_rows(rows, round(r * len(real)), len(classes), _seed(cfg, source, f, r, t))
                    name = point_name(source, f, r)
                    tasks.append(
                        FitTask(name, t, cfg.seed + t, concat_data(real, add), td.val, td.test, classes, cfg.probe)
                    )
    return tasks


def plan(embed_root: str | Path, task: str, cfg: GenevalConfig) -> GenevalPlan:
    """Read the tables, carve the pool and subsets, and list the fits.

    Raises:
        InputError: A missing embedding table or task column (names it).
    """
    root = Path(embed_root) / cfg.embedder
    ccfg = classify_config(cfg, task)
    td = prepare_task(load_artifact(root / cfg.real_artifact / "clean"), task, ccfg)
    split = carve(td.train, list(cfg.fractions), cfg.pool_fraction, cfg.seed)
    generated = {g: concat_tables(list(load_artifact(root / g / "clean").values())) for g in cfg.generators}
    gen_all = {g: generated_data(t, td, ccfg) for g, t in generated.items()}
    gen_rows = {g: eligible_generated(d, split.pool) for g, d in gen_all.items()}
    pool = rows_of(td.train, split.pool)
    # Label validity, source unseen: clips made from pool tracks (no curve probe trained on those), the pool itself
    # (real unseen music: the reference) and the pool under shuffled labels (chance).
    validity = {
        **{g: unseen_source(d, split.pool) for g, d in gen_all.items()},
        "oracle": pool,
        "oracle_shuffled": shuffled_labels(pool, _seed(cfg, "shuffle", 0)),
    }
    tasks = _fit_tasks(td, split, gen_rows, validity, cfg)
    p = GenevalPlan(task, cfg.embedder, td, split, generated, gen_rows, validity, tasks)
    if cfg.novelty_embedder and cfg.novelty_embedder != cfg.embedder:
        # The same tracks and clips in another embedding: rows are selected by track, so pool and subsets carry over.
        nroot = Path(embed_root) / cfg.novelty_embedder
        p.novelty_td = prepare_task(load_artifact(nroot / cfg.real_artifact / "clean"), task, ccfg)
        p.novelty_gen = {
            g: eligible_generated(
                generated_data(concat_tables(list(load_artifact(nroot / g / "clean").values())), p.novelty_td, ccfg),
                split.pool,
            )
            for g in cfg.generators
        }
    return p


def run(p: GenevalPlan, executor: ExecConfig | None = None, progress: bool = True) -> list:
    """The fits, in plan order (results do not depend on the executor or its worker count)."""
    with get_executor(executor or ExecConfig(backend="serial")) as ex:
        return list(ex.imap(fit_scores, p.tasks, desc=f"geneval {p.task}-{p.embedder}", progress=progress))


def build_geneval(
    embed_root: str | Path,
    out_dir: str | Path | None = None,
    *,
    cfg: GenevalConfig,
    task: str,
    executor: ExecConfig | None = None,
    progress: bool = True,
) -> GenevalResult:
    """Learning curves, controls and leaderboard of ``task`` on ``cfg.embedder``; writes ``out_dir`` if given
    (``results.json``, ``curves.csv``, ``leaderboard.md``)."""
    from mgdata.geneval.summary import summarise

    p = plan(embed_root, task, cfg)
    log.info("geneval %s-%s: %d fits", task, cfg.embedder, len(p.tasks))
    result = summarise(p, run(p, executor, progress), cfg)
    if out_dir is not None:
        from mgdata.geneval.report import write_outputs

        write_outputs(Path(out_dir), result)
    return result


__all__ = ["GenevalPlan", "GenevalResult", "build_geneval", "classify_config", "plan", "run"]
