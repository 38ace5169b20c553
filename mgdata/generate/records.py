"""Typed record of a generated sample: its ``to_dict`` *is* the sample's ``json`` member.

A generated clip carries its class (``label``, from the budget's label column), the
label fields of its source track (``quadrant``, ``mood``, ``style``, ``track_id``; text
mode has no source track), where it came from (``source_key``, ``offset_s``), the
seed that produced it and the full provenance ``regenerate`` needs to rebuild it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mgdata.store.codec import record_from_json


@dataclass(frozen=True)
class GeneratedRecord:
    """The json of one generated sample.

    Attributes:
        key: Sample key (``<label>_<index>``-style, unique in the artifact).
        label: The class the sample was generated for.
        index: Index within its class.
        split: Always ``train``: generated audio is training data only.
        generator: Generator name (``resynth``, ``musicgen``).
        sample_rate: Rate of the flac member, Hz.
        duration_s: Length of the clip, seconds.
        seed: Seed that produced the kept output (base seed + retries).
        prompt: Text prompt (text mode), else None.
        source_key: Track the source/prime clip came from, else None.
        offset_s: Offset of that clip in its track, seconds, else None.
        params_hash: Fingerprint of the generation params.
        mgdata_version: Version that generated it.
        quadrant: Emotion quadrant of the source track (or the label in text mode).
        mood: Mood tags of the source track.
        style: Repertoire / genre of the source track.
        track_id: Source track id (None in text mode).
        provenance: Full provenance (seeds, model, settings, policy, prompt, batch).
    """

    key: str
    label: str
    index: int
    split: str
    generator: str
    sample_rate: int
    duration_s: float
    seed: int
    prompt: str | None
    source_key: str | None
    offset_s: float | None
    params_hash: str
    mgdata_version: str
    quadrant: str | None = None
    mood: list[str] | None = None
    style: str | None = None
    track_id: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.sample_rate <= 0 or self.duration_s <= 0:
            raise ValueError(f"{self.key}: sample_rate and duration_s must be > 0")
        if self.split != "train":
            raise ValueError(f"{self.key}: generated samples are training data (split 'train'), got {self.split!r}")

    def to_dict(self) -> dict[str, Any]:
        """The sample json."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GeneratedRecord:
        """Inverse of :meth:`to_dict`.

        Raises:
            InputError: A required field is missing or malformed (names the key).
        """
        return record_from_json(
            cls,
            data,
            what="generated",
            optional={"quadrant", "mood", "style", "track_id", "prompt", "source_key", "offset_s"},
        )


__all__ = ["GeneratedRecord"]
