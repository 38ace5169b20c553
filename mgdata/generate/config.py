"""Params section ``generate``: the per-class budget policy and each generator's settings.

``GenerateConfig`` holds the policy shared by all generators (budget fraction,
sample length, seed, label column, shortage mode, retries) and nests one frozen
section per generator (``resynth``, ``musicgen``, ``compose``); a generator is constructed
from its own section only, so changing MusicGen settings does not rebuild the
resynth artifact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mgdata.config import check
from mgdata.corpus.config import DEFAULT_PROGRAMS, CorpusConfig

# The corpus rendering rule (tempo/velocity per arousal class) that compose's defaults mirror.
_CORPUS = CorpusConfig()


@dataclass(frozen=True)
class ResynthConfig:
    """Section ``generate.resynth``: the offline harmonic-plus-noise resynthesiser."""

    sample_rate: int = 16000
    f0_method: Literal["yin", "pyin"] = "yin"
    fmin_hz: float = 65.0
    fmax_hz: float = 1000.0
    frame_length: int = 2048
    hop_length: int = 256
    n_harmonics: int = 40
    n_noise_bands: int = 64
    f0_median_frames: int = 5
    noise_gain: float = 1.0
    harmonic_width_bins: int = 2
    max_peak: float = 0.99

    def __post_init__(self):
        check(8000 <= self.sample_rate <= 96000, "sample_rate", "expected 8000..96000 Hz")
        check(
            0 < self.fmin_hz < self.fmax_hz < self.sample_rate / 2,
            "fmin_hz",
            "expected 0 < fmin_hz < fmax_hz < sample_rate / 2",
        )
        check(
            self.frame_length >= 256 and self.frame_length & (self.frame_length - 1) == 0,
            "frame_length",
            "expected a power of two >= 256",
        )
        check(
            self.frame_length >= 2 * (self.sample_rate / self.fmin_hz + 2),
            "frame_length",
            "expected more than two periods of fmin_hz (frame_length >= 2 * (sample_rate / fmin_hz + 2))",
        )
        check(
            1 <= self.hop_length <= self.frame_length // 2, "hop_length", "expected 1 <= hop_length <= frame_length / 2"
        )
        check(1 <= self.n_harmonics <= 256, "n_harmonics", "expected 1..256")
        check(1 <= self.n_noise_bands <= self.frame_length // 2, "n_noise_bands", "expected 1..frame_length/2")
        check(
            self.f0_median_frames >= 1 and self.f0_median_frames % 2 == 1,
            "f0_median_frames",
            "expected an odd integer >= 1",
        )
        check(self.noise_gain >= 0, "noise_gain", "expected >= 0")
        check(0 <= self.harmonic_width_bins <= 16, "harmonic_width_bins", "expected 0..16")
        check(0 < self.max_peak <= 1.0, "max_peak", "expected 0 < max_peak <= 1")


@dataclass(frozen=True)
class MusicgenConfig:
    """Section ``generate.musicgen``: MusicGen through Hugging Face transformers.

    ``model`` is a Hub id (weights download from the Hub: needs network or a
    local copy) or a local directory saved with ``save_pretrained``.
    """

    model: str = "facebook/musicgen-small"
    revision: str | None = None
    mode: Literal["text", "primed"] = "text"
    prompt_template: str = "A {label} track. {description}"
    descriptions_file: str | None = None
    prime_seconds: float = 3.0
    guidance_scale: float = 3.0
    top_k: int = 250
    top_p: float = 0.0
    temperature: float = 1.0
    batch_size: int = 4
    device: str = "auto"
    max_retries: int | None = None

    def __post_init__(self):
        check(bool(self.model), "model", "expected a Hub model id or a local path")
        check("{label}" in self.prompt_template, "prompt_template", "expected a template containing {label}")
        check(self.prime_seconds > 0, "prime_seconds", "expected > 0")
        check(self.guidance_scale >= 0, "guidance_scale", "expected >= 0")
        check(self.top_k >= 0, "top_k", "expected >= 0 (0 disables top-k)")
        check(0.0 <= self.top_p <= 1.0, "top_p", "expected 0..1 (0 disables top-p)")
        check(self.temperature > 0, "temperature", "expected > 0")
        check(self.batch_size >= 1, "batch_size", "expected >= 1")
        check(
            self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda") or self.device == "mps",
            "device",
            "expected auto, cpu, cuda[:N] or mps",
        )
        check(
            self.max_retries is None or self.max_retries >= 0,
            "max_retries",
            "expected null (use generate.max_retries) or an integer >= 0",
        )


@dataclass(frozen=True)
class ComposeConfig:
    """Section ``generate.compose``: the offline symbolic composer (:mod:`mgdata.generate.compose`).

    The tempo/velocity ranges and programs default to the ``corpus`` section's defaults, so
    generated clips follow the corpus's arousal rule; keep them equal to ``corpus`` when it changes.

    Attributes:
        manifest: Corpus manifest parquet; its ``split`` rows (score ids, style, mode) are the training set.
        scores: The corpus's parsed scores (``scores.json.gz`` side file of the mix artifact): training reads the
            notes the corpus rendered instead of parsing music21 again; a track missing there is parsed.
        cache_dir: JSON cache of scores parsed here, per music21 version (empty = parse every time).
        split: The only split the model learns from.
        sample_rate: Output rate, Hz.
        max_voices: Voices kept per training score and composed per piece (top, inner..., bass).
        nonchord_weight: Weight of a non-chord scale tone on the beat (chord tones weigh 1).
        passing_weight: Weight of a non-chord scale tone off the beat (passing and neighbour notes).
        slow_tempo_bpm: ``[min, max]`` tempo of low-arousal pieces (as ``corpus.slow_tempo_bpm``).
        fast_tempo_bpm: ``[min, max]`` tempo of high-arousal pieces (as ``corpus.fast_tempo_bpm``).
        slow_velocity: ``[min, max]`` MIDI velocity of low-arousal pieces (as ``corpus.slow_velocity``).
        fast_velocity: ``[min, max]`` MIDI velocity of high-arousal pieces (as ``corpus.fast_velocity``).
        programs: GM programs drawn per piece, distinct per voice (as ``corpus.programs``).
        soundfont: GM SoundFont path; empty = TimGM6mb.sf2 from pretty_midi (as ``corpus.soundfont``).
        peak_dbfs: Peak ceiling of the mix (as ``corpus.peak_dbfs``).
        max_retries: Overrides ``generate.max_retries`` when set.
        fraction: Overrides ``generate.fraction`` (the budget) for compose alone when set; ``None`` = use it.
            Consumers that follow the seed protocol still add a 5 % share: classify's ``augmented`` draws
            ``classify.augment_fraction`` of the real training rows from the artifact, geneval draws ``r`` x the
            real rows, so a larger artifact only widens the pool they draw from (and feeds synthetic-only).
    """

    manifest: str = "data/corpus/mix/manifest.parquet"
    scores: str = "data/corpus/mix/scores.json.gz"
    cache_dir: str = ""
    split: str = "train"
    sample_rate: int = 22050
    max_voices: int = 4
    nonchord_weight: float = 0.08
    passing_weight: float = 0.5
    slow_tempo_bpm: tuple[float, float] = _CORPUS.slow_tempo_bpm
    fast_tempo_bpm: tuple[float, float] = _CORPUS.fast_tempo_bpm
    slow_velocity: tuple[int, int] = _CORPUS.slow_velocity
    fast_velocity: tuple[int, int] = _CORPUS.fast_velocity
    programs: list[int] = field(default_factory=lambda: list(DEFAULT_PROGRAMS))
    soundfont: str = ""
    peak_dbfs: float = -1.0
    max_retries: int | None = None
    fraction: float | None = None

    def __post_init__(self):
        check(bool(self.manifest), "manifest", "expected the path of the corpus manifest parquet")
        check(bool(self.split), "split", "expected a split name (the model trains on this split only)")
        check(8000 <= self.sample_rate <= 96000, "sample_rate", "expected 8000..96000 Hz")
        check(2 <= self.max_voices <= 8, "max_voices", "expected 2..8")
        check(0.0 <= self.nonchord_weight <= 1.0, "nonchord_weight", "expected 0..1")
        check(0.0 <= self.passing_weight <= 1.0, "passing_weight", "expected 0..1")
        for key in ("slow_tempo_bpm", "fast_tempo_bpm"):
            lo, hi = getattr(self, key)
            check(20.0 <= lo <= hi <= 400.0, key, "expected [min, max] with 20 <= min <= max <= 400")
        check(
            self.slow_tempo_bpm[1] < self.fast_tempo_bpm[0], "fast_tempo_bpm", "expected a range above slow_tempo_bpm"
        )
        for key in ("slow_velocity", "fast_velocity"):
            lo, hi = getattr(self, key)
            check(1 <= lo <= hi <= 127, key, "expected [min, max] MIDI velocities with 1 <= min <= max <= 127")
        check(self.slow_velocity[1] < self.fast_velocity[0], "fast_velocity", "expected a range above slow_velocity")
        check(
            len(self.programs) > 0 and all(0 <= p <= 127 for p in self.programs),
            "programs",
            "expected a non-empty list of GM programs in 0..127",
        )
        check(-40.0 <= self.peak_dbfs <= 0.0, "peak_dbfs", "expected dBFS in [-40, 0]")
        check(
            self.max_retries is None or self.max_retries >= 0,
            "max_retries",
            "expected null (use generate.max_retries) or an integer >= 0",
        )
        check(
            self.fraction is None or 0.0 < self.fraction <= 1.0,
            "fraction",
            "expected null (use generate.fraction) or 0 < fraction <= 1",
        )


@dataclass(frozen=True)
class GenerateConfig:
    """Section ``generate``: which generators run and the per-class budget policy.

    Budget: ``fraction`` x total training-split duration of the labelled corpus
    tracks, split equally across the classes that have training clips;
    samples per class = floor(class budget / ``sample_s``). A generator section with its own
    ``fraction`` (``compose``) overrides it for that generator only (:meth:`fraction_for`).
    """

    generators: list[str] = field(default_factory=lambda: ["resynth"])
    fraction: float = 0.05
    sample_s: float = 4.0
    seed: int = 0
    label_column: str = "quadrant"
    on_shortage: Literal["error", "reuse"] = "reuse"
    max_retries: int = 3
    silence_db: float = -60.0
    resynth: ResynthConfig = field(default_factory=ResynthConfig)
    musicgen: MusicgenConfig = field(default_factory=MusicgenConfig)
    compose: ComposeConfig = field(default_factory=ComposeConfig)

    def __post_init__(self):
        from mgdata.generate.base import GENERATORS

        check(len(self.generators) >= 1, "generators", "expected at least one generator name")
        for i, name in enumerate(self.generators):
            check(name in GENERATORS, f"generators[{i}]", f"expected one of {sorted(GENERATORS)}, got {name!r}")
        check(len(set(self.generators)) == len(self.generators), "generators", "expected unique names")
        check(0.0 < self.fraction <= 1.0, "fraction", "expected 0 < fraction <= 1")
        check(0.1 <= self.sample_s <= 600.0, "sample_s", "expected 0.1..600 seconds")
        check(self.seed >= 0, "seed", "expected an integer >= 0")
        check(bool(self.label_column), "label_column", "expected a column name")
        check(self.max_retries >= 0, "max_retries", "expected an integer >= 0")
        check(-120.0 <= self.silence_db < 0.0, "silence_db", "expected -120..0 dBFS")

    def section(self, name: str):
        """The generator's own config section (``resynth`` / ``musicgen`` / ``compose``); ``None`` for other names."""
        return getattr(self, name, None) if name in ("resynth", "musicgen", "compose") else None

    def fraction_for(self, name: str) -> float:
        """Budget fraction of generator ``name``: its section's ``fraction`` if set, else ``fraction``."""
        override = getattr(self.section(name), "fraction", None)
        return self.fraction if override is None else override

    def fraction_key(self, name: str) -> str:
        """The params key that sets generator ``name``'s budget (for messages)."""
        own = getattr(self.section(name), "fraction", None) is not None
        return f"generate.{name}.fraction" if own else "generate.fraction"

    def retries_for(self, name: str) -> int:
        """Retries for NaN/silent output: the generator's override if set, else ``max_retries``."""
        override = getattr(self.section(name), "max_retries", None)
        return self.max_retries if override is None else override
