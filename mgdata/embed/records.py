"""Typed record of an embedding sample: its ``to_dict`` *is* the sample's ``json`` member.

One :class:`EmbeddingRecord` per input sample (a corpus track, a generated clip). The
``npy`` beside it holds the sample's vector ``[dim]``, its clip vectors ``[n_clips, dim]``
(``clip_starts_s`` set) or its frames ``[n_frames, dim]`` (``frame_times_s`` set); the
consolidated ``{split}.parquet`` keeps the label columns of :data:`LABEL_FIELDS` per row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mgdata.store.codec import record_from_json

#: The label columns every track-derived record carries (null where the source has none).
LABEL_FIELDS = ("quadrant", "mood", "style", "split", "track_id")
#: Fields left out of the json when unset (they exist for one aggregation only).
_OPTIONAL = ("clip_starts_s", "frame_times_s")


@dataclass(frozen=True)
class EmbeddingRecord:
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

    def to_dict(self) -> dict[str, Any]:
        """The sample json (optional fields only when set)."""
        out = asdict(self)
        for name in _OPTIONAL:
            if out[name] is None:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmbeddingRecord:
        """Inverse of :meth:`to_dict`.

        Raises:
            InputError: A required field is missing or malformed (names the key).
        """
        return record_from_json(cls, data, what="embedding", optional={*_OPTIONAL, *LABEL_FIELDS, "label"} - {"split"})


__all__ = ["EmbeddingRecord", "LABEL_FIELDS"]
