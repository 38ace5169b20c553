"""``musicnn``: MusiCNN (Pons & Serra 2019) as an embedder, one vector per native 3 s patch.

The network is the verified PyTorch port of :mod:`mgdata.musicnn` with the weights of the
installed ``musicnn`` wheel (``MSD_musicnn`` by default: its 50 Million Song Dataset tags
include moods: happy, sad, chill, beautiful, mellow, party...).

**Patching.** MusiCNN was trained on 3 s log-mel patches (187 frames at 16 kHz, hop 256)
and its back end pools over the whole patch, so it is run on its native patches, not on
the pipeline's 2 s analysis windows (a 2 s window zero-padded to 3 s would put a third
of silence into every max/mean pool). The embedder declares ``native_window_s = 3``:
:func:`mgdata.embed.base.embed_clip` hands it each clip whole (``embed.window_s`` and
``embed.hop_s`` do not apply), zero-padded to 3 s when shorter, as the wheel's patching
pads (``mgdata.musicnn.frontend.patches``). The log-mel of the clip is computed once, as
the wheel computes it for a file (so frames at patch edges see their real neighbours),
then cut into 187-frame patches every ``patch_hop_s``; the patch grid is centred in the
clip (the remainder shorter than a hop is split between both ends). With the default
``patch_hop_s: 3`` (the wheel's non-overlapping hop), a 4 s clip (``embed.clip_s``) gives
one patch, its central 3 s, and a 30 s track gives 10 patches; ``patch_hop_s: 1`` gives
two patches per 4 s clip (0-3 s and 1-4 s: every sample seen, at twice the cost). One
patch per 4 s clip keeps the default pipeline's ~12,000 s of audio at >= 60x real time per
core (``bench/bench_musicnn.py``); each frame is one patch's ``layer`` vector.

**Determinism.** Eval mode, float32, ``torch.inference_mode``, one torch thread during
every forward pass (restored afterwards), the mel product on one BLAS thread; the patches
of one clip form one batch (in groups of ``mgdata.musicnn.tagger.BATCH_PATCHES``), so a
clip's bytes depend on the clip only, not on the worker count or on other clips.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.config import to_dict
from mgdata.embed.config import MUSICNN_LAYERS, EmbedConfig, MusicnnConfig

#: Bumped when the computed numbers may change (part of ``describe()``, hence of fingerprints).
ALGORITHM_VERSION = 1
#: The native patch length handed to :func:`mgdata.embed.base.embed_clip` (seconds).
PATCH_S = 3.0


@functools.lru_cache(maxsize=8)
def file_sha256(path: str) -> str:
    """sha256 of a file, hashed once per process (the checkpoint data shards are ~3 MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def wheel_version() -> str:
    """Version of the installed ``musicnn`` wheel (``unknown`` when its metadata is missing)."""
    try:
        return importlib.metadata.version("musicnn")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=4)
def _load(checkpoint: str):
    """The ported model of ``checkpoint`` (eval mode), loaded once per process."""
    from mgdata.musicnn.model import load_model

    model, _labels = load_model(checkpoint)
    return model


@contextlib.contextmanager
def one_torch_thread():
    """Run the enclosed torch ops on one intra-op thread, then restore the process's setting."""
    import torch

    prev = torch.get_num_threads()
    if prev != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if prev != 1:
            torch.set_num_threads(prev)


def patch_offsets(n_frames: int, hop: int, patch: int) -> list[int]:
    """Start frames of the ``patch``-frame patches every ``hop`` frames, centred in ``n_frames``.

    ``n_frames < patch`` gives ``[0]`` (the caller pads the spectrogram to one patch).
    """
    if n_frames <= patch:
        return [0]
    n = (n_frames - patch) // hop + 1
    first = (n_frames - patch - (n - 1) * hop) // 2
    return [first + i * hop for i in range(n)]


class MusicnnEmbedder:
    """MusiCNN features, one ``layer`` vector per 3 s patch of a clip.

    Args:
        cfg: The ``embed.musicnn`` settings.

    Raises:
        InputError: The ``musicnn`` wheel (which ships the weights) is not installed.
    """

    native_window_s = PATCH_S

    def __init__(self, cfg: MusicnnConfig | None = None):
        from mgdata.musicnn.frontend import FFT_HOP, PATCH_FRAMES, SR
        from mgdata.musicnn.model import wheel_dir

        self.cfg = cfg or MusicnnConfig()
        self.sample_rate = SR
        self.dim = MUSICNN_LAYERS[self.cfg.layer]
        self.frame_rate = None  # one vector per patch
        self.patch_frames = PATCH_FRAMES
        self.hop_frames = min(PATCH_FRAMES, max(1, int(round(self.cfg.patch_hop_s * SR / FFT_HOP))))
        self.model = _load(self.cfg.checkpoint)
        self._data_file = Path(str(wheel_dir() / self.cfg.checkpoint) + "/.data-00000-of-00001")

    @classmethod
    def from_config(cls, cfg: EmbedConfig) -> MusicnnEmbedder:
        """Build from the ``embed`` section."""
        return cls(cfg.musicnn)

    def _offsets(self, n_samples: int) -> list[int]:
        from mgdata.musicnn.frontend import FFT_HOP

        return patch_offsets(1 + n_samples // FFT_HOP, self.hop_frames, self.patch_frames)

    def frame_times(self, n_samples: int) -> np.ndarray:
        """Centre (seconds from the clip start) of each patch of an ``n_samples`` clip."""
        from mgdata.musicnn.frontend import FFT_HOP

        centre = (np.asarray(self._offsets(n_samples), dtype=np.float64) + (self.patch_frames - 1) / 2) * FFT_HOP
        return centre / self.sample_rate

    def patches(self, audio: np.ndarray) -> np.ndarray:
        """The clip's log-mel patches ``[n_patches, 187, 96]`` float32 (log-mel zero-padded if short)."""
        from mgdata.musicnn.frontend import log_mel

        logmel = log_mel(np.asarray(audio, dtype=np.float32))
        if logmel.shape[0] < self.patch_frames:  # zero is the log-mel of silence
            logmel = np.pad(logmel, ((0, self.patch_frames - logmel.shape[0]), (0, 0)))
        offsets = patch_offsets(logmel.shape[0], self.hop_frames, self.patch_frames)
        return np.stack([logmel[o : o + self.patch_frames] for o in offsets])

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """``[n_patches, dim]`` float32: the ``layer`` vector of each patch of mono 16 kHz audio."""
        import torch

        from mgdata.musicnn.tagger import BATCH_PATCHES

        x = self.patches(audio)
        out = []
        with one_torch_thread(), torch.inference_mode():
            for start in range(0, x.shape[0], BATCH_PATCHES):
                res = self.model(torch.from_numpy(x[start : start + BATCH_PATCHES]))
                out.append(res[self.cfg.layer].numpy())
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """Id, checkpoint provenance (name, wheel version, sha256 of the weights), settings, patching, versions."""
        import librosa
        import torch

        return {
            "id": "musicnn",
            "checkpoint": self.cfg.checkpoint,
            "checkpoint_sha256": file_sha256(str(self._data_file)),
            "wheel": f"musicnn {wheel_version()}",
            "layer": self.cfg.layer,
            "settings": to_dict(self.cfg),
            "algorithm": ALGORITHM_VERSION,
            "patch": {"frames": self.patch_frames, "hop_frames": self.hop_frames, "seconds": PATCH_S},
            "versions": {"torch": torch.__version__, "librosa": librosa.__version__, "numpy": np.__version__},
            "dim": self.dim,
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
        }


__all__ = ["MusicnnEmbedder", "file_sha256", "one_torch_thread", "patch_offsets", "wheel_version"]
