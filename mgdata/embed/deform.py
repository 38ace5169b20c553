"""Audio deformations for robustness evaluation (mir_ref style), one named scenario each.

Scenario types (params in :class:`~mgdata.embed.config.ScenarioConfig`):

* ``noise``: white Gaussian noise at ``snr_db`` (audiomentations ``AddGaussianSNR``).
* ``gain``: ``gain_db`` (audiomentations ``Gain``).
* ``mp3``: MP3 encode/decode at ``bitrate_kbps`` (audiomentations ``Mp3Compression``
  with its ``fast-mp3-augment`` backend: LAME + minimp3 in memory, delay-compensated,
  same length out as in).
* ``pitch_shift``: ``semitones`` (audiomentations ``PitchShift``, Signalsmith Stretch).
* ``clipping``: ``clip_percentile`` percent of samples clipped (audiomentations
  ``ClippingDistortion``) or a fixed ``clip_threshold`` (audiomentations ``Clip``).
* ``impulse_response``: convolution (scipy ``fftconvolve``) with an IR file or, since
  no IR dataset ships, a synthetic exponentially decaying noise IR drawn from the
  scenario seed; output RMS is matched to the input so only the reverberation,
  not the level, changes. (audiomentations' ``ApplyImpulseResponse`` needs IR
  files and peak-normalises its output to 0.5, which would add a level change.)

Determinism: audiomentations draws from the global ``random`` / ``numpy.random``
state; :func:`seeded_global_rngs` seeds both from :func:`deformation_seed`
(params seed + scenario + sample key, via sha256) for the call and restores them
afterwards, so a sample gets the same deformation in every run and any order.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.embed.config import CLEAN, ScenarioConfig
from mgdata.errors import DependencyError, InputError


def deformation_seed(seed: int, scenario: str, key: str) -> int:
    """A 32-bit seed from the params seed, scenario name and sample key (stable across runs/platforms)."""
    digest = hashlib.sha256(f"{seed}\x00{scenario}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


@contextlib.contextmanager
def seeded_global_rngs(seed: int) -> Iterator[None]:
    """Seed Python's and numpy's global RNGs for a block, then restore their previous states."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def synthetic_ir(sample_rate: int, *, rt60_s: float, duration_s: float, seed: int) -> np.ndarray:
    """Exponentially decaying white-noise impulse response with a unit direct path.

    The envelope falls 60 dB in ``rt60_s`` (amplitude ``exp(-6.91 t / rt60)``); the
    IR is scaled to unit energy.
    """
    n = max(1, int(round(duration_s * sample_rate)))
    t = np.arange(n) / sample_rate
    rng = np.random.default_rng(seed)
    ir = rng.standard_normal(n) * np.exp(-np.log(1000.0) * t / rt60_s)
    ir[0] = 1.0  # direct sound
    return (ir / np.sqrt(np.sum(ir**2))).astype(np.float32)


class Deformation:
    """A named deformation scenario, applied one clip at a time.

    Args:
        name: Scenario name (``clean`` or a key of ``embed.scenarios``).
        cfg: Its settings.
        seed: The params seed (combined with the name and each sample key).
    """

    def __init__(self, name: str, cfg: ScenarioConfig, *, seed: int = 0):
        self.name = name
        self.cfg = cfg
        self.seed = seed
        self._ir_cache: dict[int, np.ndarray] = {}
        self._transform = self._make_transform()

    @property
    def is_identity(self) -> bool:
        """True for ``clean`` / type ``none``."""
        return self.cfg.type == "none"

    def _make_transform(self):
        c = self.cfg
        if c.type in ("none", "impulse_response"):
            return None
        import audiomentations as am

        if c.type == "noise":
            return am.AddGaussianSNR(min_snr_db=c.snr_db, max_snr_db=c.snr_db, p=1.0)
        if c.type == "gain":
            return am.Gain(min_gain_db=c.gain_db, max_gain_db=c.gain_db, p=1.0)
        if c.type == "mp3":
            try:
                import fast_mp3_augment  # noqa: F401  (the backend audiomentations uses)
            except ImportError:
                raise DependencyError(
                    "the mp3 scenario needs the 'fast-mp3-augment' package (pip install fast-mp3-augment)"
                ) from None
            return am.Mp3Compression(
                min_bitrate=c.bitrate_kbps, max_bitrate=c.bitrate_kbps, backend="fast-mp3-augment", p=1.0
            )
        if c.type == "pitch_shift":
            return am.PitchShift(
                min_semitones=c.semitones, max_semitones=c.semitones, method="signalsmith_stretch", p=1.0
            )
        if c.type == "clipping":
            if c.clip_threshold is not None:
                return am.Clip(a_min=-c.clip_threshold, a_max=c.clip_threshold, p=1.0)
            return am.ClippingDistortion(
                min_percentile_threshold=c.clip_percentile, max_percentile_threshold=c.clip_percentile, p=1.0
            )
        raise ValueError(f"unknown deformation type {c.type!r}")  # unreachable: config validates

    def _impulse_response(self, sample_rate: int) -> np.ndarray:
        if sample_rate not in self._ir_cache:
            c = self.cfg
            if c.ir_path:
                from mgdata.audio import read_audio

                if not Path(c.ir_path).exists():
                    raise InputError(c.ir_path, "impulse response file not found (embed.scenarios.*.ir_path)")
                ir, _ = read_audio(c.ir_path, sr=sample_rate, mono=True)
                energy = float(np.sum(ir.astype(np.float64) ** 2))
                if energy <= 0:
                    raise InputError(c.ir_path, "impulse response is silent")
                ir = (ir / np.sqrt(energy)).astype(np.float32)
            else:
                # One room per scenario: the IR seed depends on the scenario, not the sample.
                ir = synthetic_ir(
                    sample_rate,
                    rt60_s=c.rt60_s,
                    duration_s=c.ir_duration_s,
                    seed=deformation_seed(self.seed, self.name, "__ir__"),
                )
            self._ir_cache[sample_rate] = ir
        return self._ir_cache[sample_rate]

    def apply(self, audio: np.ndarray, sample_rate: int, *, key: str) -> np.ndarray:
        """Deform mono float32 audio ``[n]``; the output has the same length.

        Args:
            audio: The clean clip.
            sample_rate: Its rate (Hz).
            key: Sample key (seeds random deformations; named in errors).
        """
        x = np.asarray(audio, dtype=np.float32)
        if self.is_identity:
            return x
        if self.cfg.type == "impulse_response":
            from scipy.signal import fftconvolve

            y = fftconvolve(x.astype(np.float64), self._impulse_response(sample_rate).astype(np.float64))[: x.size]
            rms_in, rms_out = np.sqrt(np.mean(x.astype(np.float64) ** 2)), np.sqrt(np.mean(y**2))
            if rms_out > 0:
                y *= rms_in / rms_out
            return y.astype(np.float32)
        with seeded_global_rngs(deformation_seed(self.seed, self.name, key)):
            y = self._transform(samples=x, sample_rate=sample_rate)
        y = np.asarray(y, dtype=np.float32)
        if y.shape != x.shape:  # keep frame alignment with the clean clip
            y = np.pad(y, (0, max(0, x.size - y.size)))[: x.size]
        return y

    def describe(self, key: str | None = None) -> dict[str, Any]:
        """What each sample's json records: name, type, params, library and (per sample) the seed."""
        import audiomentations

        info: dict[str, Any] = {"name": self.name, "type": self.cfg.type, "params": self.cfg.params()}
        if self.cfg.type not in ("none", "impulse_response"):
            info["library"] = f"audiomentations {audiomentations.__version__}"
            info["transform"] = type(self._transform).__name__
        elif self.cfg.type == "impulse_response":
            info["library"] = "scipy.signal.fftconvolve"
            if not self.cfg.ir_path:
                info["ir_seed"] = deformation_seed(self.seed, self.name, "__ir__")
        if key is not None and self._transform is not None:
            info["seed"] = deformation_seed(self.seed, self.name, key)
        return info


def make_deformation(name: str, cfg: ScenarioConfig | None = None, *, seed: int = 0) -> Deformation:
    """The deformation for scenario ``name`` (``clean`` needs no cfg)."""
    if name == CLEAN:
        cfg = ScenarioConfig(type="none")
    elif cfg is None:
        raise ValueError(f"scenario {name!r} needs its ScenarioConfig")
    return Deformation(name, cfg, seed=seed)
