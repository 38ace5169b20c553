"""Generator interface shared by every audio generator of the ``generate`` stage.

A generator turns :class:`GenRequest` records (one per output sample: key, label,
seed, duration and either a text prompt, a prime clip or a source clip) into mono
float32 audio. Generators are looked up by name in :data:`GENERATORS` and imported
lazily, so that e.g. ``torch``/``transformers`` are only imported when the
MusicGen generator is actually used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mgdata.registry import Registry


@dataclass(frozen=True)
class GenRequest:
    """One sample to generate.

    Attributes:
        key: Output sample key.
        label: Class inherited from the prompt / prime / source.
        seed: Per-sample seed (derived from the params seed + key), recorded in provenance.
        duration_s: Length of the generated clip in seconds.
        prompt: Text prompt (text mode).
        prime: Mono float32 clip to continue (primed mode), at ``prime_sample_rate``.
        prime_sample_rate: Sample rate of ``prime``.
        source: Mono float32 clip to reconstruct (source mode, e.g. resynth).
        source_sample_rate: Sample rate of ``source``.
    """

    key: str
    label: str
    seed: int
    duration_s: float
    prompt: str | None = None
    prime: np.ndarray | None = None
    prime_sample_rate: int | None = None
    source: np.ndarray | None = None
    source_sample_rate: int | None = None


@runtime_checkable
class Generator(Protocol):
    """What the ``generate`` builder needs from a generator.

    Attributes:
        name: Registry name, e.g. ``"resynth"``, ``"musicgen"``.
        sample_rate: Output sample rate in Hz.
        mode: ``"text"`` | ``"primed"`` | ``"source"``.
    """

    name: str
    sample_rate: int
    mode: str

    def describe(self) -> dict:
        """Model id, revision or local-path hash and all generation settings (JSON-safe)."""
        ...

    def generate(self, requests: list[GenRequest]) -> list[np.ndarray]:
        """Mono float32 arrays, one per request, same order; deterministic given request seeds."""
        ...


# name -> "module:Class"; imported lazily by get_generator.
GENERATORS = Registry(
    "generator",
    "generate.generators",
    {
        "resynth": "mgdata.generate.resynth:ResynthGenerator",
        "musicgen": "mgdata.generate.musicgen:MusicgenGenerator",
        "compose": "mgdata.generate.compose:ComposeGenerator",
    },
)


def get_generator(name: str, cfg: Any) -> Generator:
    """Construct the generator registered under ``name``.

    Args:
        name: Registry name (a key of :data:`GENERATORS`).
        cfg: The generator's own config section (e.g. ``ResynthConfig``), or a
            ``GenerateConfig`` whose attribute ``name`` holds that section.

    Returns:
        The constructed generator, ``Cls(cfg_section)``.

    Raises:
        ParamsError: ``name`` is not a registered generator.
    """
    cls = GENERATORS.load(name)
    # Accept the whole GenerateConfig for convenience: pick the generator's own section.
    section = cfg.section(name) if cfg is not None and hasattr(cfg, "generators") else cfg
    return cls(section)
