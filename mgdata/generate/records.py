"""Typed records of the ``generate`` builder: a generated sample's json and the build's result.

:class:`GeneratedRecord`'s ``to_dict`` *is* the sample's ``json`` member;
:class:`GenerateResult` is what :func:`mgdata.generate.build.build_generated` returns.

A generated clip carries its class (``label``, from the budget's label column), the
label fields of its source track (``quadrant``, ``mood``, ``style``, ``track_id``; text
mode has no source track), where it came from (``source_key``, ``offset_s``), the
seed that produced it and the full provenance ``regenerate`` needs to rebuild it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mgdata.generate.policy import Plan
from mgdata.store import Sample
from mgdata.store.codec import record_from_json

#: The split every generated sample belongs to (generated audio is training augmentation).
SPLIT = "train"


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


__all__ = ["SPLIT", "GenerateResult", "GeneratedRecord"]
