"""Typed records of the ``embed`` builder: an embedding sample's json and the build's result.

:class:`EmbeddingRecord`'s ``to_dict`` *is* the sample's ``json`` member;
:class:`EmbedResult` is what :func:`mgdata.embed.build.build_embeddings` returns.

One :class:`EmbeddingRecord` per input sample (a corpus track, a generated clip). The
``npy`` beside it holds the sample's vector ``[dim]``, its clip vectors ``[n_clips, dim]``
(``clip_starts_s`` set) or its frames ``[n_frames, dim]`` (``frame_times_s`` set); the
consolidated ``{split}.parquet`` keeps the label columns of :data:`LABEL_FIELDS` per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.labels.fields import RECORD_LABEL_FIELDS
from mgdata.store import JsonRecord

#: The label columns every track-derived record carries (null where the source has none; :mod:`mgdata.labels`).
LABEL_FIELDS = RECORD_LABEL_FIELDS
#: Fields left out of the json when unset (they exist for one aggregation only).
_OPTIONAL = ("clip_starts_s", "frame_times_s")


@dataclass(frozen=True)
class EmbeddingRecord(JsonRecord):
    """The json of one embedding sample.

    Attributes:
        key: Sample key (the input sample's).
        split: Split of the sample (the input shard's).
        quadrant: Emotion quadrant of the source track (None if the source has none).
        mood: Mood tags of the source track.
        style: Repertoire / genre of the source track.
        track_id: Source track id (generated clips: their source track's).
        labels: The input's tags (corpus) or ``[label]`` (generated clips).
        label: The class a probe predicts: the clip's own label (generated), else the quadrant.
        source: ``{"artifact", "fingerprint", "key"}`` of the input sample.
        embedder: The embedder's ``describe()`` (id, settings, dim).
        windowing: ``EmbedConfig.windowing()`` (window, hop, aggregation, dtype, clips).
        n_windows: Analysis windows embedded.
        n_frames: Embedder frames produced.
        padded: A clip was shorter than one window and was zero-padded.
        duration_s: Length of the decoded input audio, seconds.
        sample_rate: Rate of the decoded input audio, Hz.
        deformation: The scenario's ``describe(key)`` (name, params, seed).
        provenance: Per-sample provenance (plus the input's as ``source_provenance``).
        clip_starts_s: Start of each clip row (``embed.clip_s`` set), seconds.
        frame_times_s: Centre of each frame row (``aggregation: none``), seconds.
    """

    json_what = "embedding"
    json_optional = frozenset({*_OPTIONAL, *LABEL_FIELDS, "label"} - {"split"})
    json_omit_none = _OPTIONAL

    key: str
    split: str
    quadrant: str | None
    mood: list[str] | None
    style: str | None
    track_id: str | None
    labels: list[str]
    label: str | None
    source: dict[str, Any]
    embedder: dict[str, Any]
    windowing: dict[str, Any]
    n_windows: int
    n_frames: int
    padded: bool
    duration_s: float
    sample_rate: int
    deformation: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)
    clip_starts_s: list[float] | None = None
    frame_times_s: list[float] | None = None

    def __post_init__(self):
        if self.n_frames < 1 or self.n_windows < 1:
            raise ValueError(f"{self.key}: an embedding needs >= 1 window and frame")
        if self.duration_s < 0 or self.sample_rate <= 0:
            raise ValueError(f"{self.key}: duration_s >= 0 and sample_rate > 0 expected")

    @property
    def n_rows(self) -> int:
        """Rows this sample adds to its split's matrix."""
        if self.clip_starts_s is not None:
            return len(self.clip_starts_s)
        if self.frame_times_s is not None:
            return len(self.frame_times_s)
        return 1


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


__all__ = ["EmbedResult", "EmbeddingRecord", "LABEL_FIELDS"]
