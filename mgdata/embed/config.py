"""Params section ``embed``: embedders, windowing, output dtype and deformation scenarios.

The DVC ``embed`` stage is a matrix over ``embedders`` x ``artifacts`` x
``scenario_names``; everything else here shapes what one matrix item computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mgdata.config import check
from mgdata.embed.registry import EMBEDDERS

#: The built-in scenario that applies no deformation and covers every split.
CLEAN = "clean"

DEFORMATION_TYPES = ("none", "noise", "gain", "mp3", "pitch_shift", "clipping", "impulse_response")

#: Bitrates the LAME encoder (through audiomentations' Mp3Compression) accepts.
MP3_BITRATES_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 192, 224, 256, 320)


@dataclass(frozen=True)
class LogMelConfig:
    """Settings of the ``logmel`` embedder (librosa mel spectrogram, no weights).

    Attributes:
        sample_rate: Rate the audio is resampled to before the STFT (Hz).
        n_fft: STFT size in samples.
        hop_length: STFT hop in samples.
        n_mels: Number of mel bands.
        fmin_hz: Lowest mel band edge (Hz).
        fmax_hz: Highest mel band edge (Hz); ``None`` = Nyquist.
        stats: ``True``: one frame per window = mean and std per band (dim
            ``2 * n_mels``); ``False``: the raw log-mel frames (dim ``n_mels``),
            e.g. for token sequences.
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 320
    n_mels: int = 64
    fmin_hz: float = 0.0
    fmax_hz: float | None = None
    stats: bool = True

    def __post_init__(self):
        check(4000 <= self.sample_rate <= 192000, "sample_rate", "expected 4000..192000 Hz")
        check(self.n_fft >= 16, "n_fft", "expected an STFT size >= 16 samples")
        check(1 <= self.hop_length <= self.n_fft, "hop_length", "expected 1 <= hop_length <= n_fft")
        check(1 <= self.n_mels <= self.n_fft // 2 + 1, "n_mels", "expected 1 <= n_mels <= n_fft / 2 + 1")
        fmax = self.sample_rate / 2 if self.fmax_hz is None else self.fmax_hz
        check(
            0.0 <= self.fmin_hz < fmax <= self.sample_rate / 2,
            "fmin_hz",
            "expected 0 <= fmin_hz < fmax_hz <= sample_rate / 2",
        )


@dataclass(frozen=True)
class HFConfig:
    """Settings of the ``hf`` embedder (any transformers audio encoder).

    Attributes:
        model: Hub model id or local folder (``save_pretrained`` layout).
        revision: Hub revision (branch, tag or commit); ``None`` = default.
        layers: Hidden-state indices to average (0 = embedding output, -1 = last).
        output: ``hidden``: frames from the hidden states; ``pooled``: one vector per
            window (CLAP's projected audio embedding, else the pooler output).
        trust_remote_code: Needed by models with custom code (MERT).
        local_files_only: Never touch the network (weights must be in the HF cache or
            a local folder); set ``false`` on a connected machine to download.
        batch_size: Windows per forward pass.
    """

    model: str = "MIT/ast-finetuned-audioset-10-10-0.4593"
    revision: str | None = None
    layers: list[int] = field(default_factory=lambda: [-1])
    output: Literal["hidden", "pooled"] = "hidden"
    trust_remote_code: bool = False
    local_files_only: bool = True
    batch_size: int = 8

    def __post_init__(self):
        check(bool(self.model.strip()), "model", "expected a model id or a local path")
        check(len(self.layers) >= 1, "layers", "expected at least one hidden-state index")
        check(len(set(self.layers)) == len(self.layers), "layers", "expected distinct indices")
        check(self.batch_size >= 1, "batch_size", "expected an integer >= 1")


@dataclass(frozen=True)
class ScenarioConfig:
    """One deformation scenario (mir_ref style); only the fields of its ``type`` are used.

    Attributes:
        type: ``none``, ``noise``, ``gain``, ``mp3``, ``pitch_shift``, ``clipping`` or
            ``impulse_response``.
        snr_db: ``noise``: signal-to-noise ratio of added white Gaussian noise (dB).
        gain_db: ``gain``: gain applied (dB; negative attenuates).
        bitrate_kbps: ``mp3``: constant bitrate of the MP3 round trip.
        semitones: ``pitch_shift``: shift (semitones, -24..24).
        clip_percentile: ``clipping``: percent of samples clipped (0..100, integer).
        clip_threshold: ``clipping``: absolute clipping level (0..1]; used instead of
            ``clip_percentile`` when set.
        ir_path: ``impulse_response``: an IR audio file; ``None`` = a synthetic
            exponentially decaying noise IR (seeded).
        rt60_s: ``impulse_response`` (synthetic): time for a 60 dB decay.
        ir_duration_s: ``impulse_response`` (synthetic): IR length.
    """

    type: Literal["none", "noise", "gain", "mp3", "pitch_shift", "clipping", "impulse_response"] = "none"
    snr_db: float | None = None
    gain_db: float | None = None
    bitrate_kbps: int | None = None
    semitones: float | None = None
    clip_percentile: int | None = None
    clip_threshold: float | None = None
    ir_path: str | None = None
    rt60_s: float = 0.6
    ir_duration_s: float = 1.0

    def __post_init__(self):
        t = self.type
        if t == "noise":
            check(self.snr_db is not None, "snr_db", "required for a noise scenario")
        elif t == "gain":
            check(self.gain_db is not None, "gain_db", "required for a gain scenario")
        elif t == "mp3":
            check(self.bitrate_kbps in MP3_BITRATES_KBPS, "bitrate_kbps", f"expected one of {list(MP3_BITRATES_KBPS)}")
        elif t == "pitch_shift":
            check(
                self.semitones is not None and -24.0 <= self.semitones <= 24.0,
                "semitones",
                "expected a shift in -24..24 semitones",
            )
        elif t == "clipping":
            check(
                self.clip_percentile is not None or self.clip_threshold is not None,
                "clip_percentile",
                "a clipping scenario needs clip_percentile (0..100) or clip_threshold (0..1]",
            )
            if self.clip_threshold is not None:
                check(0.0 < self.clip_threshold <= 1.0, "clip_threshold", "expected 0 < clip_threshold <= 1")
            else:
                check(0 <= self.clip_percentile <= 100, "clip_percentile", "expected 0..100 percent")
        elif t == "impulse_response":
            check(self.rt60_s > 0.0, "rt60_s", "expected a positive decay time")
            check(self.ir_duration_s > 0.0, "ir_duration_s", "expected a positive IR length")

    def params(self) -> dict:
        """The fields that matter for this scenario's type (recorded in each sample's json)."""
        used = {
            "none": (),
            "noise": ("snr_db",),
            "gain": ("gain_db",),
            "mp3": ("bitrate_kbps",),
            "pitch_shift": ("semitones",),
            "clipping": ("clip_threshold",) if self.clip_threshold is not None else ("clip_percentile",),
            "impulse_response": ("ir_path",) if self.ir_path else ("rt60_s", "ir_duration_s"),
        }[self.type]
        return {name: getattr(self, name) for name in used}


@dataclass(frozen=True)
class MusicFeatConfig:
    """Settings of the ``musicfeat`` embedder.

    Attributes:
        sample_rate: Analysis rate (Hz); 22050 keeps chroma up to the 4th harmonics of the upper voices.
        n_fft: STFT size for chroma (93 ms at 22.05 kHz: semitone resolution from ~110 Hz up).
        hop_length: Hop of every frame-wise feature (23 ms).
        tuning: Reference tuning deviation in fractions of a bin (0 = A440; fixed, not
            estimated, so one window's estimate cannot shift another's chroma).
    """

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    tuning: float = 0.0

    def __post_init__(self):
        check(8000 <= self.sample_rate <= 192000, "sample_rate", "expected 8000..192000 Hz")
        check(self.n_fft >= 256, "n_fft", "expected an STFT size >= 256 samples")
        check(1 <= self.hop_length <= self.n_fft, "hop_length", "expected 1 <= hop_length <= n_fft")
        check(-0.5 <= self.tuning <= 0.5, "tuning", "expected -0.5..0.5 bins")


#: Checkpoints of the ``musicnn`` wheel the ``musicnn`` embedder loads (the MusiCNN ones: the VGG baselines
#: have no penultimate or pooled layers).
MUSICNN_CHECKPOINTS = ("MSD_musicnn", "MTT_musicnn")
#: Layers the ``musicnn`` embedder returns, one vector per 3 s patch, and their widths.
MUSICNN_LAYERS = {"penultimate": 200, "taggram": 50, "max_pool": 753, "mean_pool": 753}


@dataclass(frozen=True)
class MusicnnConfig:
    """Settings of the ``musicnn`` embedder (MusiCNN, Pons & Serra 2019, weights from the ``musicnn`` wheel).

    Attributes:
        checkpoint: ``MSD_musicnn`` (Million Song Dataset tags: moods such as happy, sad, chill, beautiful)
            or ``MTT_musicnn`` (MagnaTagATune: instruments and genres).
        layer: ``penultimate`` (200, the back end's dense layer), ``taggram`` (50 tag probabilities),
            ``max_pool`` / ``mean_pool`` (753, the mid end pooled over a patch).
        patch_hop_s: Hop between the native 3 s patches of a clip (seconds, <= 3). The patches are
            centred in the clip: 3 (non-overlapping, as the wheel) gives one centred patch per 4 s clip;
            1 gives two patches that cover the whole clip at twice the cost.
    """

    checkpoint: str = "MSD_musicnn"
    layer: str = "penultimate"
    patch_hop_s: float = 3.0

    def __post_init__(self):
        check(
            self.checkpoint in MUSICNN_CHECKPOINTS,
            "checkpoint",
            f"expected one of {list(MUSICNN_CHECKPOINTS)}, got {self.checkpoint!r}",
        )
        check(self.layer in MUSICNN_LAYERS, "layer", f"expected one of {list(MUSICNN_LAYERS)}, got {self.layer!r}")
        check(
            0.1 <= self.patch_hop_s <= 3.0,
            "patch_hop_s",
            f"expected 0.1..3 s (3 = non-overlapping patches), got {self.patch_hop_s}",
        )


@dataclass(frozen=True)
class ArtifactRef:
    """An input artifact of the ``embed`` stage: a name (used in output paths) and its directory."""

    name: str = "corpus"
    path: str = "data/corpus/mix"

    def __post_init__(self):
        check(
            bool(self.name)
            and self.name.replace("_", "").replace("-", "").isalnum()
            and self.name == self.name.lower(),
            "name",
            "expected a lowercase name of [a-z0-9_-]",
        )
        check(bool(self.path.strip()), "path", "expected an artifact directory")


def _default_scenarios() -> dict[str, ScenarioConfig]:
    return {
        "noise_snr20": ScenarioConfig(type="noise", snr_db=20.0),
        "noise_snr5": ScenarioConfig(type="noise", snr_db=5.0),
        "gain_m6": ScenarioConfig(type="gain", gain_db=-6.0),
        "mp3_32k": ScenarioConfig(type="mp3", bitrate_kbps=32),
        "pitch_p2": ScenarioConfig(type="pitch_shift", semitones=2.0),
        "clip_10pct": ScenarioConfig(type="clipping", clip_percentile=10),
        "reverb_rt06": ScenarioConfig(type="impulse_response", rt60_s=0.6, ir_duration_s=1.0),
    }


@dataclass(frozen=True)
class EmbedConfig:
    """Section ``embed``.

    Attributes:
        embedders: Registry names the DVC matrix runs (``logmel``, ``hf``).
        artifacts: Input artifacts (samples with ``flac`` + ``json``) the matrix runs over.
        scenario_names: Scenarios the matrix runs (``clean`` is built in).
        scenarios: Named deformation scenarios.
        eval_splits: Splits a deformation scenario is applied to (and produced for);
            ``clean`` covers every split.
        window_s: Analysis window (seconds).
        hop_s: Hop between windows (seconds).
        aggregation: ``mean``: one vector per clip (mean of all frames of all
            windows); ``none``: every frame kept.
        clip_s: Cut each input sample into clips of this many seconds before
            aggregating, one matrix row per clip (``aggregation: mean`` only); 0 = the
            whole sample is one clip. A trailing remainder shorter than a clip is
            dropped; a sample shorter than one clip is one (whole) clip.
        clip_hop_s: Hop between clip starts (seconds); ``None`` = ``clip_s`` (no overlap).
        dtype: Stored embedding dtype.
        short_clip: A clip shorter than one window is zero-padded (``pad``) or
            skipped and counted (``skip``).
        fail_on_error: Stop at the first bad sample instead of skipping and counting it.
        seed: Seed of every random deformation (combined with the scenario and sample key).
        device: ``auto`` = CUDA when available.
        logmel: ``logmel`` settings.
        hf: ``hf`` settings.
        musicfeat: ``musicfeat`` settings.
        musicnn: ``musicnn`` settings.
    """

    embedders: list[str] = field(default_factory=lambda: ["logmel"])
    artifacts: list[ArtifactRef] = field(
        default_factory=lambda: [
            ArtifactRef("corpus", "data/corpus/mix"),
            ArtifactRef("resynth", "data/generate/resynth"),
        ]
    )
    scenario_names: list[str] = field(default_factory=lambda: [CLEAN, "noise_snr20", "gain_m6"])
    scenarios: dict[str, ScenarioConfig] = field(default_factory=_default_scenarios)
    eval_splits: list[str] = field(default_factory=lambda: ["validation", "test"])
    window_s: float = 2.0
    hop_s: float = 1.0
    aggregation: Literal["mean", "none"] = "mean"
    clip_s: float = 0.0
    clip_hop_s: float | None = None
    dtype: Literal["float16", "float32"] = "float32"
    short_clip: Literal["pad", "skip"] = "pad"
    fail_on_error: bool = False
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    logmel: LogMelConfig = field(default_factory=LogMelConfig)
    hf: HFConfig = field(default_factory=HFConfig)
    musicfeat: MusicFeatConfig = field(default_factory=MusicFeatConfig)
    musicnn: MusicnnConfig = field(default_factory=MusicnnConfig)

    def __post_init__(self):
        for i, name in enumerate(self.embedders):
            check(name in EMBEDDERS, f"embedders[{i}]", f"expected one of {sorted(EMBEDDERS)}, got {name!r}")
        names = [a.name for a in self.artifacts]
        check(len(set(names)) == len(names), "artifacts", "expected distinct artifact names")
        # `clean` may be listed (as type none) so every matrix item has its own params key in dvc.yaml.
        check(
            CLEAN not in self.scenarios or self.scenarios[CLEAN].type == "none",
            f"scenarios.{CLEAN}",
            f"'{CLEAN}' is the undeformed audio: its type must be none",
        )
        for i, name in enumerate(self.scenario_names):
            check(
                name == CLEAN or name in self.scenarios,
                f"scenario_names[{i}]",
                f"expected '{CLEAN}' or a key of embed.scenarios, got {name!r}",
            )
        check(len(self.eval_splits) >= 1, "eval_splits", "expected at least one split")
        check(self.window_s > 0.0, "window_s", "expected a positive window length")
        check(0.0 < self.hop_s, "hop_s", "expected a positive hop")
        check(
            self.clip_s == 0.0 or self.clip_s >= self.window_s,
            "clip_s",
            f"expected 0 (whole sample) or a clip length >= window_s ({self.window_s} s), got {self.clip_s}",
        )
        check(
            self.clip_s == 0.0 or self.aggregation == "mean",
            "clip_s",
            "clips apply to aggregation: mean (aggregation: none keeps every frame); set clip_s: 0",
        )
        check(
            self.clip_hop_s is None or self.clip_hop_s > 0.0,
            "clip_hop_s",
            "expected a positive hop (or null = clip_s)",
        )
        check(self.seed >= 0, "seed", "expected a non-negative seed")

    def scenario(self, name: str) -> ScenarioConfig:
        """The scenario called ``name`` (``clean`` = no deformation)."""
        if name == CLEAN:
            return ScenarioConfig(type="none")
        from mgdata.errors import ParamsError

        if name not in self.scenarios:
            raise ParamsError(
                "embed.scenarios", f"no scenario named {name!r} (known: {', '.join([CLEAN, *sorted(self.scenarios)])})"
            )
        return self.scenarios[name]

    def artifact(self, name: str) -> ArtifactRef:
        """The input artifact called ``name``."""
        for ref in self.artifacts:
            if ref.name == name:
                return ref
        from mgdata.errors import ParamsError

        raise ParamsError(
            "embed.artifacts", f"no artifact named {name!r} (known: {', '.join(a.name for a in self.artifacts)})"
        )

    def windowing(self) -> dict:
        """The settings that shape every embedding, whatever the embedder."""
        out = {k: getattr(self, k) for k in ("window_s", "hop_s", "aggregation", "dtype", "short_clip")}
        if self.clip_s:  # only when clipping, so whole-sample artifacts keep their fingerprints
            out |= {"clip_s": self.clip_s, "clip_hop_s": self.clip_hop_s or self.clip_s}
        return out


__all__ = [
    "ArtifactRef",
    "CLEAN",
    "EmbedConfig",
    "HFConfig",
    "LogMelConfig",
    "MP3_BITRATES_KBPS",
    "MUSICNN_CHECKPOINTS",
    "MUSICNN_LAYERS",
    "MusicnnConfig",
    "ScenarioConfig",
]
