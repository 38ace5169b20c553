"""Typed records of the ``generate`` builder: a generated sample's json and the build's result.

:class:`GeneratedRecord`'s ``to_dict`` *is* the sample's ``json`` member;
:class:`GenerateResult` is what :func:`mgdata.generate.build.build_generated` returns.

A generated clip carries its class (``label``, from the budget's label column), the
label fields of its source track (``quadrant``, ``mood``, ``style``, ``track_id``; text
mode has no source track), where it came from (``source_key``, ``offset_s``), the
seed that produced it and the full provenance ``regenerate`` needs to rebuild it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mgdata.generate.policy import Plan
from mgdata.store import JsonRecord, Sample

#: The split every generated sample belongs to (generated audio is training augmentation).
SPLIT = "train"


@dataclass(frozen=True)
class GeneratedRecord(JsonRecord):
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

    json_what = "generated"
    json_optional = frozenset({"quadrant", "mood", "style", "track_id", "prompt", "source_key", "offset_s"})

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


@dataclass(frozen=True)
class GeneratedProvenance(JsonRecord):
    """The ``provenance`` of one generated sample: everything ``regenerate`` needs to rebuild it.

    Written and read through the one record contract (:class:`~mgdata.store.JsonRecord`);
    ``to_dict`` gives exactly the keys and values the builder used to assemble by hand.

    Attributes:
        builder, source_version, params_hash, mgdata_version: From the artifact's
            :class:`~mgdata.provenance.Provenance`.
        licence: The source's licence (plus the model weights' terms).
        seed: Seed that produced the kept output.
        params_seed: The params seed of the budget.
        base_seed: Seed derived for the sample before retries.
        retries: Extra generations (NaN/silent output).
        generator, mode: Generator name and mode (``source``, ``primed``, ``text``).
        model, revision, model_hash: The model (``None`` for DSP generators).
        settings: The generator's ``describe()``.
        generator_config: The generator's params section.
        policy: Budget policy settings.
        label: Class the sample was generated for.
        prompt: Text prompt, else None.
        source: The source clip (source mode), else None.
        prime: The prime clip (primed mode), else None.
        batch: The requests of the sample's batch when it had other members, else None.
    """

    builder: str
    source_version: str
    licence: str
    seed: int
    params_hash: str
    mgdata_version: str
    params_seed: int
    base_seed: int
    retries: int
    generator: str
    mode: str
    model: str | None
    revision: str | None
    model_hash: str | None
    settings: dict[str, Any]
    generator_config: dict[str, Any]
    policy: dict[str, Any]
    label: str
    prompt: str | None
    source: dict[str, Any] | None
    prime: dict[str, Any] | None
    batch: list[dict[str, Any]] | None

    json_what = "generated provenance"


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


__all__ = ["SPLIT", "GenerateResult", "GeneratedProvenance", "GeneratedRecord"]
