"""Build one embedding artifact: (embedder, input artifact, deformation scenario) -> shards + matrices.

Input: any artifact whose samples have ``flac`` + ``json`` members (corpus mixes,
generated clips). Output under ``out_dir``:

* shards with ``npy`` (the sample's vector ``[dim]`` for ``aggregation: mean``, its
  clip vectors ``[n_clips, dim]`` when ``embed.clip_s`` cuts it into clips, or the
  frames ``[n_frames, dim]`` for ``none``, in ``embed.dtype``) and ``json`` (key,
  source artifact and fingerprint, the label fields ``quadrant``, ``mood``, ``style``,
  ``split``, ``track_id`` of the source clip (:func:`label_fields`), ``labels`` (tags),
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
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.audio import decode_artifact_audio
from mgdata.config import ShardConfig
from mgdata.embed.base import ShortClipError, aggregate, check_finite, embed_clip, embed_clips, get_embedder
from mgdata.embed.config import CLEAN, EmbedConfig
from mgdata.embed.deform import make_deformation
from mgdata.embed.records import EmbeddingRecord
from mgdata.errors import InputError
from mgdata.exec import ExecConfig, chunked, executor_for, get_executor
from mgdata.labels.fields import label_fields, quadrant_of_tags
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.store import (
    ArtifactWriter,
    Sample,
    decode_json,
    decode_npy,
    encode_json,
    encode_npy,
    fingerprint,
    iter_samples,
    iter_shard,
    list_shards,
    read_artifact_info,
)

log = logging.getLogger("mgdata")

FORMAT_VERSION = "mgdata-embed/1"


@dataclass
class EmbedResult:
    """What :func:`build_embeddings` produced.

    Attributes:
        out_dir: Output directory, or ``None`` for an in-memory build.
        artifact: Input artifact directory.
        embedder: The embedder's ``describe()``.
        scenario: The deformation's ``describe()``.
        dim: Embedding dimension.
        dtype: Stored dtype.
        aggregation: ``mean`` or ``none``.
        samples: Embedded samples per split (resumed ones included).
        rows: Rows of each consolidated ``{split}`` matrix.
        matrices: ``{split: [rows, dim]}``; filled only for an in-memory build.
        tables: ``{split: polars.DataFrame}`` (keys, labels); in-memory build only.
        fingerprint: Fingerprint of the output artifact.
    """

    out_dir: Path | None
    artifact: str
    embedder: dict[str, Any]
    scenario: dict[str, Any]
    dim: int
    dtype: str
    aggregation: str
    samples: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (without the matrices and tables)."""
        return {
            "out_dir": None if self.out_dir is None else str(self.out_dir),
            "artifact": self.artifact,
            "embedder": self.embedder,
            "scenario": self.scenario,
            "dim": self.dim,
            "dtype": self.dtype,
            "aggregation": self.aggregation,
            "samples": dict(self.samples),
            "rows": dict(self.rows),
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbedResult:
        """Inverse of :meth:`to_dict` (matrices and tables are not restored)."""
        data = dict(data)
        out = data.pop("out_dir")
        return cls(out_dir=None if out is None else Path(out), **data)


def sample_labels(meta: dict[str, Any]) -> list[str]:
    """Labels of an input sample: its ``tags`` (corpus) or ``[label]`` (generated clips)."""
    if isinstance(meta.get("tags"), list):
        return [str(t) for t in meta["tags"]]
    if meta.get("label") is not None:
        return [str(meta["label"])]
    return []


def _progress(it, total: int, desc: str, enabled: bool = True):
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc=desc, unit="clip", leave=False, mininterval=1.0)


# --------------------------------------------------------------------------- worker side

#: Embedders whose objects are cheap and safe to build in worker processes; others (torch
#: models: ``hf``) run in the parent, since a model per worker would multiply memory and
#: torch intra-op threads do not survive fork reliably. musicfeat is weight-free: safe.
PROCESS_SAFE_EMBEDDERS = frozenset({"logmel", "musicfeat"})
#: Clips per executor task: amortises pickling; the output never depends on it.
CHUNK_CLIPS = 16


@dataclass(frozen=True)
class _EmbedJob:
    """Everything a worker needs to embed clips of one build (picklable)."""

    fp: str
    embedder: str
    cfg: EmbedConfig
    scenario: str
    artifact: str
    source_fp: str
    desc: dict[str, Any]
    provenance: dict[str, Any]


# fp -> (embedder, deformation): built once per process (the parent seeds it, so serial
# builds and forked workers reuse the parent's objects).
_STATE: dict[str, tuple[Any, Any]] = {}


def _state(job: _EmbedJob) -> tuple[Any, Any]:
    if job.fp not in _STATE:
        _STATE[job.fp] = (
            get_embedder(job.embedder, job.cfg),
            make_deformation(job.scenario, job.cfg.scenario(job.scenario), seed=job.cfg.seed),
        )
    return _STATE[job.fp]


def _embed_chunk(task: tuple[_EmbedJob, list[tuple[str, str, bytes, bytes]]]) -> list[tuple]:
    """Executor task: embed a chunk of ``(key, split, flac, json)``; one outcome per clip.

    Outcomes: ``("ok", split, key, npy bytes, json bytes, seconds, labels, padded)`` or
    ``("skip", key, reason)``.
    """
    job, items = task
    emb, deform = _state(job)
    return [_embed_one(job, emb, deform, *item) for item in items]


def _embed_one(job: _EmbedJob, emb, deform, key: str, shard_split: str, flac: bytes, js: bytes) -> tuple:
    cfg = job.cfg
    meta = decode_json(js)
    split = shard_split or str(meta.get("split", ""))
    try:
        try:
            x, sr = decode_artifact_audio(flac, declared_sr=meta.get("sample_rate"))
        except ValueError as exc:  # undecodable, not mono, wrong rate or non-finite: this sample's fault
            raise InputError(key, str(exc)) from None
        y = deform.apply(x, sr, key=key)
        check_finite(y, key)
        win = {"window_s": cfg.window_s, "hop_s": cfg.hop_s, "short_clip": cfg.short_clip, "key": key}
        if cfg.clip_s:
            clips = embed_clips(emb, y, sr, clip_s=cfg.clip_s, clip_hop_s=cfg.clip_hop_s, **win)
            values, n_windows, n_frames, padded = clips.vectors, clips.n_windows, clips.n_frames, clips.padded
        else:
            clip = embed_clip(emb, y, sr, **win)
            values, n_windows, n_frames, padded = (
                aggregate(clip.frames, cfg.aggregation),
                clip.n_windows,
                int(clip.frames.shape[0]),
                clip.padded,
            )
    except ShortClipError as exc:
        if cfg.fail_on_error:
            raise
        return ("skip", key, f"short clip: {exc.message}")
    except InputError as exc:
        if cfg.fail_on_error:
            raise
        return ("skip", key, f"bad audio: {exc.message}")
    values = values.astype(cfg.dtype)
    labels = sample_labels(meta)
    fields = label_fields(meta)
    fields["split"] = split  # the shard's split is authoritative
    record = EmbeddingRecord(
        key=key,
        **fields,
        labels=labels,
        # The class a probe predicts: the clip's own label (generated), else its track's quadrant (corpus).
        label=str(meta["label"]) if meta.get("label") is not None else fields["quadrant"],
        source={"artifact": job.artifact, "fingerprint": job.source_fp, "key": key},
        embedder=job.desc,
        windowing=cfg.windowing(),
        n_windows=n_windows,
        n_frames=n_frames,
        padded=padded,
        duration_s=round(x.size / sr, 6),
        sample_rate=sr,
        deformation=deform.describe(key),
        provenance=job.provenance | {"source_provenance": meta.get("provenance")},
        # One matrix row per clip / frame, in this order.
        clip_starts_s=clips.starts_s if cfg.clip_s else None,
        frame_times_s=[round(float(t), 6) for t in clip.times_s] if cfg.aggregation == "none" else None,
    ).to_dict()
    return ("ok", split, key, encode_npy(values), encode_json(record), x.size / sr, tuple(labels), padded)


# --------------------------------------------------------------------------- consolidation

#: Record fields the consolidated tables keep.
_TABLE_FIELDS = (
    "key",
    "split",
    "labels",
    "label",
    "quadrant",
    "mood",
    "style",
    "track_id",
    "n_frames",
    "frame_times_s",
    "clip_starts_s",
)


class _Consolidator:
    """Collects ``{split}`` matrices and key tables while samples stream past, in write order.

    In memory (``tmp_dir=None``) the arrays are kept; on disk each split's rows are appended
    to a raw temporary file, so memory stays at the size of the key tables whatever the
    artifact size, and :meth:`write` turns them into ``{split}.npy`` / ``{split}.parquet``.
    """

    def __init__(self, *, dim: int, dtype: str, aggregation: str, tmp_dir: Path | None = None):
        self.dim, self.dtype, self.aggregation, self.tmp_dir = dim, np.dtype(dtype), aggregation, tmp_dir
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.n_rows: dict[str, list[int]] = {}
        self.arrays: dict[str, list[np.ndarray]] = {}
        self._files: dict[str, Any] = {}

    def _part(self, split: str, what: str) -> Path:
        return self.tmp_dir / f".{split}.{what}.part"

    def add(self, record: dict[str, Any], arr: np.ndarray) -> None:
        split = record["split"]
        arr = arr if arr.ndim == 2 else arr[None, :]
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        self.records.setdefault(split, []).append({k: record.get(k) for k in _TABLE_FIELDS})
        self.n_rows.setdefault(split, []).append(int(arr.shape[0]))
        if self.tmp_dir is None:
            self.arrays.setdefault(split, []).append(arr)
            return
        if split not in self._files:
            self._files[split] = open(self._part(split, "rows"), "wb")
        self._files[split].write(arr.tobytes())

    def table(self, split: str):
        return _table(self.records[split], self.n_rows[split], self.aggregation)

    def matrix(self, split: str) -> np.ndarray:
        return np.concatenate(self.arrays[split]).astype(self.dtype, copy=False)

    def write(self, add_file) -> dict[str, int]:
        """Write every split's ``.npy`` + ``.parquet`` and hand them to ``add_file(name, part path)``; rows per split."""
        rows: dict[str, int] = {}
        for split in sorted(self.records):
            self._files.pop(split).close()
            raw = self._part(split, "rows")
            total = sum(self.n_rows[split])
            npy = self._part(split, "npy")
            matrix = np.lib.format.open_memmap(npy, mode="w+", dtype=self.dtype, shape=(total, self.dim))
            src = np.memmap(raw, dtype=self.dtype, mode="r", shape=(total, self.dim)) if total else None
            step = max(1, (64 << 20) // max(1, self.dim * self.dtype.itemsize))  # copy 64 MiB at a time
            for start in range(0, total, step):
                matrix[start : start + step] = src[start : start + step]
            matrix.flush()
            del matrix, src
            raw.unlink()
            parquet = self._part(split, "parquet")
            self.table(split).write_parquet(parquet)
            add_file(f"{split}.npy", npy)
            add_file(f"{split}.parquet", parquet)
            rows[split] = total
        return rows

    def discard(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()
        if self.tmp_dir is not None:
            for part in self.tmp_dir.glob(".*.part"):
                part.unlink()


# --------------------------------------------------------------------------- the builder


@dataclass
class _Plan:
    """What :func:`_plan` fixed before any audio is touched."""

    artifact_dir: Path
    info: dict[str, Any]
    job: _EmbedJob
    eval_only: bool
    prov: Provenance
    result: EmbedResult
    extra: dict[str, Any]
    progress: bool = False


def _plan(
    artifact_dir: Path,
    out_dir,
    cfg: EmbedConfig,
    embedder: str,
    scenario: str,
    shards: ShardConfig,
    report: StageReport,
) -> _Plan:
    info = read_artifact_info(artifact_dir)
    members = set(info.get("members") or [])
    if info.get("samples", 0) and not {"flac", "json"} <= members:
        raise InputError(str(artifact_dir), f"expected samples with 'flac' and 'json' members, found {sorted(members)}")
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
    job = _EmbedJob(
        fp=fp,
        embedder=embedder,
        cfg=cfg,
        scenario=scenario,
        artifact=str(artifact_dir),
        source_fp=str(info["fingerprint"]),
        desc=desc,
        provenance=prov.sample_dict(),
    )
    _STATE[fp] = (emb, deform)  # reused by serial runs and inherited by forked workers
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
        for outcomes in ex.imap(_embed_chunk, tasks):
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
    progress: bool = False,
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
        _STATE.pop(plan.job.fp, None)  # do not keep a model alive after the build
    _finish_report(report, plan.result)
    return plan.result


def _run_in_memory(plan: _Plan, report: StageReport, executor: ExecConfig) -> None:
    result, cfg = plan.result, plan.job.cfg
    cons = _Consolidator(dim=result.dim, dtype=cfg.dtype, aggregation=cfg.aggregation)
    for _split, sample in _run(plan, frozenset(), report, executor):
        cons.add(decode_json(sample.members["json"]), decode_npy(sample.members["npy"]))
    for split in sorted(cons.records):
        result.samples[split] = len(cons.records[split])
        result.matrices[split] = cons.matrix(split)
        result.tables[split] = cons.table(split)
        result.rows[split] = int(result.matrices[split].shape[0])


def _run_to_disk(plan: _Plan, out_dir: Path, shards: ShardConfig, report: StageReport, executor: ExecConfig) -> None:
    result, cfg = plan.result, plan.job.cfg
    cons = _Consolidator(dim=result.dim, dtype=cfg.dtype, aggregation=cfg.aggregation, tmp_dir=out_dir)
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
                    cons.add(decode_json(raw["json"]), decode_npy(raw["npy"]))
        try:
            for split, sample in _run(plan, writer.done_keys, report, executor):
                writer.write(split, sample)
                cons.add(decode_json(sample.members["json"]), decode_npy(sample.members["npy"]))
            # Part files live in the artifact folder: moved into place, hashed into artifact.json["files"].
            result.rows = cons.write(lambda name, path: writer.add_file(name, path, move=True))
        except BaseException:
            cons.discard()
            raise
    summary = writer.summary or {}
    result.samples = {s: v["samples"] for s, v in summary.get("splits", {}).items()}


def _finish_report(report: StageReport, result: EmbedResult) -> None:
    report.set("samples_per_split", dict(sorted(result.samples.items())))
    report.set("rows_per_split", dict(sorted(result.rows.items())))
    report.set("rows", sum(result.rows.values()))  # matrix rows (clips) over all splits
    report.set("dtype", result.dtype)
    report.set("aggregation", result.aggregation)


def _table(records: list[dict[str, Any]], n_rows: list[int], aggregation: str):
    """Polars table of one split: one row per matrix row, with the label columns of its clip."""
    import polars as pl

    cols: dict[str, list] = {
        "row": [],
        "key": [],
        "split": [],
        "labels": [],
        "label": [],
        "quadrant": [],
        "mood": [],
        "style": [],
        "track_id": [],
    }
    if aggregation == "none":
        cols |= {"frame_index": [], "time_s": []}
    else:
        cols |= {"clip_index": [], "start_s": []}
    row = 0
    for rec, n in zip(records, n_rows):
        for i in range(n):
            cols["row"].append(row)
            for name in ("key", "split", "label", "quadrant", "style", "track_id"):
                cols[name].append(rec.get(name))
            cols["labels"].append(list(rec["labels"]))
            cols["mood"].append(None if rec.get("mood") is None else list(rec["mood"]))
            if aggregation == "none":
                cols["frame_index"].append(i)
                cols["time_s"].append(float(rec["frame_times_s"][i]))
            else:
                cols["clip_index"].append(i)
                cols["start_s"].append(float((rec.get("clip_starts_s") or [0.0])[i]))
            row += 1
    schema = {
        "row": pl.Int64,
        "key": pl.Utf8,
        "split": pl.Utf8,
        "labels": pl.List(pl.Utf8),
        "label": pl.Utf8,
        "quadrant": pl.Utf8,
        "mood": pl.List(pl.Utf8),
        "style": pl.Utf8,
        "track_id": pl.Utf8,
    }
    if aggregation == "none":
        schema |= {"frame_index": pl.Int32, "time_s": pl.Float64}
    else:
        schema |= {"clip_index": pl.Int32, "start_s": pl.Float64}
    return pl.DataFrame(cols, schema=schema)


def load_split(out_dir: str | Path, split: str):
    """Load one split of an embedding artifact in one read: ``(matrix, polars table)``."""
    import polars as pl

    out_dir = Path(out_dir)
    return np.load(out_dir / f"{split}.npy"), pl.read_parquet(out_dir / f"{split}.parquet")


__all__ = ["EmbedResult", "build_embeddings", "label_fields", "load_split", "quadrant_of_tags", "sample_labels"]
