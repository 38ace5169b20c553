"""Frame encoders for tokens: audio -> ``[n_frames, dim]`` frames at a known frame rate.

Default: **STFT chroma** (``chroma_stft``: 12 pitch classes per frame from a
pitch-class filterbank on a 4096-point power STFT at 16 kHz). The stem pairs
pair the parts of a piece (soprano with bass, alto with tenor ...); what relates
them is harmony and voice leading, i.e. pitch-class content over time, which
chroma captures and which is largely independent of the instrument each part was
rendered with. It runs at ~350x real time per core (issue 12 asks >= 50x;
``bench/bench_tokens.py``). ``chroma_cqt`` (librosa's CQT chroma: log-spaced bins
resolve low notes more sharply, ~130x) and ``logmel`` (timbre and loudness: would
mostly spell out which instrument plays) are offered for comparison. Frames
quieter than ``silence_db`` are zeroed so that rests become one "silence" symbol
instead of normalised noise. Tuning is fixed at A440 (``tuning=0``) rather than
estimated per stem: the corpus is rendered at A440, and per-stem estimates (noisy
on short or sparse stems) could shift the two stems of one pair differently.

``musicnn`` gives frame-level MusiCNN features (``cnn3``, 62.5 frames/s; see
:class:`MusicnnFrameEncoder`): what a pretrained music tagger hears, ~55x real time
per core (``bench/bench_musicnn.py``). For real runs, ``encoder: embedder`` wraps any
embedder of the :mod:`mgdata.embed` registry (e.g. the ``hf`` model encoder) with
frames kept. Encoders are looked up by name in
:data:`mgdata.tokens.config.ENCODERS` (a lazy :class:`mgdata.registry.Registry` of
factories taking the ``tokens`` settings), so a plugin can register its own.

Every encoder trims its frames to those centred inside the audio (frame ``i`` at
``i / frame_rate`` s, ``i < ceil(n_samples / hop)``), so the condenser sees frames
that cover exactly the audio's duration.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Protocol

import librosa
import numpy as np
import scipy.fft

from mgdata.audio import resample
from mgdata.errors import DependencyError, InputError, ParamsError
from mgdata.tokens.config import ENCODERS, TokensConfig

# librosa's chroma_cqt default lowest note (C1).
_C1_HZ = 32.70319566257483
# Frames per FFT block of the STFT chroma.
_BLOCK = 256


class FrameEncoder(Protocol):
    """What the token builder needs from an encoder."""

    sample_rate: int
    frame_rate: float

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """``[n_frames, dim]`` float32 frames of mono audio at ``sample_rate``."""

    def describe(self) -> dict[str, Any]:
        """JSON-safe id and settings (recorded in every sample and the fingerprint)."""


def _n_frames(n_samples: int, hop: int) -> int:
    return max(1, math.ceil(n_samples / hop)) if n_samples > 0 else 0


class ChromaEncoder:
    """CQT chroma frames (12 dims, max-normalised per frame, silent frames zero)."""

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        hop_length: int = 160,
        n_octaves: int = 7,
        silence_db: float = -60.0,
        gate_length: int = 2048,
    ):
        self.sample_rate = int(sample_rate)
        self.hop_length = int(hop_length)
        self.n_octaves = int(n_octaves)
        self.silence_db = float(silence_db)
        self.gate_length = int(gate_length)
        self.frame_rate = self.sample_rate / self.hop_length

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """Chroma frames ``[n_frames, 12]``."""
        y = np.asarray(audio, dtype=np.float32)
        n = _n_frames(len(y), self.hop_length)
        if n == 0:
            return np.zeros((0, 12), dtype=np.float32)
        chroma = librosa.feature.chroma_cqt(
            y=y, sr=self.sample_rate, hop_length=self.hop_length, fmin=_C1_HZ, n_octaves=self.n_octaves, tuning=0.0
        )[:, :n]
        rms = librosa.feature.rms(y=y, frame_length=self.gate_length, hop_length=self.hop_length)[0, :n]
        level_db = 20.0 * np.log10(np.maximum(rms, 1e-12))
        chroma[:, level_db < self.silence_db] = 0.0
        return np.ascontiguousarray(chroma.T, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """Id and settings."""
        return {
            "id": "chroma_cqt",
            "library": f"librosa {librosa.__version__}",
            "sample_rate": self.sample_rate,
            "hop_length": self.hop_length,
            "frame_rate": self.frame_rate,
            "n_octaves": self.n_octaves,
            "fmin_hz": _C1_HZ,
            "tuning": 0.0,
            "silence_db": self.silence_db,
            "gate_length": self.gate_length,
            "dim": 12,
        }


def _gate_db(y: np.ndarray, n: int, length: int, hop: int) -> np.ndarray:
    """RMS level (dBFS) of ``n`` centred frames of ``length`` samples every ``hop``, zero-padded at the ends.

    The same frames as ``librosa.feature.rms(center=True)``, from a running sum of squares (O(samples)
    instead of O(samples x length / hop): librosa's framing took 3/4 of the STFT chroma's time).
    """
    half = length // 2
    # frame n-1 starts before len(y), so a right pad of length - half covers every frame
    sq = np.concatenate(([0.0], np.cumsum(np.pad(y.astype(np.float64) ** 2, (half, length - half)))))
    starts = np.arange(n) * hop
    ms = (sq[starts + length] - sq[starts]) / length
    return 10.0 * np.log10(np.maximum(ms, 1e-24))


class StftChromaEncoder:
    """STFT chroma frames: a pitch-class filterbank on a power STFT (12 dims, max-normalised, silent frames zero).

    The default encoder: ~10x faster than the CQT (one FFT per frame instead of a
    multirate filter bank), which issue 12's target of >= 50x real time per core
    needs. The filterbank is librosa's ``filters.chroma`` with flat octave
    weighting (``octwidth=None``: bass and soprano count alike, where librosa's
    default Gaussian centred on C5 would fade the bass line) and bins outside
    ``[C1, C1 * 2**n_octaves]`` removed. ``n_fft`` = 4096 at 16 kHz gives 3.9 Hz
    bins (a semitone at C2 is 3.9 Hz wide; the partials of low notes, which an
    instrument always has, resolve better still) at a 256 ms window; the 10 ms hop
    keeps 100 frames/s, so segments of 0.25-0.5 s still average 25-50 frames.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        hop_length: int = 160,
        n_fft: int = 4096,
        n_octaves: int = 7,
        silence_db: float = -60.0,
        gate_length: int = 2048,
    ):
        self.sample_rate = int(sample_rate)
        self.hop_length = int(hop_length)
        self.n_fft = int(n_fft)
        self.n_octaves = int(n_octaves)
        self.silence_db = float(silence_db)
        self.gate_length = int(gate_length)
        self.frame_rate = self.sample_rate / self.hop_length
        fb = librosa.filters.chroma(sr=self.sample_rate, n_fft=self.n_fft, tuning=0.0, octwidth=None, base_c=True)
        freqs = np.fft.rfftfreq(self.n_fft, 1.0 / self.sample_rate)
        # Half a semitone of margin so C1 and the top B keep their own bins.
        lo, hi = _C1_HZ * 2 ** (-0.5 / 12), _C1_HZ * 2 ** (self.n_octaves - 0.5 / 12)
        fb[:, (freqs < lo) | (freqs > hi)] = 0.0
        self._fb = np.ascontiguousarray(fb, dtype=np.float32)
        self._window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa's stft

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """Chroma frames ``[n_frames, 12]``."""
        y = np.asarray(audio, dtype=np.float32)
        n = _n_frames(len(y), self.hop_length)
        if n == 0:
            return np.zeros((0, 12), dtype=np.float32)
        # Centred frames (frame i at i * hop), zero-padded at both ends like librosa's stft(center=True).
        pad = self.n_fft // 2
        yp = np.pad(y, (pad, pad + self.hop_length))
        fr = np.lib.stride_tricks.sliding_window_view(yp, self.n_fft)[:: self.hop_length][:n]
        chroma = np.empty((n, 12), dtype=np.float32)
        # Blocks of frames keep the windowed copy in cache (3-4x faster than one [n, n_fft] array);
        # scipy's float32 FFT is 2-3x numpy's. Each frame is computed alone, so blocking never changes values.
        for b in range(0, n, _BLOCK):
            spec = scipy.fft.rfft(fr[b : b + _BLOCK] * self._window, axis=1)
            power = spec.real * spec.real + spec.imag * spec.imag
            chroma[b : b + _BLOCK] = power @ self._fb.T
        peak = chroma.max(axis=1, keepdims=True)
        chroma = np.divide(chroma, peak, out=np.zeros_like(chroma), where=peak > 0)
        chroma[_gate_db(y, n, self.gate_length, self.hop_length) < self.silence_db] = 0.0
        return np.ascontiguousarray(chroma, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """Id and settings."""
        return {
            "id": "chroma_stft",
            "library": f"numpy {np.__version__}, librosa {librosa.__version__}",
            "sample_rate": self.sample_rate,
            "hop_length": self.hop_length,
            "frame_rate": self.frame_rate,
            "n_fft": self.n_fft,
            "n_octaves": self.n_octaves,
            "fmin_hz": _C1_HZ,
            "tuning": 0.0,
            "octwidth": None,
            "silence_db": self.silence_db,
            "gate_length": self.gate_length,
            "dim": 12,
        }


class LogMelEncoder:
    """Log-mel frames (``n_mels`` dims, dB relative to full scale)."""

    def __init__(self, *, sample_rate: int = 16000, hop_length: int = 160, n_fft: int = 2048, n_mels: int = 64):
        self.sample_rate = int(sample_rate)
        self.hop_length = int(hop_length)
        self.n_fft = int(n_fft)
        self.n_mels = int(n_mels)
        self.frame_rate = self.sample_rate / self.hop_length

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel frames ``[n_frames, n_mels]``."""
        y = np.asarray(audio, dtype=np.float32)
        n = _n_frames(len(y), self.hop_length)
        if n == 0:
            return np.zeros((0, self.n_mels), dtype=np.float32)
        mel = librosa.feature.melspectrogram(
            y=y, sr=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length, n_mels=self.n_mels
        )[:, :n]
        # Fixed reference (ref=1.0) so levels are comparable across stems; floor at -100 dB.
        logmel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
        return np.ascontiguousarray(np.maximum(logmel, -100.0).T, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """Id and settings."""
        return {
            "id": "logmel",
            "library": f"librosa {librosa.__version__}",
            "sample_rate": self.sample_rate,
            "hop_length": self.hop_length,
            "frame_rate": self.frame_rate,
            "n_fft": self.n_fft,
            "n_mels": self.n_mels,
            "dim": self.n_mels,
        }


class RegistryEncoder:
    """Frames from an embedder of the :mod:`mgdata.embed` registry, run on the whole stem.

    Args:
        embedder: An :class:`mgdata.embed.base.Embedder` whose ``frame_rate`` is
            set (evenly spaced time frames: wav2vec2/HuBERT/MERT through ``hf``,
            ``logmel`` with ``stats: false``).

    Raises:
        ParamsError: (``tokens.embedder``) the embedder yields no time frames.
    """

    def __init__(self, embedder: Any):
        rate = getattr(embedder, "frame_rate", None)
        if not rate or rate <= 0:
            raise ParamsError(
                "tokens.embedder",
                f"embedder {embedder.describe().get('id', type(embedder).__name__)!r} yields no evenly spaced time "
                "frames (frame_rate is None), so its output cannot be condensed into segments: use a frame-level "
                "encoder (hf wav2vec2/HuBERT/MERT, or logmel with stats: false in tokens.embedder_params)",
            )
        self.embedder = embedder
        self.sample_rate = int(embedder.sample_rate)
        self.frame_rate = float(rate)

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """The embedder's frames as float32."""
        return np.asarray(self.embedder.frames(audio), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """The embedder's description plus the frame rate used."""
        return {"id": "embedder", "embedder": self.embedder.describe(), "frame_rate": self.frame_rate}


#: Layers of :class:`MusicnnFrameEncoder`: one vector per spectrogram frame, before the back end's pooling.
MUSICNN_FRAME_LAYERS = {"cnn1": 64, "cnn2": 64, "cnn3": 64, "timbral": 408, "temporal": 153, "midend": 753}


class MusicnnFrameEncoder:
    """Frame-level MusiCNN features (the ported network of :mod:`mgdata.musicnn`, weights from the wheel).

    MusiCNN is convolutional up to its back end, which max- and mean-pools the mid end
    over time: the layers before that pooling are per spectrogram frame, 16 kHz / hop 256 =
    62.5 frames/s. The default ``cnn3`` is the deepest of them: the third dense-residual
    mid-end convolution (64 channels, summed with the two before it), whose receptive field
    spans ~2.3 s (the 128-frame temporal filters of the front end plus three 7-frame
    convolutions), so a frame describes its musical context, not one spectrum; its segment
    means are what the back end would pool. ``midend`` is the full 753-dim vector the back
    end pools (front end + ``cnn1``-``cnn3``). Stems are cut into non-overlapping 3 s log-mel
    patches as the wheel's extractor does (its frame-level features are the patches'
    frames back to back), the last patch aligned to the stem end so every frame is covered
    (its frames already covered are dropped), a stem shorter than 3 s padded with silence;
    one torch thread, float32, eval mode.

    Args:
        checkpoint: ``MSD_musicnn`` (default) or ``MTT_musicnn``.
        layer: A key of :data:`MUSICNN_FRAME_LAYERS`.
    """

    def __init__(self, *, checkpoint: str = "MSD_musicnn", layer: str = "cnn3"):
        from mgdata.embed.config import MUSICNN_CHECKPOINTS
        from mgdata.musicnn.frontend import FFT_HOP, PATCH_FRAMES, SR

        if checkpoint not in MUSICNN_CHECKPOINTS:
            raise ParamsError(
                "tokens.embedder_params.checkpoint", f"expected one of {list(MUSICNN_CHECKPOINTS)}, got {checkpoint!r}"
            )
        if layer not in MUSICNN_FRAME_LAYERS:
            raise ParamsError(
                "tokens.embedder_params.layer", f"expected one of {list(MUSICNN_FRAME_LAYERS)}, got {layer!r}"
            )
        from mgdata.embed.musicnn import _load

        self.checkpoint = checkpoint
        self.layer = layer
        self.dim = MUSICNN_FRAME_LAYERS[layer]
        self.sample_rate = SR
        self.hop_length = FFT_HOP
        self.frame_rate = SR / FFT_HOP
        self.patch_frames = PATCH_FRAMES
        self.model = _load(checkpoint)

    def _layer(self, res: dict) -> Any:
        import torch

        if self.layer != "midend":
            return res[self.layer]
        return torch.cat([res[k] for k in ("timbral", "temporal", "cnn1", "cnn2", "cnn3")], dim=2)

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """``[ceil(n / 256), dim]`` float32 frames of mono 16 kHz audio."""
        import torch

        from mgdata.embed.musicnn import one_torch_thread
        from mgdata.musicnn.frontend import log_mel
        from mgdata.musicnn.tagger import BATCH_PATCHES

        y = np.asarray(audio, dtype=np.float32)
        n = _n_frames(len(y), self.hop_length)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        p = self.patch_frames
        logmel = log_mel(y)
        if logmel.shape[0] < p:  # zero is the log-mel of silence
            logmel = np.pad(logmel, ((0, p - logmel.shape[0]), (0, 0)))
        total = logmel.shape[0]
        offsets = list(range(0, total - p + 1, p))
        if offsets[-1] + p < total:
            offsets.append(total - p)
        x = np.stack([logmel[o : o + p] for o in offsets])
        out = np.empty((total, self.dim), dtype=np.float32)
        covered = 0
        with one_torch_thread(), torch.inference_mode():
            for start in range(0, len(offsets), BATCH_PATCHES):
                feats = self._layer(self.model(torch.from_numpy(x[start : start + BATCH_PATCHES]))).numpy()
                for o, f in zip(offsets[start : start + BATCH_PATCHES], feats):
                    out[covered : o + p] = f[covered - o :]  # the end-aligned last patch: only its new frames
                    covered = o + p
        return np.ascontiguousarray(out[:n])

    def describe(self) -> dict[str, Any]:
        """Id, checkpoint provenance and settings."""
        import torch

        from mgdata.embed.musicnn import file_sha256, wheel_version
        from mgdata.musicnn.model import wheel_dir

        return {
            "id": "musicnn",
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": file_sha256(str(wheel_dir() / self.checkpoint) + "/.data-00000-of-00001"),
            "wheel": f"musicnn {wheel_version()}",
            "layer": self.layer,
            "library": f"torch {torch.__version__}, librosa {librosa.__version__}, numpy {np.__version__}",
            "sample_rate": self.sample_rate,
            "hop_length": self.hop_length,
            "frame_rate": self.frame_rate,
            "patch_frames": self.patch_frames,
            "dim": self.dim,
        }


# --------------------------------------------------------------------------- factories of ENCODERS


def chroma_stft_encoder(cfg: TokensConfig) -> StftChromaEncoder:
    """``chroma_stft`` from the ``tokens`` settings."""
    return StftChromaEncoder(
        sample_rate=cfg.sample_rate,
        hop_length=cfg.hop_length,
        n_fft=cfg.chroma_n_fft,
        n_octaves=cfg.n_octaves,
        silence_db=cfg.silence_db,
        gate_length=cfg.n_fft,
    )


def chroma_cqt_encoder(cfg: TokensConfig) -> ChromaEncoder:
    """``chroma_cqt`` from the ``tokens`` settings."""
    return ChromaEncoder(
        sample_rate=cfg.sample_rate,
        hop_length=cfg.hop_length,
        n_octaves=cfg.n_octaves,
        silence_db=cfg.silence_db,
        gate_length=cfg.n_fft,
    )


def logmel_encoder(cfg: TokensConfig) -> LogMelEncoder:
    """``logmel`` from the ``tokens`` settings."""
    return LogMelEncoder(sample_rate=cfg.sample_rate, hop_length=cfg.hop_length, n_fft=cfg.n_fft, n_mels=cfg.n_mels)


def embedder_encoder(cfg: TokensConfig) -> RegistryEncoder:
    """``embedder``: the :mod:`mgdata.embed` model ``cfg.embedder`` with ``cfg.embedder_params``."""
    try:
        from mgdata.embed import get_embedder
    except ImportError as exc:
        raise DependencyError(f"tokens.encoder=embedder needs mgdata.embed ({exc})") from None
    return RegistryEncoder(get_embedder(cfg.embedder, cfg.embedder_params))


def musicnn_encoder(cfg: TokensConfig) -> MusicnnFrameEncoder:
    """``musicnn`` with the ``checkpoint`` / ``layer`` of ``cfg.embedder_params`` (defaults: MSD_musicnn, cnn3)."""
    params = dict(cfg.embedder_params)
    unknown = sorted(set(params) - {"checkpoint", "layer"})
    if unknown:
        raise ParamsError(
            f"tokens.embedder_params.{unknown[0]}", "the musicnn encoder takes only 'checkpoint' and 'layer'"
        )
    return MusicnnFrameEncoder(**params)


def make_encoder(cfg: TokensConfig, name: str | None = None) -> FrameEncoder:
    """The frame encoder ``name`` (default: ``cfg.encoder``), built by its :data:`ENCODERS` factory from ``cfg``.

    Raises:
        ParamsError: (``tokens.encoder``) an unknown name, with the closest known one.
    """
    return ENCODERS.load(name or cfg.encoder)(cfg)


class FrameCache:
    """Content-addressed cache of encoder frames, shared by the configurations of the grid.

    Frames depend only on the audio and the encoder, not on ``segment_s`` or
    ``k``; each ``tokens@...`` stage would otherwise re-run the encoder on every
    stem. A file is keyed by sha256(encoder description + the stem's encoded
    audio bytes), so a hit is by construction the frames a fresh run would
    compute (stored as float32 ``.npy``, bit-exact): outputs stay deterministic
    and the folder can be deleted at any time. Writes are atomic (temp + rename),
    so parallel stages may share it.

    Args:
        root: Cache folder (e.g. ``.cache/mgdata/tokens-frames``).
        encoder_desc: ``encoder.describe()``; a different encoder never hits.
    """

    def __init__(self, root: str | Path, encoder_desc: dict[str, Any]):
        self.root = Path(root)
        self._prefix = json.dumps(encoder_desc, sort_keys=True, default=str).encode()

    def path(self, data: bytes) -> Path:
        """Cache file of the stem whose audio bytes are ``data``."""
        h = hashlib.sha256(self._prefix)
        h.update(b"\0")
        h.update(data)
        digest = h.hexdigest()
        return self.root / digest[:2] / f"{digest}.npy"

    def get(self, data: bytes) -> np.ndarray | None:
        """Cached frames, or ``None`` (missing or unreadable entries are misses)."""
        path = self.path(data)
        if not path.exists():
            return None
        try:
            frames = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None
        return frames if frames.ndim == 2 and frames.dtype == np.float32 else None

    def put(self, data: bytes, frames: np.ndarray) -> None:
        """Store ``frames`` for ``data`` (atomic)."""
        path = self.path(data)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(frames, dtype=np.float32), allow_pickle=False)
        os.replace(tmp, path)


def encode_audio(encoder: FrameEncoder, audio: np.ndarray, sample_rate: int, *, where: str) -> np.ndarray:
    """Resample mono audio to the encoder's rate and return its frames.

    Raises:
        InputError: The audio is empty or not finite (names ``where``).
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise InputError(where, f"expected mono audio, got shape {audio.shape}")
    if audio.size == 0:
        raise InputError(where, "empty audio")
    if not np.all(np.isfinite(audio)):
        raise InputError(where, "audio contains NaN or inf")
    if sample_rate != encoder.sample_rate:
        audio = resample(audio, sample_rate, encoder.sample_rate)
    return encoder.frames(audio)
