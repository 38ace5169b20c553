"""The ``generate`` builder: a per-class budget of generated audio with per-sample provenance.

Inputs are the corpus mix artifact (``data/corpus/mix``) and a labels table
(``data/relabel/corpus_quadrants.parquet``: ``track_id`` + the label column,
``quadrant`` by default) joined on ``track_id``; tracks without a label are not
eligible. :func:`~mgdata.generate.policy.plan_generation` fixes the budget and
draws the training clips (sources for ``resynth``, primes for primed MusicGen);
the generator renders each planned sample and the samples are written, sorted
by key, to ``data/generate/<generator>/`` as split ``train`` (generated audio is
training augmentation) with members ``flac`` + ``json``.

Per sample, the seed is derived from the params seed and the sample key. An
output that is not finite or is silent (RMS below ``silence_db``) is generated
again with ``seed + 1``, ``seed + 2``... up to ``max_retries``; the json records
the seed that produced the sample. A sample that still fails is skipped and
counted in the stage report.

Every sample json also carries the label fields of its source track (``quadrant``,
``mood``, ``style``, ``split``, ``track_id``; quadrant from the corpus json, else the
labels table, else the paper1 mapping of its mood tags). Generation and FLAC encoding
run on a :mod:`mgdata.exec` executor in tasks of whole batches; the writer in the parent
writes in plan order, so the artifact is byte-identical for every backend and worker count.

Resumable and deterministic: the plan does not depend on what already exists;
keys already in verified shards (``ArtifactWriter.done_keys``) are not written
again, and batches are fixed chunks of the *full* plan (a partly done batch is
regenerated whole, its done samples discarded) so a batched generator sees the
same batches on a rerun.

:func:`build_generated` is plan -> run -> summarise, one function each (:func:`_plan`,
:func:`_run`, :func:`_summarise`). The inputs (labels table, corpus tracks, clips) live in
:mod:`mgdata.generate.inputs`, the executor task and its retries in
:mod:`mgdata.generate.worker`, the sample json in :mod:`mgdata.generate.assemble`, the
records in :mod:`mgdata.generate.records` and regeneration in
:mod:`mgdata.generate.regenerate`; their public names are re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from tqdm.auto import tqdm

from mgdata.config import ShardConfig
from mgdata.errors import InputError
from mgdata.exec import ExecConfig, chunked, executor_for, get_executor
from mgdata.generate.assemble import (
    MODEL_LICENCES,
    licence,
    policy_dict,
    sample_json,
    sample_label_fields,
)
from mgdata.generate.base import Generator, GenRequest, get_generator
from mgdata.generate.config import GenerateConfig
from mgdata.generate.inputs import crop_clip, load_clips, load_labels, scan_corpus, tracks_from_labels
from mgdata.generate.policy import Plan, PlanItem, TrackInfo, derive_seed, plan_generation
from mgdata.generate.records import SPLIT, GeneratedRecord, GenerateResult
from mgdata.generate.regenerate import find_sample, regenerate
from mgdata.generate.worker import (
    CHUNK_SAMPLES,
    PROCESS_SAFE_GENERATORS,
    GenJob,
    clip_seconds,
    fix_length,
    generate_chunk,
    generate_with_retries,
    make_request,
    output_problem,
    with_prompt,
)
from mgdata.labels.fields import label_fields, quadrants_of
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.store import ArtifactWriter, Sample, fingerprint, read_artifact_info

log = logging.getLogger("mgdata")


@dataclass
class _GenPlan:
    """What :func:`_plan` fixed before any audio is generated."""

    gen: Generator
    corpus_mix_dir: Path | None
    plan: Plan
    described: dict[str, Any]
    fp: str
    prov: Provenance
    licences: dict[str, str]
    track_labels: dict[str, dict[str, Any]]
    up_licence: str
    model_licence: str | None
    n_out: int
    max_retries: int
    batch_size: int


@dataclass
class _Inputs:
    """The eligible tracks and what the plan and the provenance need to know of the inputs."""

    upstream: dict[str, Any]
    tracks: list[TrackInfo]
    licences: dict[str, str]
    track_labels: dict[str, dict[str, Any]]
    label_of: dict[str, str]
    labels_hash: str
    clip_s: float | None


@dataclass
class _RunCounts:
    generated: int = 0
    retries: int = 0
    failed: list[str] = field(default_factory=list)


def build_generated(
    corpus_mix_dir: str | Path | None,
    labels: str | Path | pl.DataFrame,
    out_dir: str | Path | None = None,
    *,
    cfg: GenerateConfig,
    shards: ShardConfig,
    report: StageReport | None = None,
    generator: str | Generator | None = None,
    executor: ExecConfig | None = None,
    progress: bool = True,
) -> GenerateResult:
    """Generate the per-class budget of audio and write it as a sharded artifact.

    Generation and FLAC encoding run on ``executor`` in tasks of whole batches
    (about :data:`CHUNK_SAMPLES` samples, fixed by count); the one writer in this
    process writes in plan order, so the output is byte-identical for every backend
    and worker count.

    Args:
        corpus_mix_dir: The corpus mix artifact (``data/corpus/mix``). ``None`` is
            allowed in text mode only: the tracks (split, duration) then come
            from the labels table.
        labels: Labels parquet path or frame (``track_id`` + ``cfg.label_column``).
        out_dir: Artifact directory (``data/generate/<generator>``); ``None``
            returns the samples instead of writing them.
        cfg: The ``generate`` section.
        shards: Shard caps.
        report: Stage report to fill (per-class samples/seconds/sources, budget,
            retries, skips); a new one when ``None``.
        generator: Generator name (default ``cfg.generators[0]``) or an
            already-constructed generator.
        executor: Where generation runs (section ``executor``); ``None`` = serial.
            Generators outside :data:`PROCESS_SAFE_GENERATORS` always run serially.
            Never part of the fingerprint.
        progress: Show a progress bar (samples generated) on stderr.

    Returns:
        A :class:`GenerateResult`.

    Raises:
        ParamsError: Unknown generator, bad label column, shortage with
            ``on_shortage: error``.
        InputError: Missing labels file or corpus artifact.
    """
    gen = (
        generator
        if generator is not None and not isinstance(generator, str)
        else get_generator(generator or cfg.generators[0], cfg)
    )
    report = report if report is not None else StageReport(f"generate/{gen.name}")
    process_safe = gen.name in PROCESS_SAFE_GENERATORS
    executor = executor_for(executor, process_safe=process_safe, what=f"generate: {gen.name}")
    gp = _plan(corpus_mix_dir, labels, cfg, shards, report, gen)
    counts = _RunCounts()
    samples: list[Sample] = []
    summary = None
    done: frozenset[str] = frozenset()
    if out_dir is None:
        samples = list(_run(gp, cfg, done, report, executor, progress, counts))
    else:
        with ArtifactWriter(
            out_dir,
            fingerprint=gp.fp,
            provenance=gp.prov,
            shards=shards,
            extra_info={"budget": gp.plan.budget.to_dict()},
        ) as writer:
            done = writer.done_keys
            for sample in _run(gp, cfg, done, report, executor, progress, counts):
                writer.write(SPLIT, sample)
        summary = writer.summary
    return _summarise(gp, cfg, out_dir, report, counts, done, samples, summary)


# --------------------------------------------------------------------------- plan


def _plan(
    corpus_mix_dir: str | Path | None,
    labels: str | Path | pl.DataFrame,
    cfg: GenerateConfig,
    shards: ShardConfig,
    report: StageReport,
    gen: Generator,
) -> _GenPlan:
    """Read the inputs, draw the budget's clips, fingerprint and describe the provenance."""
    name = gen.name
    inp = _read_inputs(corpus_mix_dir, labels, cfg, report, gen)
    plan = _draw(inp, cfg, report, name)
    described = gen.describe()
    fp = fingerprint(
        "generate",
        name,
        described,
        policy_dict(cfg, name),
        cfg.section(name),
        shards,
        inp.upstream.get("fingerprint", ""),
        inp.labels_hash,
    )
    up_prov = inp.upstream.get("provenance", {})
    model_licence = described.get("licence") or MODEL_LICENCES.get(name)
    up_licence = str(up_prov.get("licence") or "see the source artifact")
    prov = Provenance(
        builder=f"generate/{name}",
        source=str(up_prov.get("source", corpus_mix_dir)),
        source_version=str(inp.upstream.get("fingerprint", "unknown")),
        licence=licence(up_licence, model_licence),
        seed=cfg.seed,
        params_hash=fp,
        extra={
            "generator": described,
            "budget": plan.budget.to_dict(),
            "excluded": plan.excluded,
            "labels_hash": inp.labels_hash,
            "label_column": cfg.label_column,
        },
    )
    return _GenPlan(
        gen=gen,
        corpus_mix_dir=None if corpus_mix_dir is None else Path(corpus_mix_dir),
        plan=plan,
        described=described,
        fp=fp,
        prov=prov,
        licences=inp.licences,
        track_labels=inp.track_labels,
        up_licence=up_licence,
        model_licence=model_licence,
        n_out=int(round(cfg.sample_s * gen.sample_rate)),
        max_retries=cfg.retries_for(name),
        batch_size=max(1, int(getattr(cfg.section(name), "batch_size", 1) or 1)),
    )


def _read_inputs(
    corpus_mix_dir: str | Path | None,
    labels: str | Path | pl.DataFrame,
    cfg: GenerateConfig,
    report: StageReport,
    gen: Generator,
) -> _Inputs:
    """Labels, eligible tracks (from the corpus mix, or the labels table in text mode) and the upstream."""
    label_of, labels_hash = load_labels(labels, cfg.label_column)
    clip_s = clip_seconds(gen, cfg)
    track_labels: dict[str, dict[str, Any]] = {}
    if corpus_mix_dir is not None:
        upstream = read_artifact_info(corpus_mix_dir)
        tracks, licences = scan_corpus(
            corpus_mix_dir, label_of, report, track_labels=track_labels, quadrant_of=quadrants_of(labels)
        )
    elif clip_s is None:
        upstream = {"fingerprint": labels_hash, "provenance": {"source": str(labels)}}
        tracks, licences = tracks_from_labels(labels, cfg.label_column, label_of), {}
    else:
        raise InputError(
            "generate",
            f"generator {gen.name!r} (mode {gen.mode}) needs the corpus mix artifact for its source/prime clips",
        )
    return _Inputs(upstream, tracks, licences, track_labels, label_of, labels_hash, clip_s)


def _draw(inp: _Inputs, cfg: GenerateConfig, report: StageReport, name: str) -> Plan:
    """The budget per class (generator ``name``'s fraction) and the drawn clips; excluded classes and an empty
    budget go to the report."""
    plan = plan_generation(
        inp.tracks,
        fraction=cfg.fraction_for(name),
        sample_s=cfg.sample_s,
        clip_s=inp.clip_s,
        seed=cfg.seed,
        on_shortage=cfg.on_shortage,
        all_labels=set(inp.label_of.values()),
    )
    for label, reason in plan.excluded.items():
        report.skip(f"class {label}", reason)
    if plan.budget.samples_per_class == 0 and plan.budget.classes:
        report.skip(
            "budget",
            f"class budget {plan.budget.class_budget_s:.3f} s is shorter than one sample "
            f"({cfg.sample_s:g} s): nothing to generate (raise {cfg.fraction_key(name)})",
        )
    return plan


# --------------------------------------------------------------------------- run


def _run(
    gp: _GenPlan,
    cfg: GenerateConfig,
    done: frozenset[str],
    report: StageReport,
    executor: ExecConfig,
    progress: bool,
    counts: _RunCounts,
) -> Iterator[Sample]:
    """Generate the batches not done yet on ``executor``; yields samples in plan order."""
    prepared = _requests(gp, cfg, done, progress)
    job = GenJob(gp.gen, gp.max_retries, cfg.silence_db, gp.n_out)
    per_task = max(1, CHUNK_SAMPLES // gp.batch_size)
    tasks = ((job, [reqs for _, _, reqs in group]) for group in chunked(prepared, per_task))
    groups = chunked(prepared, per_task)
    bar = tqdm(
        total=sum(len(b) for b, _, _ in prepared),
        desc=f"generate/{gp.gen.name}",
        unit="sample",
        disable=not progress,
        mininterval=1.0,
    )
    with get_executor(executor) as ex, bar:
        for group, outcomes in zip(groups, ex.imap(generate_chunk, tasks)):
            for (batch, base_seeds, reqs), results in zip(group, outcomes):
                bar.update(len(batch))
                yield from _samples_of_batch(gp, cfg, batch, base_seeds, reqs, results, done, report, counts)


def _requests(
    gp: _GenPlan, cfg: GenerateConfig, done: frozenset[str], progress: bool
) -> list[tuple[list[PlanItem], list[int], list[GenRequest]]]:
    """Per batch still to do: its items, their base seeds and their requests (clips and prompts attached)."""
    gen = gp.gen
    # Batches are fixed chunks of the full plan, so a resumed run sees the same batches.
    items = list(gp.plan.items)
    batches = [items[i : i + gp.batch_size] for i in range(0, len(items), gp.batch_size)]
    todo = [b for b in batches if any(it.key not in done for it in b)]
    need = [it.clip for b in todo for it in b if it.clip is not None]
    clips = load_clips(gp.corpus_mix_dir, need, progress=progress) if need else {}
    prepared = []
    for batch in todo:
        base_seeds = [derive_seed(cfg.seed, "sample", it.key) for it in batch]
        reqs = [
            with_prompt(
                gen,
                make_request(
                    it, s, gen.mode, cfg.sample_s, clips.get((it.clip.track_id, it.clip.offset_s)) if it.clip else None
                ),
            )
            for it, s in zip(batch, base_seeds)
        ]
        prepared.append((batch, base_seeds, reqs))
    return prepared


def _generator_labels(gen: Any, request: GenRequest) -> dict[str, Any] | None:
    """Label fields a generator knows of its own output (``labels_for``, e.g. compose's style and moods)."""
    fn = getattr(gen, "labels_for", None)
    return fn(request) if callable(fn) else None


def _samples_of_batch(
    gp: _GenPlan,
    cfg: GenerateConfig,
    batch: list[PlanItem],
    base_seeds: list[int],
    reqs: list[GenRequest],
    results: list[tuple],
    done: frozenset[str],
    report: StageReport,
    counts: _RunCounts,
) -> Iterator[Sample]:
    """The samples of one generated batch (done ones skipped, failed ones reported), in batch order."""
    gen = gp.gen
    batch_record = (
        None
        if len(batch) == 1
        else [
            {
                "key": it.key,
                "label": it.label,
                "index": it.index,
                "seed": r.seed,
                "prompt": r.prompt,
                "clip": it.clip.to_dict() if it.clip else None,
            }
            for it, r in zip(batch, reqs)
        ]
    )
    for it, base, req, (flac, seed, n_retry, problem) in zip(batch, base_seeds, reqs, results):
        if it.key in done:
            continue  # regenerated only to keep the batch identical; already written
        counts.retries += n_retry
        if flac is None:
            counts.failed.append(it.key)
            report.skip(it.key, f"generation failed: {problem} output after {n_retry} retries (seeds {base}..{seed})")
            continue
        meta = sample_json(
            item=it,
            seed=seed,
            base_seed=base,
            retries=n_retry,
            prompt=req.prompt,
            generator=gen,
            described=gp.described,
            cfg=cfg,
            params_hash=gp.fp,
            prov=gp.prov,
            source_licence=licence(
                (gp.licences.get(it.clip.track_id) if it.clip else None) or gp.up_licence, gp.model_licence
            ),
            n_samples=gp.n_out,
            batch=batch_record if n_retry == 0 else None,
            label_fields=sample_label_fields(
                it, gp.track_labels, cfg.label_column, _generator_labels(gen, req) if it.clip is None else None
            ),
        )
        counts.generated += 1
        yield Sample(
            it.key,
            {"flac": flac, "json": meta.to_json()},
            seconds=gp.n_out / gen.sample_rate,
            labels=(it.label,),
        )


# --------------------------------------------------------------------------- summarise


def _summarise(
    gp: _GenPlan,
    cfg: GenerateConfig,
    out_dir: str | Path | None,
    report: StageReport,
    counts: _RunCounts,
    done: frozenset[str],
    samples: list[Sample],
    summary: dict[str, Any] | None,
) -> GenerateResult:
    """Per-class samples, seconds and clip use of what the artifact holds; counts into the report."""
    gen, plan, n_out = gp.gen, gp.plan, gp.n_out
    failed_set = set(counts.failed)
    per_class: dict[str, dict[str, Any]] = {}
    for label in plan.budget.classes:
        ok = [it for it in plan.items if it.label == label and it.key not in failed_set]
        per_class[label] = {
            "samples": len(ok),
            "seconds": round(len(ok) * n_out / gen.sample_rate, 6),
            "sources_used": len({it.clip.track_id for it in ok if it.clip}),
            "clips_used": len({(it.clip.track_id, it.clip.offset_s) for it in ok if it.clip}),
            "reused": sum(1 for it in ok if it.clip and it.clip.reuse_round > 0),
        }
    n_samples = sum(c["samples"] for c in per_class.values())
    seconds = round(n_samples * n_out / gen.sample_rate, 6)
    resumed = len([it for it in plan.items if it.key in done])
    report.set("generator", gen.name)
    report.set("budget", plan.budget.to_dict())
    report.set("per_class", per_class)
    report.set("excluded_classes", dict(plan.excluded))
    report.set("total_samples", n_samples)
    report.set("total_seconds", seconds)
    report.count("samples_generated", counts.generated + resumed)  # in the artifact, however many runs it took
    report.run("samples_resumed", resumed)
    report.count("retries", counts.retries)
    report.count("samples_failed", len(counts.failed))
    report.count("reused_clips", sum(c["reused"] for c in per_class.values()))
    return GenerateResult(
        generator=gen.name,
        out_dir=None if out_dir is None else str(out_dir),
        fingerprint=gp.fp,
        plan=plan,
        per_class=per_class,
        n_samples=n_samples,
        seconds=seconds,
        generated=counts.generated,
        resumed=resumed,
        retries=counts.retries,
        failed=counts.failed,
        samples=samples,
        summary=summary,
    )


__all__ = [
    "CHUNK_SAMPLES",
    "MODEL_LICENCES",
    "PROCESS_SAFE_GENERATORS",
    "SPLIT",
    "GenJob",
    "GenerateResult",
    "GeneratedRecord",
    "build_generated",
    "clip_seconds",
    "crop_clip",
    "find_sample",
    "fix_length",
    "generate_with_retries",
    "label_fields",
    "load_clips",
    "load_labels",
    "make_request",
    "output_problem",
    "quadrants_of",
    "regenerate",
    "sample_json",
    "sample_label_fields",
    "scan_corpus",
    "tracks_from_labels",
    "with_prompt",
]
