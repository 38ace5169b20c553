"""Build one embedding artifact: (embedder, input artifact, deformation scenario) -> shards + matrices.

Input: any artifact whose samples have ``flac`` + ``json`` members (corpus mixes,
generated clips). Output under ``out_dir``:

* shards with ``npy`` (the sample's vector ``[dim]`` for ``aggregation: mean``, its
  clip vectors ``[n_clips, dim]`` when ``embed.clip_s`` cuts it into clips, or the
  frames ``[n_frames, dim]`` for ``none``, in ``embed.dtype``) and ``json`` (key,
  source artifact and fingerprint, the label fields ``quadrant``, ``mood``, ``style``,
  ``split``, ``track_id`` of the source clip (:func:`mgdata.labels.label_fields`), ``labels`` (tags),
  ``label`` (the clip's own class, else its quadrant), embedder id/settings, windowing,
  deformation, provenance);
* side files ``{split}.npy`` (matrix ``[rows, dim]``) and ``{split}.parquet`` (``row``,
  ``key``, ``split``, ``labels``, ``label``, ``quadrant``, ``mood`` (list), ``style``,
  ``track_id``; plus ``clip_index``, ``start_s`` for ``mean``, ``frame_index``,
  ``time_s`` for ``none``), written through
  ``ArtifactWriter.add_file`` so artifact.json records their sha256; a probe loads a
  split in one read.

Decode, deformation and embedding run on a :mod:`mgdata.exec` executor in chunks of
clips; the one writer in the parent writes in input order, so the files are
byte-identical for every backend and worker count (the executor is not fingerprinted).

Deformation scenarios are applied to the evaluation splits only (``embed.eval_splits``,
default validation + test) and **training samples are not produced** in them: a
probe trains on the ``clean`` scenario's train split and is evaluated on each
scenario's validation/test (mir_ref's protocol), so deforming training audio would
be wasted compute. ``clean`` covers every split.

:func:`build_embeddings` is plan -> run -> summarise (:func:`_plan`, :func:`_run_in_memory`
or :func:`_run_to_disk` over :func:`_run`, :func:`_summarise`). The per-chunk task lives in
:mod:`mgdata.embed.worker`, the matrices and tables in :mod:`mgdata.embed.consolidate`, the
records in :mod:`mgdata.embed.records`; their public names are re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgdata.config import ShardConfig
from mgdata.embed.base import get_embedder
from mgdata.embed.config import CLEAN, EmbedConfig
from mgdata.embed.consolidate import Consolidator, load_split, split_table
from mgdata.embed.deform import make_deformation
from mgdata.embed.records import EmbeddingRecord, EmbedResult
from mgdata.embed.worker import (
    CHUNK_CLIPS,
    PROCESS_SAFE_EMBEDDERS,
    EmbedJob,
    drop_state,
    embed_chunk,
    sample_labels,
    seed_state,
)
from mgdata.errors import InputError
from mgdata.exec import ExecConfig, chunked, executor_for, get_executor
from mgdata.labels.fields import label_fields, quadrant_of_tags
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.store import (
    ArtifactWriter,
    Sample,
    decode_npy,
    fingerprint,
    iter_samples,
    iter_shard,
    list_shards,
    read_artifact_info,
)

log = logging.getLogger("mgdata")

FORMAT_VERSION = "mgdata-embed/1"


@dataclass
class _Plan:
    """What :func:`_plan` fixed before any audio is touched."""

    artifact_dir: Path
    info: dict[str, Any]
    job: EmbedJob
    eval_only: bool
    prov: Provenance
    result: EmbedResult
    extra: dict[str, Any]
    progress: bool = False


def _plan(
    artifact_dir: Path,
    out_dir: str | Path | None,
    cfg: EmbedConfig,
    embedder: str,
    scenario: str,
    shards: ShardConfig,
    report: StageReport,
) -> _Plan:
    """Check the input, make the embedder and deformation, fingerprint and describe the provenance."""
    info = _input_info(artifact_dir)
    deform = make_deformation(scenario, cfg.scenario(scenario), seed=cfg.seed)
    emb = get_embedder(embedder, cfg)
    desc = emb.describe()
    eval_only = not deform.is_identity
    fp = fingerprint(
        FORMAT_VERSION,
        desc,
        cfg.windowing(),
        scenario,
        cfg.scenario(scenario),
        cfg.seed,
        list(cfg.eval_splits) if eval_only else None,
        info["fingerprint"],
        shards,
    )
    upstream = info.get("provenance") or {}
    prov = Provenance(
        builder="embed",
        source=str(artifact_dir),
        source_version=str(info["fingerprint"]),
        licence=str(upstream.get("licence") or "see source artifact"),
        seed=cfg.seed,
        params_hash=fp,
        extra={"embedder": desc, "scenario": deform.describe(), "windowing": cfg.windowing()},
    )
    job = EmbedJob(
        fp=fp,
        embedder=embedder,
        cfg=cfg,
        scenario=scenario,
        artifact=str(artifact_dir),
        source_fp=str(info["fingerprint"]),
        desc=desc,
        provenance=prov.sample_dict(),
    )
    seed_state(fp, emb, deform)  # reused by serial runs and inherited by forked workers
    result = EmbedResult(
        out_dir=None if out_dir is None else Path(out_dir),
        artifact=str(artifact_dir),
        embedder=desc,
        scenario=deform.describe(),
        dim=int(desc["dim"]),
        dtype=cfg.dtype,
        aggregation=cfg.aggregation,
        fingerprint=fp,
    )
    extra = {
        "embed": {
            "embedder": desc,
            "scenario": deform.describe(),
            "windowing": cfg.windowing(),
            "eval_splits": list(cfg.eval_splits) if eval_only else None,
            "dim": result.dim,
        }
    }
    report.set("embedder", desc["id"])
    report.set("scenario", scenario)
    report.set("artifact", str(artifact_dir))
    report.set("dim", result.dim)
    return _Plan(artifact_dir, info, job, eval_only, prov, result, extra)


def _input_info(artifact_dir: Path) -> dict[str, Any]:
    """The input's ``artifact.json``, checked to hold samples with ``flac`` + ``json`` members."""
    info = read_artifact_info(artifact_dir)
    members = set(info.get("members") or [])
    if info.get("samples", 0) and not {"flac", "json"} <= members:
        raise InputError(str(artifact_dir), f"expected samples with 'flac' and 'json' members, found {sorted(members)}")
    return info


def _todo(plan: _Plan, done: frozenset[str], report: StageReport) -> Iterator[tuple[str, str, bytes, bytes]]:
    """The input clips to embed, in input order: ``(key, split, flac, json)``."""
    cfg, artifact_dir = plan.job.cfg, plan.artifact_dir
    stream = _progress(
        iter_samples(artifact_dir),
        int(plan.info.get("samples", 0)),
        f"embed {plan.job.embedder}/{artifact_dir.name}/{plan.job.scenario}",
        plan.progress,
    )
    for raw in stream:
        report.count("samples_in")
        split = raw.get("__split__", "")
        if plan.eval_only and split not in cfg.eval_splits:
            report.count("not_evaluated")  # training audio is not deformed (see module doc)
            continue
        if raw["__key__"] in done:
            report.run("resumed")
            report.count("embedded")  # embedded by an earlier, interrupted run
            continue
        yield raw["__key__"], split, raw["flac"], raw["json"]


def _run(plan: _Plan, done: frozenset[str], report: StageReport, executor: ExecConfig) -> Iterator[tuple[str, Sample]]:
    """Embed the to-do clips on ``executor``; yields ``(split, sample)`` in input order."""
    tasks = ((plan.job, chunk) for chunk in chunked(_todo(plan, done, report), CHUNK_CLIPS))
    with get_executor(executor) as ex:
        for outcomes in ex.imap(embed_chunk, tasks):
            for outcome in outcomes:
                if outcome[0] == "skip":
                    report.skip(outcome[1], outcome[2])
                    continue
                _, split, key, npy, js, seconds, labels, padded = outcome
                if padded:
                    report.count("padded_short_clips")
                report.count("embedded")
                yield split, Sample(key, {"npy": npy, "json": js}, seconds=seconds, labels=labels)


def build_embeddings(
    artifact_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    cfg: EmbedConfig,
    embedder: str,
    scenario: str = CLEAN,
    shards: ShardConfig | None = None,
    report: StageReport | None = None,
    executor: ExecConfig | None = None,
    progress: bool = True,
) -> EmbedResult:
    """Embed every clip of an artifact under one deformation scenario.

    Decode, deformation and embedding run on ``executor`` in chunks of
    :data:`CHUNK_CLIPS` clips; the one writer in this process writes the results in
    input order, so the output is byte-identical for every backend and worker count.

    Args:
        artifact_dir: Input artifact (samples with ``flac`` + ``json``).
        out_dir: Output artifact directory; ``None`` builds in memory (the matrices
            and tables are returned in the result, nothing is written).
        cfg: The ``embed`` section.
        embedder: Registry name (``logmel``, ``hf``).
        scenario: ``clean`` or a key of ``cfg.scenarios``.
        shards: Shard caps (section ``shards``).
        report: Stage report to count into (one is created if ``None``).
        executor: Where the CPU work runs (section ``executor``); ``None`` = serial.
            Embedders outside :data:`PROCESS_SAFE_EMBEDDERS` always run serially.
            Never part of the fingerprint.
        progress: Show a progress bar (clips read) on stderr.

    Returns:
        The :class:`EmbedResult`.

    Raises:
        MgdataError: The input artifact is missing or incomplete.
        InputError: The input has no ``flac``/``json`` members, or a bad sample
            with ``fail_on_error``.
        ParamsError: Unknown scenario or embedder.
        DependencyError: The embedder's model cannot be loaded.
    """
    shards = shards or ShardConfig()
    report = report if report is not None else StageReport("embed")
    process_safe = embedder in PROCESS_SAFE_EMBEDDERS
    executor = executor_for(executor, process_safe=process_safe, what=f"embed: {embedder}")
    plan = _plan(Path(artifact_dir), out_dir, cfg, embedder, scenario, shards, report)
    plan.progress = progress
    try:
        if out_dir is None:
            _run_in_memory(plan, report, executor)
        else:
            _run_to_disk(plan, Path(out_dir), shards, report, executor)
    finally:
        drop_state(plan.job.fp)  # do not keep a model alive after the build
    _summarise(report, plan.result)
    return plan.result


def _run_in_memory(plan: _Plan, report: StageReport, executor: ExecConfig) -> None:
    """Embed everything and keep the matrices and tables in the result (nothing written)."""
    result, cfg = plan.result, plan.job.cfg
    cons = Consolidator(dim=result.dim, dtype=cfg.dtype, aggregation=cfg.aggregation)
    for _split, sample in _run(plan, frozenset(), report, executor):
        cons.add(EmbeddingRecord.from_json(sample.members["json"], sample.key), decode_npy(sample.members["npy"]))
    for split in sorted(cons.records):
        result.samples[split] = len(cons.records[split])
        result.matrices[split] = cons.matrix(split)
        result.tables[split] = cons.table(split)
        result.rows[split] = int(result.matrices[split].shape[0])


def _run_to_disk(plan: _Plan, out_dir: Path, shards: ShardConfig, report: StageReport, executor: ExecConfig) -> None:
    """Embed what is not done yet into the artifact, then write the consolidated matrices and tables."""
    result, cfg = plan.result, plan.job.cfg
    cons = Consolidator(dim=result.dim, dtype=cfg.dtype, aggregation=cfg.aggregation, tmp_dir=out_dir)
    with ArtifactWriter(
        out_dir, fingerprint=plan.job.fp, provenance=plan.prov, shards=shards, extra_info=plan.extra
    ) as writer:
        cons.discard()  # part files of an interrupted run
        for stale in list(out_dir.glob("*.npy")) + list(out_dir.glob("*.parquet")):
            stale.unlink()  # consolidated files of an earlier run (maybe of other splits)
        if writer.done_keys:
            log.info("embed: resuming %s (%d samples already done)", out_dir, len(writer.done_keys))
            for path in list_shards(out_dir):  # only the verified prefix is left: it comes first per split
                for raw in iter_shard(path):
                    cons.add(EmbeddingRecord.from_sample(raw), decode_npy(raw["npy"]))
        try:
            for split, sample in _run(plan, writer.done_keys, report, executor):
                writer.write(split, sample)
                cons.add(
                    EmbeddingRecord.from_json(sample.members["json"], sample.key), decode_npy(sample.members["npy"])
                )
            # Part files live in the artifact folder: moved into place, hashed into artifact.json["files"].
            result.rows = cons.write(lambda name, path: writer.add_file(name, path, move=True))
        except BaseException:
            cons.discard()
            raise
    summary = writer.summary or {}
    result.samples = {s: v["samples"] for s, v in summary.get("splits", {}).items()}


def _summarise(report: StageReport, result: EmbedResult) -> None:
    """Per-split samples and rows, dtype and aggregation into the stage report."""
    report.set("samples_per_split", dict(sorted(result.samples.items())))
    report.set("rows_per_split", dict(sorted(result.rows.items())))
    report.set("rows", sum(result.rows.values()))  # matrix rows (clips) over all splits
    report.set("dtype", result.dtype)
    report.set("aggregation", result.aggregation)


def _progress(it, total: int, desc: str, enabled: bool = True):
    """``it`` with a progress bar over ``total`` clips on stderr, when ``enabled``."""
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc=desc, unit="clip", leave=False, mininterval=1.0)


__all__ = [
    "CHUNK_CLIPS",
    "PROCESS_SAFE_EMBEDDERS",
    "EmbedResult",
    "build_embeddings",
    "label_fields",
    "load_split",
    "quadrant_of_tags",
    "sample_labels",
    "split_table",
]
