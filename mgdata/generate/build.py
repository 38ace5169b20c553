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
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm import tqdm

import mgdata
from mgdata.audio import decode_audio, encode_flac, rms_db
from mgdata.config import ShardConfig, to_dict
from mgdata.errors import InputError, ParamsError
from mgdata.exec import ExecConfig, chunked, executor_for, get_executor
from mgdata.generate.base import Generator, GenRequest, get_generator
from mgdata.generate.config import GenerateConfig
from mgdata.generate.policy import ClipRef, Plan, PlanItem, TrackInfo, derive_seed, plan_generation
from mgdata.generate.records import GeneratedRecord
from mgdata.labels.fields import TrackLabels, label_fields, quadrants_of
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.store import (
    ArtifactWriter,
    Sample,
    decode_json,
    encode_json,
    fingerprint,
    iter_samples,
    read_artifact_info,
    sha256_file,
)

log = logging.getLogger("mgdata")

SPLIT = "train"
# Licence notes of generators whose weights carry their own terms (added to every sample's licence).
MODEL_LICENCES = {
    "musicgen": "generated with MusicGen: the model weights' licence applies "
    "(facebook/musicgen-* weights: CC-BY-NC 4.0)"
}


@dataclass
class GenerateResult:
    """What :func:`build_generated` did.

    Attributes:
        generator: Generator name.
        out_dir: Artifact directory, or ``None`` when nothing was written.
        fingerprint: Artifact fingerprint (also the ``params_hash`` in provenance).
        plan: The budget and drawn clips.
        per_class: Per class: samples, seconds, sources_used (distinct tracks),
            clips_used (distinct clips), reused (clips from a reuse round).
        n_samples: Samples in the artifact (written now or resumed).
        seconds: Their total duration.
        generated: Samples generated in this run.
        resumed: Samples found done from an earlier run.
        retries: Extra generations caused by NaN/silent output.
        failed: Keys skipped after all retries.
        samples: The samples (only when ``out_dir`` is ``None``).
        summary: The artifact summary (``artifact.json``) when written.
    """

    generator: str
    out_dir: str | None
    fingerprint: str
    plan: Plan
    per_class: dict[str, dict[str, Any]]
    n_samples: int
    seconds: float
    generated: int
    resumed: int
    retries: int
    failed: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    summary: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (without the audio)."""
        return {
            "generator": self.generator,
            "out_dir": self.out_dir,
            "fingerprint": self.fingerprint,
            "budget": self.plan.budget.to_dict(),
            "excluded": dict(self.plan.excluded),
            "per_class": self.per_class,
            "n_samples": self.n_samples,
            "seconds": self.seconds,
            "generated": self.generated,
            "resumed": self.resumed,
            "retries": self.retries,
            "failed": list(self.failed),
        }


# --------------------------------------------------------------------------- inputs


def _read_labels(labels: str | Path | pl.DataFrame, label_column: str) -> tuple[pl.DataFrame, str]:
    where = "labels frame"
    if isinstance(labels, pl.DataFrame):
        df = labels
    else:
        where = str(labels)
        if not Path(labels).exists():
            raise InputError(where, "labels file not found (run the relabel stage first)")
        df = pl.read_parquet(labels)
    if "track_id" not in df.columns:
        raise InputError(where, f"no track_id column (columns: {df.columns})")
    if label_column not in df.columns:
        raise ParamsError(
            "generate.label_column", f"{label_column!r} is not a column of {where} (columns: {df.columns})"
        )
    return df, where


def load_labels(labels: str | Path | pl.DataFrame, label_column: str) -> tuple[dict[str, str], str]:
    """Read ``track_id -> label`` from a labels parquet file or frame.

    Args:
        labels: Path of a parquet file, or a polars DataFrame, with columns
            ``track_id`` and ``label_column``.
        label_column: The label column (``generate.label_column``).

    Returns:
        ``(mapping, labels_hash)``; rows with a null/empty label are left out.
        ``labels_hash`` is the file's sha256 (or a hash of the frame's rows).

    Raises:
        InputError: Missing file, missing ``track_id`` column or conflicting
            labels for one track (names the file).
        ParamsError: ``label_column`` is not a column.
    """
    df, where = _read_labels(labels, label_column)
    df = df.select(pl.col("track_id").cast(pl.Utf8), pl.col(label_column).cast(pl.Utf8).alias("label"))
    mapping: dict[str, str] = {}
    for track_id, label in df.sort("track_id").iter_rows():
        if label is None or not label.strip() or track_id is None:
            continue
        if mapping.get(track_id, label) != label:
            raise InputError(where, f"track {track_id!r} has two labels: {mapping[track_id]!r} and {label!r}")
        mapping[track_id] = label
    labels_hash = fingerprint(sorted(mapping.items())) if isinstance(labels, pl.DataFrame) else sha256_file(labels)
    return mapping, labels_hash


def tracks_from_labels(
    labels: str | Path | pl.DataFrame, label_column: str, label_of: dict[str, str]
) -> list[TrackInfo]:
    """Eligible tracks from the labels table itself (its ``split`` and ``duration_s`` columns).

    Used in text mode without an audio artifact (e.g. MusicGen prompts per mood
    tag on MTG-Jamendo, whose ``jamendo_quadrants.parquet`` has these columns).
    """
    df, where = _read_labels(labels, label_column)
    missing = [c for c in ("split", "duration_s") if c not in df.columns]
    if missing:
        raise InputError(where, f"without a corpus artifact the labels need columns {missing}")
    rows = df.select(pl.col("track_id").cast(pl.Utf8), "split", pl.col("duration_s").cast(pl.Float64))
    return [
        TrackInfo(t, label_of[t], str(sp), float(d))
        for t, sp, d in rows.sort("track_id").iter_rows()
        if t in label_of and d is not None
    ]


def crop_clip(x: np.ndarray, sr: int, offset_s: float, duration_s: float) -> np.ndarray:
    """The samples ``[round(offset_s*sr), +round(duration_s*sr))`` of ``x``, zero-padded at the end.

    Shared by the builder and ``mgdata generate regenerate`` so both see the same clip.
    """
    start = int(round(offset_s * sr))
    n = int(round(duration_s * sr))
    clip = np.asarray(x[start : start + n], dtype=np.float32)
    if len(clip) < n:
        clip = np.pad(clip, (0, n - len(clip)))
    return clip


def scan_corpus(
    corpus_mix_dir: str | Path,
    label_of: dict[str, str],
    report: StageReport | None = None,
    *,
    track_labels: dict[str, dict[str, Any]] | None = None,
    quadrant_of: dict[str, str] | None = None,
) -> tuple[list[TrackInfo], dict[str, str]]:
    """Eligible training tracks of the corpus mix (metadata only) and their licences.

    Tracks without a label are counted (``tracks_unlabelled``) and not eligible.

    Args:
        corpus_mix_dir: The corpus mix artifact.
        label_of: ``track_id -> label`` (the labels table).
        report: Stage report for skips and counts.
        track_labels: If given, filled with ``track_id -> label fields`` (quadrant, mood,
            style, split, track_id; see :func:`mgdata.labels.label_fields`) of every
            eligible track, copied into the samples generated from it.
        quadrant_of: ``track_id -> quadrant`` of the relabel table, used when the corpus
            json has no ``quadrant`` of its own.
    """
    tracks, licences, unlabelled = [], {}, []
    for s in iter_samples(corpus_mix_dir, split=SPLIT):
        try:
            meta = decode_json(s["json"])
            track_id = str(meta.get("track_id", s["__key__"]))
            split = str(meta.get("split", SPLIT))
            duration_s = float(meta["duration_s"])
        except (KeyError, ValueError, TypeError) as exc:
            if report is not None:
                report.skip(s["__key__"], f"bad corpus json: {exc}")
            continue
        if split != SPLIT:
            if report is not None:
                report.skip(track_id, f"split mismatch: json says {split!r}, shard split is {SPLIT!r}")
            continue
        label = label_of.get(track_id)
        if label is None:
            unlabelled.append(track_id)
            continue
        tracks.append(TrackInfo(track_id, label, split, duration_s))
        licences[track_id] = str((meta.get("provenance") or {}).get("licence", ""))
        if track_labels is not None:
            track_labels[track_id] = label_fields(
                {"track_id": track_id, **meta}, quadrant=(quadrant_of or {}).get(track_id)
            )
    if report is not None:
        report.count("tracks_train_labelled", len(tracks))
        report.count("tracks_unlabelled", len(unlabelled))
    if unlabelled:
        log.warning(
            "generate: %d training tracks have no label and are not eligible (e.g. %s)",
            len(unlabelled),
            ", ".join(unlabelled[:5]),
        )
    return tracks, licences


def load_clips(
    corpus_mix_dir: str | Path, clips: list[ClipRef], *, progress: bool = False
) -> dict[tuple[str, float], tuple[np.ndarray, int]]:
    """Decode the tracks holding ``clips`` (one pass over the mix) and crop each clip.

    ``progress`` shows a bar over the mix's training tracks (on stderr).
    """
    want: dict[str, list[ClipRef]] = {}
    for c in clips:
        want.setdefault(c.track_id, []).append(c)
    out: dict[tuple[str, float], tuple[np.ndarray, int]] = {}
    n_train = (read_artifact_info(corpus_mix_dir).get("splits", {}).get(SPLIT) or {}).get("samples")
    stream = tqdm(
        iter_samples(corpus_mix_dir, split=SPLIT),
        total=n_train,
        desc="generate: source clips",
        unit="track",
        disable=not progress,
        mininterval=1.0,
    )
    for s in stream:
        track_id = str(decode_json(s["json"]).get("track_id", s["__key__"]))
        if track_id not in want:
            continue
        x, sr = decode_audio(s["flac"])
        for c in want[track_id]:
            out[(c.track_id, c.offset_s)] = (crop_clip(x, sr, c.offset_s, c.duration_s), sr)
    missing = sorted(set(want) - {k[0] for k in out})
    if missing:
        raise InputError(str(corpus_mix_dir), f"source tracks not found in its train split: {missing[:5]}")
    return out


# --------------------------------------------------------------------------- generation


def clip_seconds(generator: Generator, cfg: GenerateConfig) -> float | None:
    """Clip length drawn per sample: ``sample_s`` (source), ``prime_seconds`` (primed), ``None`` (text)."""
    if generator.mode == "source":
        return cfg.sample_s
    if generator.mode == "primed":
        return float(getattr(cfg.section(generator.name), "prime_seconds", cfg.sample_s))
    return None


def make_request(
    item: PlanItem,
    seed: int,
    mode: str,
    sample_s: float,
    clip: tuple[np.ndarray, int] | None,
    prompt: str | None = None,
) -> GenRequest:
    """The GenRequest of a plan item (source or prime audio attached by mode)."""
    audio, sr = clip if clip is not None else (None, None)
    if mode == "source":
        return GenRequest(item.key, item.label, seed, sample_s, prompt=prompt, source=audio, source_sample_rate=sr)
    if mode == "primed":
        return GenRequest(item.key, item.label, seed, sample_s, prompt=prompt, prime=audio, prime_sample_rate=sr)
    return GenRequest(item.key, item.label, seed, sample_s, prompt=prompt)


def output_problem(y: np.ndarray, silence_db: float) -> str | None:
    """Why an output is unusable (``"nan"``, ``"silent"``, ``"empty"``), or ``None`` if it is fine."""
    y = np.asarray(y)
    if y.size == 0:
        return "empty"
    if not np.all(np.isfinite(y)):
        return "nan"
    if rms_db(y) < silence_db:
        return "silent"
    return None


def fix_length(y: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad a mono output to exactly ``n`` samples (float32)."""
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def with_prompt(generator: Generator, request: GenRequest) -> GenRequest:
    """The request with its text prompt filled in, when the generator exposes ``prompt_for(request)``.

    The builder fixes the prompt before generating so that the prompt recorded in
    provenance is exactly the one used (also on retries with another seed).
    """
    fn = getattr(generator, "prompt_for", None)
    if not callable(fn) or generator.mode == "source":
        return request
    return dataclasses.replace(request, prompt=fn(request))


def _licence(source_licence: str | None, model_licence: str | None) -> str:
    """Licence of a generated sample: its source's, plus the model weights' terms when there are any."""
    parts = [p for p in (source_licence, model_licence) if p]
    return "; ".join(dict.fromkeys(parts)) or "see the source artifact"


def _policy_dict(cfg: GenerateConfig, name: str) -> dict[str, Any]:
    return {
        "fraction": cfg.fraction,
        "sample_s": cfg.sample_s,
        "seed": cfg.seed,
        "label_column": cfg.label_column,
        "on_shortage": cfg.on_shortage,
        "max_retries": cfg.retries_for(name),
        "silence_db": cfg.silence_db,
    }


def sample_json(
    *,
    item: PlanItem,
    seed: int,
    base_seed: int,
    retries: int,
    prompt: str | None,
    generator: Generator,
    described: dict,
    cfg: GenerateConfig,
    params_hash: str,
    prov: Provenance,
    source_licence: str,
    n_samples: int,
    batch: list[dict[str, Any]] | None = None,
    label_fields: dict[str, Any] | None = None,
) -> GeneratedRecord:
    """The ``json`` member of a generated sample (label, split, source labels and full provenance).

    ``batch`` lists the requests (key, label, seed, prompt, clip) of the batch the
    sample came from when that batch had other members, so ``regenerate`` can
    rebuild the exact batch (batched kernels differ from single ones in the last bits).
    ``label_fields`` are the source track's (:func:`sample_label_fields`).
    """
    clip = None
    if item.clip is not None:
        clip = {
            "key": item.clip.track_id,
            "offset_s": item.clip.offset_s,
            "duration_s": item.clip.duration_s,
            "reuse_round": item.clip.reuse_round,
            "split": SPLIT,
        }
    provenance = {
        **prov.sample_dict(),
        "licence": source_licence,
        "seed": seed,
        "params_seed": cfg.seed,
        "base_seed": base_seed,
        "retries": retries,
        "generator": generator.name,
        "mode": generator.mode,
        "model": described.get("model"),
        "revision": described.get("revision"),
        "model_hash": described.get("local_path_hash", described.get("model_hash")),
        "settings": described,
        "generator_config": to_dict(cfg.section(generator.name)),
        "policy": _policy_dict(cfg, generator.name),
        "label": item.label,
        "prompt": prompt,
        "source": clip if generator.mode == "source" else None,
        "prime": clip if generator.mode == "primed" else None,
        "batch": batch,
    }
    labels = {k: v for k, v in (label_fields or {}).items() if k != "split"}
    return GeneratedRecord(
        key=item.key,
        label=item.label,
        index=item.index,
        split=SPLIT,
        generator=generator.name,
        sample_rate=generator.sample_rate,
        duration_s=n_samples / generator.sample_rate,
        seed=seed,
        prompt=prompt,
        source_key=item.clip.track_id if item.clip is not None else None,
        offset_s=item.clip.offset_s if item.clip is not None else None,
        params_hash=params_hash,
        mgdata_version=mgdata.__version__,
        provenance=provenance,
        **labels,
    )


def generate_with_retries(
    generator: Generator, requests: list[GenRequest], *, max_retries: int, silence_db: float
) -> list[tuple[np.ndarray | None, int, int, str | None]]:
    """Generate a batch; redo NaN/silent outputs one by one with ``seed + 1 ... + max_retries``.

    Returns:
        Per request: ``(audio or None, seed used, retries, last problem)``.
    """
    outs = generator.generate(requests)
    if len(outs) != len(requests):
        raise InputError(generator.name, f"generator returned {len(outs)} outputs for {len(requests)} requests")
    results = []
    for req, y in zip(requests, outs):
        problem = output_problem(y, silence_db)
        attempt = 0
        while problem is not None and attempt < max_retries:
            attempt += 1
            retry = dataclasses.replace(req, seed=req.seed + attempt)
            y = generator.generate([retry])[0]
            problem = output_problem(y, silence_db)
        results.append((None if problem else y, req.seed + attempt, attempt, problem))
    return results


def sample_label_fields(item: PlanItem, track_labels: dict[str, dict[str, Any]], label_column: str) -> dict[str, Any]:
    """Top-level label fields of a generated sample: those of its source track.

    Text-mode samples have no source track: only the quadrant is known, when the
    budget's class column is the quadrant. ``split`` is the sample's (``train``,
    as its source's).
    """
    src = track_labels.get(item.clip.track_id) if item.clip is not None else None
    fields = dict(src) if src else {**TrackLabels().to_dict(), "track_id": None}
    if fields.get("quadrant") is None and label_column == "quadrant":
        fields["quadrant"] = item.label
    if fields.get("track_id") is None and item.clip is not None:
        fields["track_id"] = item.clip.track_id
    fields["split"] = SPLIT
    return fields


# --------------------------------------------------------------------------- worker side

#: Generators cheap to pickle and safe to run in worker processes; others (torch models:
#: ``musicgen``) run in the parent, since a model copy per worker would multiply memory
#: and torch intra-op threads do not survive fork reliably.
PROCESS_SAFE_GENERATORS = frozenset({"resynth"})
#: Samples per executor task (whole batches): amortises pickling; the output never depends on it.
CHUNK_SAMPLES = 16


@dataclass(frozen=True)
class _GenJob:
    """What a worker needs to generate and encode batches (picklable)."""

    generator: Any
    max_retries: int
    silence_db: float
    n_out: int


def _generate_chunk(task: tuple[_GenJob, list[list[GenRequest]]]) -> list[list[tuple]]:
    """Executor task: generate (with retries) and FLAC-encode batches of requests.

    Returns:
        Per batch, per request: ``(flac bytes or None, seed used, retries, last problem)``.
    """
    job, batches = task
    gen = job.generator
    out = []
    for reqs in batches:
        results = generate_with_retries(gen, reqs, max_retries=job.max_retries, silence_db=job.silence_db)
        out.append(
            [
                (None if y is None else encode_flac(fix_length(y, job.n_out), gen.sample_rate), seed, n, problem)
                for y, seed, n, problem in results
            ]
        )
    return out


# --------------------------------------------------------------------------- the builder


@dataclass
class _GenPlan:
    """What :func:`_plan_build` fixed before any audio is generated."""

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


def _plan_build(
    corpus_mix_dir, labels, cfg: GenerateConfig, shards: ShardConfig, report: StageReport, gen: Generator
) -> _GenPlan:
    name = gen.name
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
            "generate", f"generator {name!r} (mode {gen.mode}) needs the corpus mix artifact for its source/prime clips"
        )
    plan = plan_generation(
        tracks,
        fraction=cfg.fraction,
        sample_s=cfg.sample_s,
        clip_s=clip_s,
        seed=cfg.seed,
        on_shortage=cfg.on_shortage,
        all_labels=set(label_of.values()),
    )
    for label, reason in plan.excluded.items():
        report.skip(f"class {label}", reason)
    if plan.budget.samples_per_class == 0 and plan.budget.classes:
        report.skip(
            "budget",
            f"class budget {plan.budget.class_budget_s:.3f} s is shorter than one sample "
            f"({cfg.sample_s:g} s): nothing to generate (raise generate.fraction)",
        )

    described = gen.describe()
    fp = fingerprint(
        "generate",
        name,
        described,
        _policy_dict(cfg, name),
        cfg.section(name),
        shards,
        upstream.get("fingerprint", ""),
        labels_hash,
    )
    up_prov = upstream.get("provenance", {})
    model_licence = described.get("licence") or MODEL_LICENCES.get(name)
    up_licence = str(up_prov.get("licence") or "see the source artifact")
    prov = Provenance(
        builder=f"generate/{name}",
        source=str(up_prov.get("source", corpus_mix_dir)),
        source_version=str(upstream.get("fingerprint", "unknown")),
        licence=_licence(up_licence, model_licence),
        seed=cfg.seed,
        params_hash=fp,
        extra={
            "generator": described,
            "budget": plan.budget.to_dict(),
            "excluded": plan.excluded,
            "labels_hash": labels_hash,
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
        licences=licences,
        track_labels=track_labels,
        up_licence=up_licence,
        model_licence=model_licence,
        n_out=int(round(cfg.sample_s * gen.sample_rate)),
        max_retries=cfg.retries_for(name),
        batch_size=max(1, int(getattr(cfg.section(name), "batch_size", 1) or 1)),
    )


@dataclass
class _RunCounts:
    generated: int = 0
    retries: int = 0
    failed: list[str] = field(default_factory=list)


def _run_build(
    gp: _GenPlan,
    cfg: GenerateConfig,
    done: frozenset[str],
    report: StageReport,
    executor: ExecConfig,
    progress: bool,
    counts: _RunCounts,
):
    """Generate the batches not done yet on ``executor``; yields samples in plan order."""
    gen = gp.gen
    # Batches are fixed chunks of the full plan, so a resumed run sees the same batches.
    items = list(gp.plan.items)
    batches = [items[i : i + gp.batch_size] for i in range(0, len(items), gp.batch_size)]
    todo = [b for b in batches if any(it.key not in done for it in b)]
    need = [it.clip for b in todo for it in b if it.clip is not None]
    clips = load_clips(gp.corpus_mix_dir, need, progress=progress) if need else {}

    prepared = []  # per batch: (items, base seeds, requests)
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
    del clips  # the requests hold the clips now
    job = _GenJob(gen, gp.max_retries, cfg.silence_db, gp.n_out)
    per_task = max(1, CHUNK_SAMPLES // gp.batch_size)
    tasks = ((job, [reqs for _, _, reqs in group]) for group in chunked(prepared, per_task))
    groups = chunked(prepared, per_task)
    bar = tqdm(
        total=sum(len(b) for b in todo),
        desc=f"generate/{gen.name}",
        unit="sample",
        disable=not progress,
        mininterval=1.0,
    )
    with get_executor(executor) as ex, bar:
        for group, outcomes in zip(groups, ex.imap(_generate_chunk, tasks)):
            for (batch, base_seeds, reqs), results in zip(group, outcomes):
                bar.update(len(batch))
                yield from _samples_of_batch(gp, cfg, batch, base_seeds, reqs, results, done, report, counts)


def _samples_of_batch(gp: _GenPlan, cfg: GenerateConfig, batch, base_seeds, reqs, results, done, report, counts):
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
            source_licence=_licence(
                (gp.licences.get(it.clip.track_id) if it.clip else None) or gp.up_licence, gp.model_licence
            ),
            n_samples=gp.n_out,
            batch=batch_record if n_retry == 0 else None,
            label_fields=sample_label_fields(it, gp.track_labels, cfg.label_column),
        )
        counts.generated += 1
        yield Sample(
            it.key,
            {"flac": flac, "json": encode_json(meta.to_dict())},
            seconds=gp.n_out / gen.sample_rate,
            labels=(it.label,),
        )


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
    progress: bool = False,
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
    gp = _plan_build(corpus_mix_dir, labels, cfg, shards, report, gen)
    counts = _RunCounts()
    samples: list[Sample] = []
    summary = None
    done: frozenset[str] = frozenset()
    if out_dir is None:
        samples = list(_run_build(gp, cfg, done, report, executor, progress, counts))
    else:
        with ArtifactWriter(
            out_dir,
            fingerprint=gp.fp,
            provenance=gp.prov,
            shards=shards,
            extra_info={"budget": gp.plan.budget.to_dict()},
        ) as writer:
            done = writer.done_keys
            for sample in _run_build(gp, cfg, done, report, executor, progress, counts):
                writer.write(SPLIT, sample)
        summary = writer.summary
    return _summarise(gp, cfg, out_dir, report, counts, done, samples, summary)


def _summarise(
    gp: _GenPlan,
    cfg: GenerateConfig,
    out_dir,
    report: StageReport,
    counts: _RunCounts,
    done: frozenset[str],
    samples: list[Sample],
    summary: dict[str, Any] | None,
) -> GenerateResult:
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


# --------------------------------------------------------------------------- regeneration


def find_sample(artifact_dir: str | Path, key: str) -> dict[str, Any]:
    """The members of sample ``key`` in an artifact (``{"__key__", "flac", "json", ...}``).

    Raises:
        InputError: No such key (names the artifact).
    """
    for s in iter_samples(artifact_dir):
        if s["__key__"] == key:
            return s
    raise InputError(str(artifact_dir), f"no sample with key {key!r}")


def regenerate(meta: dict[str, Any], corpus_mix_dir: str | Path | None = None) -> tuple[np.ndarray, int]:
    """Regenerate one sample from its ``json`` member alone (plus the corpus for sources/primes).

    The generator is rebuilt from ``provenance.generator_config``, the request
    from the recorded label, seed (the one that produced the sample), prompt and
    source/prime key + offset; the result is cut to the recorded length. When
    the sample came from a batch with other members (``provenance.batch``), the
    whole batch is regenerated, because batched kernels differ from single ones
    in the last bits. On the same platform and library versions the FLAC
    encoding of the result equals the shard's bytes.

    Args:
        meta: The decoded ``json`` member.
        corpus_mix_dir: Corpus mix artifact holding the source/prime track.

    Returns:
        ``(audio, sample_rate)``.

    Raises:
        InputError: The json lacks provenance, or the source track is missing.
    """
    from mgdata.config import from_dict
    from mgdata.generate.policy import ClipRef as _Clip

    prov = meta.get("provenance") or {}
    for k in ("generator", "generator_config", "seed", "policy"):
        if k not in prov:
            raise InputError(str(meta.get("key", "json")), f"provenance has no {k!r}: not a generate sample")
    name = prov["generator"]
    default_section = GenerateConfig().section(name)
    section = (
        from_dict(type(default_section), prov["generator_config"], f"generate.{name}")
        if default_section is not None and prov["generator_config"] is not None
        else None
    )
    gen = get_generator(name, section)
    if gen.describe() != prov.get("settings"):
        log.warning(
            "regenerate %s: generator description differs from the recorded one "
            "(library or algorithm version changed?); output may differ",
            meta.get("key"),
        )
    sample_s = float(prov["policy"]["sample_s"])
    if prov.get("batch"):
        members = [
            (
                PlanItem(
                    b["key"], b["label"], int(b.get("index", 0)), _Clip.from_dict(b["clip"]) if b.get("clip") else None
                ),
                int(b["seed"]),
                b.get("prompt"),
            )
            for b in prov["batch"]
        ]
    else:
        clip_info = prov.get("source") or prov.get("prime")
        item_clip = (
            None
            if clip_info is None
            else _Clip(
                clip_info["key"],
                meta["label"],
                float(clip_info["offset_s"]),
                float(clip_info["duration_s"]),
                int(clip_info.get("reuse_round", 0)),
            )
        )
        members = [
            (
                PlanItem(meta["key"], meta["label"], int(meta.get("index", 0)), item_clip),
                int(prov["seed"]),
                prov.get("prompt"),
            )
        ]
    needed = [it.clip for it, _, _ in members if it.clip is not None]
    if needed and corpus_mix_dir is None:
        raise InputError(str(meta.get("key")), "needs the corpus mix artifact for its source/prime clip")
    clips = load_clips(corpus_mix_dir, needed) if needed else {}
    reqs = [
        make_request(
            it, seed, gen.mode, sample_s, clips.get((it.clip.track_id, it.clip.offset_s)) if it.clip else None, prompt
        )
        for it, seed, prompt in members
    ]
    pos = [it.key for it, _, _ in members].index(meta["key"])
    y = gen.generate(reqs)[pos]
    return fix_length(y, int(round(sample_s * gen.sample_rate))), gen.sample_rate
