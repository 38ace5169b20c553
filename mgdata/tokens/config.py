"""Section ``tokens`` of params.yaml: encoder, condenser and k-means settings, and the grid.

``segment_s`` and ``k`` are the lists the DVC ``matrix`` of stage ``tokens``
expands (one artifact per pair); every other field applies to each configuration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mgdata.config import check
from mgdata.registry import Registry, closest

#: Frame encoders: name -> ``"module:factory"``, the factory taking the :class:`TokensConfig` (imported on
#: first use, so validating params never imports librosa or torch). The name is the first part of a token
#: artifact's name (``chroma_stft-s0.5-k16``).
ENCODERS = Registry(
    "encoder",
    "tokens.encoder",
    {
        "chroma_stft": "mgdata.tokens.frames:chroma_stft_encoder",
        "chroma_cqt": "mgdata.tokens.frames:chroma_cqt_encoder",
        "logmel": "mgdata.tokens.frames:logmel_encoder",
        "embedder": "mgdata.tokens.frames:embedder_encoder",
        "musicnn": "mgdata.tokens.frames:musicnn_encoder",
    },
)


@dataclass(frozen=True)
class TokensConfig:
    """Settings of the token builder (see the ``tokens`` section of ``params.yaml`` for the why of each).

    Attributes:
        segment_s: Grid of segment lengths in seconds (paper: 0.25, 0.35, 0.5).
        k: Grid of alphabet sizes (paper: 16, 64, 256); int16 tokens, so <= 32768.
        encoder: Frame encoder: ``chroma_stft`` (STFT pitch-class
            filterbank, default: >= 50x real time per core), ``chroma_cqt`` (CQT
            chroma, 3x slower), ``logmel``, ``musicnn`` (frame-level MusiCNN
            features, see :class:`mgdata.tokens.frames.MusicnnFrameEncoder`), or
            ``embedder`` (a model from the :mod:`mgdata.embed` registry, for real runs).
        embedder: Registry name of the embedder when ``encoder == "embedder"``.
        embedder_params: Settings passed to that embedder (e.g. ``model``, ``layer``);
            with ``encoder: musicnn``, its ``checkpoint`` and ``layer``.
        sample_rate: Audio is resampled to this rate before the DSP encoders.
        hop_s: Frame hop of the DSP encoders in seconds; ``hop_s * sample_rate``
            must be an integer number of samples.
        n_fft: FFT size of ``logmel`` and frame length of the silence gate.
        chroma_n_fft: FFT size of ``chroma_stft`` (4096 at 16 kHz: 3.9 Hz bins resolve the bass).
        n_mels: Mel bands of ``logmel``.
        n_octaves: Octaves of the CQT behind ``chroma`` (from C1).
        silence_db: Frames quieter than this (dBFS RMS) get an all-zero chroma
            vector, so rests map to one "silence" symbol instead of noise chroma.
        keep_partial: Keep a trailing partial segment (default: dropped).
        batch_size: MiniBatchKMeans batch size.
        max_iter: MiniBatchKMeans epochs (fixed, no early stopping).
        n_init: k-means++ initialisations (best kept).
        seed: Seed of the k-means.
        fit_split: The split whose segments fit the codebook (the training split).
        strict: Raise on a bad input (undecodable or non-finite audio) instead of
            skipping and counting it.
        frames_cache: Folder of the content-addressed encoder-frame cache shared by
            the configurations of the grid (empty = no cache). Not part of the
            fingerprint: a hit is bit-identical to a fresh computation.
    """

    segment_s: tuple[float, ...] = (0.5,)
    k: tuple[int, ...] = (16, 64)
    encoder: str = "chroma_stft"
    embedder: str = "hf"
    embedder_params: dict[str, Any] = field(default_factory=dict)
    sample_rate: int = 16000
    hop_s: float = 0.01
    n_fft: int = 2048
    chroma_n_fft: int = 4096
    n_mels: int = 64
    n_octaves: int = 7
    silence_db: float = -60.0
    keep_partial: bool = False
    batch_size: int = 1024
    max_iter: int = 50
    n_init: int = 3
    seed: int = 0
    fit_split: str = "train"
    strict: bool = False
    frames_cache: str = ".cache/mgdata/tokens-frames"

    def __post_init__(self):
        check(len(self.segment_s) >= 1, "segment_s", "expected a non-empty list of seconds")
        for i, s in enumerate(self.segment_s):
            check(math.isfinite(s) and s > 0, f"segment_s[{i}]", f"expected seconds > 0, got {s}")
            check(s >= self.hop_s, f"segment_s[{i}]", f"expected at least one frame (>= hop_s={self.hop_s}), got {s}")
        check(len(set(self.segment_s)) == len(self.segment_s), "segment_s", "expected distinct values")
        check(len(self.k) >= 1, "k", "expected a non-empty list of alphabet sizes")
        for i, k in enumerate(self.k):
            check(2 <= k <= 32768, f"k[{i}]", f"expected 2 <= k <= 32768 (int16 tokens), got {k}")
        check(len(set(self.k)) == len(self.k), "k", "expected distinct values")
        check(
            self.encoder in ENCODERS,
            "encoder",
            f"unknown encoder {self.encoder!r}{closest(self.encoder, ENCODERS.names())}; "
            f"known: {', '.join(ENCODERS.names())}",
        )
        check(self.chroma_n_fft >= 16, "chroma_n_fft", f"expected >= 16, got {self.chroma_n_fft}")
        check(self.sample_rate >= 8000, "sample_rate", f"expected >= 8000 Hz, got {self.sample_rate}")
        check(math.isfinite(self.hop_s) and self.hop_s > 0, "hop_s", f"expected seconds > 0, got {self.hop_s}")
        hop = self.hop_s * self.sample_rate
        check(
            abs(hop - round(hop)) < 1e-6 and round(hop) >= 1,
            "hop_s",
            f"expected hop_s * sample_rate to be a whole number of samples, got {hop:g}",
        )
        check(self.n_fft >= 16, "n_fft", f"expected >= 16, got {self.n_fft}")
        check(self.n_mels >= 1, "n_mels", f"expected >= 1, got {self.n_mels}")
        check(1 <= self.n_octaves <= 9, "n_octaves", f"expected 1..9, got {self.n_octaves}")
        # C1 * 2**n_octaves must stay below Nyquist for the CQT.
        check(
            32.70319566 * 2**self.n_octaves < self.sample_rate / 2,
            "n_octaves",
            f"expected the CQT top (C1 * 2**n_octaves) below Nyquist ({self.sample_rate / 2:g} Hz)",
        )
        check(self.silence_db <= 0, "silence_db", f"expected dBFS <= 0, got {self.silence_db}")
        check(self.batch_size >= 1, "batch_size", f"expected >= 1, got {self.batch_size}")
        check(self.max_iter >= 1, "max_iter", f"expected >= 1, got {self.max_iter}")
        check(self.n_init >= 1, "n_init", f"expected >= 1, got {self.n_init}")
        check(bool(self.fit_split), "fit_split", "expected a split name")
        check(
            self.encoder != "embedder" or bool(self.embedder),
            "embedder",
            "expected an embedder name when encoder is 'embedder'",
        )

    @property
    def hop_length(self) -> int:
        """Frame hop in samples."""
        return int(round(self.hop_s * self.sample_rate))

    def settings(self) -> dict[str, Any]:
        """What one configuration's content depends on: everything but the grid and the cache folder."""
        from mgdata.config import to_dict

        d = to_dict(self)
        for key in ("segment_s", "k", "frames_cache"):
            d.pop(key)
        return d


def config_name(encoder: str, segment_s: float | str, k: int) -> str:
    """Directory / metrics name of one configuration: ``{encoder}-s{segment_s}-k{k}`` (``chroma_stft-s0.5-k16``).

    Every knob of the grid is in the name, so two encoders never overwrite each other's artifact.
    ``segment_s`` is written as DVC renders ``${item.segment_s}`` (Python's ``str``
    of the float, e.g. ``0.5``, ``0.25``); strings are used verbatim.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; expected one of {list(ENCODERS)}")
    seg = segment_s if isinstance(segment_s, str) else repr(float(segment_s))
    return f"{encoder}-s{seg}-k{int(k)}"
