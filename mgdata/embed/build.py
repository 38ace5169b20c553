"""Build one embedding artifact: (embedder, input artifact, deformation scenario) -> shards + matrices.

Input: any artifact whose samples have ``flac`` + ``json`` members (corpus mixes,
generated clips). Output under ``out_dir``:

* shards with ``npy`` (the clip vector ``[dim]`` for ``aggregation: mean`` or the
  frames ``[n_frames, dim]`` for ``none``, in ``embed.dtype``) and ``json`` (key,
  source artifact and fingerprint, labels, split, embedder id/settings, windowing,
  deformation, provenance);
* ``{split}.npy`` (matrix ``[rows, dim]``) and ``{split}.parquet`` (``row``, ``key``,
  ``split``, ``labels``, ``label``; plus ``frame_index``, ``time_s`` for ``none``) so
  a probe loads a split in one read.

Deformation scenarios are applied to the evaluation splits only (``embed.eval_splits``,
default validation + test) and **training samples are not produced** in them: a
probe trains on the ``clean`` scenario's train split and is evaluated on each
scenario's validation/test (mir_ref's protocol), so deforming training audio would
be wasted compute. ``clean`` covers every split.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mgdata.audio import decode_audio
from mgdata.config import ShardConfig
from mgdata.embed.base import ShortClipError, aggregate, check_finite, embed_clip, get_embedder
from mgdata.embed.config import CLEAN, EmbedConfig
from mgdata.embed.deform import make_deformation
from mgdata.errors import InputError
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
    def from_dict(cls, data: dict[str, Any]) -> "EmbedResult":
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


def _progress(it, total: int, desc: str):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return it
    return tqdm(it, total=total, desc=desc, unit="clip", leave=False, mininterval=1.0)


def build_embeddings(
    artifact_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    cfg: EmbedConfig,
    embedder: str,
    scenario: str = CLEAN,
    shards: ShardConfig | None = None,
    report: StageReport | None = None,
) -> EmbedResult:
    """Embed every clip of an artifact under one deformation scenario.

    Args:
        artifact_dir: Input artifact (samples with ``flac`` + ``json``).
        out_dir: Output artifact directory; ``None`` builds in memory (the matrices
            and tables are returned in the result, nothing is written).
        cfg: The ``embed`` section.
        embedder: Registry name (``logmel``, ``hf``).
        scenario: ``clean`` or a key of ``cfg.scenarios``.
        shards: Shard caps (section ``shards``).
        report: Stage report to count into (one is created if ``None``).

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
    artifact_dir = Path(artifact_dir)
    info = read_artifact_info(artifact_dir)
    members = set(info.get("members") or [])
    if info.get("samples", 0) and not {"flac", "json"} <= members:
        raise InputError(str(artifact_dir), f"expected samples with 'flac' and 'json' members, found {sorted(members)}")
    deform = make_deformation(scenario, cfg.scenario(scenario), seed=cfg.seed)
    emb = get_embedder(embedder, cfg)
    desc = emb.describe()
    eval_only = not deform.is_identity
    fp = fingerprint(FORMAT_VERSION, desc, cfg.windowing(), scenario, cfg.scenario(scenario), cfg.seed,
                     list(cfg.eval_splits) if eval_only else None, info["fingerprint"], shards)
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
    result = EmbedResult(out_dir=None if out_dir is None else Path(out_dir), artifact=str(artifact_dir),
                         embedder=desc, scenario=deform.describe(), dim=int(desc["dim"]), dtype=cfg.dtype,
                         aggregation=cfg.aggregation, fingerprint=fp)
    report.set("embedder", desc["id"])
    report.set("scenario", scenario)
    report.set("artifact", str(artifact_dir))
    report.set("dim", result.dim)

    def embed_one(raw: dict[str, Any]) -> tuple[str, Sample] | None:
        key = raw["__key__"]
        meta = decode_json(raw["json"])
        split = raw.get("__split__") or str(meta.get("split", ""))
        try:
            try:
                x, sr = decode_audio(raw["flac"])
            except Exception as exc:  # noqa: BLE001 - any decoder failure is this sample's fault
                raise InputError(key, f"bad audio: undecodable flac member ({exc})") from None
            check_finite(x, key)
            y = deform.apply(x, sr, key=key)
            check_finite(y, key)
            clip = embed_clip(emb, y, sr, window_s=cfg.window_s, hop_s=cfg.hop_s,
                              short_clip=cfg.short_clip, key=key)
        except ShortClipError as exc:
            if cfg.fail_on_error:
                raise
            report.skip(key, f"short clip: {exc.message}")
            return None
        except InputError as exc:
            if cfg.fail_on_error:
                raise
            report.skip(key, f"bad audio: {exc.message}")
            return None
        if clip.padded:
            report.count("padded_short_clips")
        values = aggregate(clip.frames, cfg.aggregation).astype(cfg.dtype)
        labels = sample_labels(meta)
        record: dict[str, Any] = {
            "key": key,
            "split": split,
            "labels": labels,
            "label": None if meta.get("label") is None else str(meta["label"]),
            "source": {"artifact": str(artifact_dir), "fingerprint": info["fingerprint"], "key": key},
            "embedder": desc,
            "windowing": cfg.windowing(),
            "n_windows": clip.n_windows,
            "n_frames": int(clip.frames.shape[0]),
            "padded": clip.padded,
            "duration_s": round(x.size / sr, 6),
            "sample_rate": sr,
            "deformation": deform.describe(key),
            "provenance": prov.sample_dict() | {"source_provenance": meta.get("provenance")},
        }
        if cfg.aggregation == "none":
            record["frame_times_s"] = [round(float(t), 6) for t in clip.times_s]
        members_out = {"npy": encode_npy(values), "json": encode_json(record)}
        return split, Sample(key, members_out, seconds=x.size / sr, labels=tuple(labels))

    def plan(done: frozenset[str]) -> Iterator[tuple[str, Sample]]:
        stream = _progress(iter_samples(artifact_dir), int(info.get("samples", 0)),
                           f"embed {embedder}/{artifact_dir.name}/{scenario}")
        for raw in stream:
            report.count("samples_in")
            split = raw.get("__split__", "")
            if eval_only and split not in cfg.eval_splits:
                report.count("not_evaluated")  # training audio is not deformed (see module doc)
                continue
            if raw["__key__"] in done:
                report.run("resumed")
                report.count("embedded")  # embedded by an earlier, interrupted run
                continue
            made = embed_one(raw)
            if made is not None:
                report.count("embedded")
                yield made

    if out_dir is None:
        per_split: dict[str, list[tuple[Sample, np.ndarray]]] = {}
        for split, sample in plan(frozenset()):
            per_split.setdefault(split, []).append((sample, decode_npy(sample.members["npy"])))
        for split in sorted(per_split):
            rows = per_split[split]
            result.samples[split] = len(rows)
            records = [decode_json(s.members["json"]) for s, _ in rows]
            arrays = [a if a.ndim == 2 else a[None, :] for _, a in rows]
            result.matrices[split] = np.concatenate(arrays).astype(cfg.dtype, copy=False)
            result.tables[split] = _table(records, [a.shape[0] for a in arrays], cfg.aggregation)
            result.rows[split] = int(result.matrices[split].shape[0])
        _finish_report(report, result)
        return result

    out_dir = Path(out_dir)
    extra = {"embed": {"embedder": desc, "scenario": deform.describe(), "windowing": cfg.windowing(),
                       "eval_splits": list(cfg.eval_splits) if eval_only else None, "dim": result.dim}}
    with ArtifactWriter(out_dir, fingerprint=fp, provenance=prov, shards=shards, extra_info=extra) as writer:
        if writer.done_keys:
            log.info("embed: resuming %s (%d samples already done)", out_dir, len(writer.done_keys))
        for split, sample in plan(writer.done_keys):
            writer.write(split, sample)
    summary = writer.summary or {}
    result.samples = {s: v["samples"] for s, v in summary.get("splits", {}).items()}
    result.rows = consolidate(out_dir, aggregation=cfg.aggregation, dtype=cfg.dtype, dim=result.dim)
    _finish_report(report, result)
    return result


def _finish_report(report: StageReport, result: EmbedResult) -> None:
    report.set("samples_per_split", dict(sorted(result.samples.items())))
    report.set("rows_per_split", dict(sorted(result.rows.items())))
    report.set("dtype", result.dtype)
    report.set("aggregation", result.aggregation)


def _table(records: list[dict[str, Any]], n_rows: list[int], aggregation: str):
    """Polars table of one split: one row per matrix row."""
    import polars as pl

    cols: dict[str, list] = {"row": [], "key": [], "split": [], "labels": [], "label": []}
    if aggregation == "none":
        cols |= {"frame_index": [], "time_s": []}
    row = 0
    for rec, n in zip(records, n_rows):
        for i in range(n):
            cols["row"].append(row)
            cols["key"].append(rec["key"])
            cols["split"].append(rec["split"])
            cols["labels"].append(list(rec["labels"]))
            cols["label"].append(rec.get("label"))
            if aggregation == "none":
                cols["frame_index"].append(i)
                cols["time_s"].append(float(rec["frame_times_s"][i]))
            row += 1
    schema = {"row": pl.Int64, "key": pl.Utf8, "split": pl.Utf8, "labels": pl.List(pl.Utf8), "label": pl.Utf8}
    if aggregation == "none":
        schema |= {"frame_index": pl.Int32, "time_s": pl.Float64}
    return pl.DataFrame(cols, schema=schema)


def consolidate(out_dir: str | Path, *, aggregation: str, dtype: str, dim: int) -> dict[str, int]:
    """Write ``{split}.npy`` + ``{split}.parquet`` from an embedding artifact's shards.

    Streams the shards twice per split (row count, then fill) and writes the
    matrix through a memory map, so memory stays flat whatever the artifact size.

    Returns:
        Rows per split.
    """
    out_dir = Path(out_dir)
    for stale in list(out_dir.glob("*.npy")) + list(out_dir.glob("*.parquet")):
        stale.unlink()  # consolidated files of splits an earlier run had
    info = read_artifact_info(out_dir)
    rows_per_split: dict[str, int] = {}
    for split in sorted(info.get("splits", {})):
        # Pass 1: only what the table needs (keeps memory at the table's size).
        records = []
        for raw in iter_samples(out_dir, split=split):
            rec = decode_json(raw["json"])
            records.append({k: rec.get(k) for k in ("key", "split", "labels", "label", "n_frames", "frame_times_s")})
        n_rows = [int(r["n_frames"]) if aggregation == "none" else 1 for r in records]
        total = sum(n_rows)
        matrix = np.lib.format.open_memmap(out_dir / f"{split}.npy", mode="w+", dtype=np.dtype(dtype),
                                           shape=(total, dim))
        row = 0
        for raw in iter_samples(out_dir, split=split):
            arr = decode_npy(raw["npy"])
            arr = arr if arr.ndim == 2 else arr[None, :]
            matrix[row:row + arr.shape[0]] = arr
            row += arr.shape[0]
        matrix.flush()
        del matrix
        _table(records, n_rows, aggregation).write_parquet(out_dir / f"{split}.parquet")
        rows_per_split[split] = total
    return rows_per_split


def load_split(out_dir: str | Path, split: str):
    """Load one split of an embedding artifact in one read: ``(matrix, polars table)``."""
    import polars as pl

    out_dir = Path(out_dir)
    return np.load(out_dir / f"{split}.npy"), pl.read_parquet(out_dir / f"{split}.parquet")


__all__ = ["EmbedResult", "build_embeddings", "consolidate", "load_split", "sample_labels"]
