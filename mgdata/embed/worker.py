"""The per-chunk task of the ``embed`` builder: decode, deform and embed clips, and build their records.

:func:`embed_chunk` runs on the executor (a worker process for the
:data:`PROCESS_SAFE_EMBEDDERS`, else the parent) and returns one outcome per clip; the
label fields of each record are copied from the source json (:func:`mgdata.labels.label_fields`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mgdata.audio import decode_artifact_audio
from mgdata.embed.base import ShortClipError, aggregate, check_finite, embed_clip, embed_clips, get_embedder
from mgdata.embed.config import EmbedConfig
from mgdata.embed.deform import make_deformation
from mgdata.embed.records import EmbeddingRecord
from mgdata.errors import InputError
from mgdata.labels.fields import label_fields
from mgdata.store import decode_json, encode_npy


def sample_labels(meta: dict[str, Any]) -> list[str]:
    """Labels of an input sample: its ``tags`` (corpus) or ``[label]`` (generated clips)."""
    if isinstance(meta.get("tags"), list):
        return [str(t) for t in meta["tags"]]
    if meta.get("label") is not None:
        return [str(meta["label"])]
    return []


#: Embedders whose objects are cheap and safe to build in worker processes; others (torch
#: models: ``hf``) run in the parent, since a model per worker would multiply memory and
#: torch intra-op threads do not survive fork reliably. musicfeat is weight-free: safe. musicnn is a 3 MB model
#: that runs each forward pass on one torch thread: a copy per worker is cheap, and a 2-worker build was measured
#: byte-identical to a serial one (tests/test_embed_musicnn.py).
PROCESS_SAFE_EMBEDDERS = frozenset({"logmel", "musicfeat", "musicnn"})
#: Clips per executor task: amortises pickling; the output never depends on it.
CHUNK_CLIPS = 16


@dataclass(frozen=True)
class EmbedJob:
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


def seed_state(fp: str, embedder: Any, deformation: Any) -> None:
    """Hand this process's embedder and deformation of build ``fp`` to the tasks (forked workers inherit them)."""
    _STATE[fp] = (embedder, deformation)


def drop_state(fp: str) -> None:
    """Forget build ``fp``'s objects: a model must not stay alive after its build."""
    _STATE.pop(fp, None)


def _state(job: EmbedJob) -> tuple[Any, Any]:
    """The embedder and deformation of the job's build, made on first use in this process."""
    if job.fp not in _STATE:
        _STATE[job.fp] = (
            get_embedder(job.embedder, job.cfg),
            make_deformation(job.scenario, job.cfg.scenario(job.scenario), seed=job.cfg.seed),
        )
    return _STATE[job.fp]


def embed_chunk(task: tuple[EmbedJob, list[tuple[str, str, bytes, bytes]]]) -> list[tuple]:
    """Executor task: embed a chunk of ``(key, split, flac, json)``; one outcome per clip.

    Outcomes: ``("ok", split, key, npy bytes, json bytes, seconds, labels, padded)`` or
    ``("skip", key, reason)``.
    """
    job, items = task
    emb, deform = _state(job)
    return [_embed_one(job, emb, deform, *item) for item in items]


def _embed_one(job: EmbedJob, emb, deform, key: str, shard_split: str, flac: bytes, js: bytes) -> tuple:
    """Decode, deform and embed one clip; its npy and json bytes, or why it is skipped."""
    cfg = job.cfg
    meta = decode_json(js)  # the input's json (corpus mix, jamendo clip, generated): any source, read as a dict
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
    )
    return ("ok", split, key, encode_npy(values), record.to_json(), x.size / sr, tuple(labels), padded)


__all__ = [
    "CHUNK_CLIPS",
    "PROCESS_SAFE_EMBEDDERS",
    "EmbedJob",
    "drop_state",
    "embed_chunk",
    "sample_labels",
    "seed_state",
]
