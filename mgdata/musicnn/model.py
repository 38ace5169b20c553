"""PyTorch port of the MusiCNN and VGG-like music taggers shipped in the ``musicnn`` wheel.

The architectures follow ``musicnn/models.py`` (Pons & Serra, 2019) layer for layer,
in inference mode: batch norm uses the checkpoint's moving mean/variance with
TensorFlow's default epsilon (0.001), dropout is off. TensorFlow works in NHWC with
H = time and W = mel band; here tensors are NCHW with the same H/W, conv kernels are
transposed from TF1's ``[kh, kw, in, out]`` to ``[out, in, kh, kw]``, and every place
where TF's layout leaks into the numbers (the ``'same'`` padding of even kernels, the
interleaved max/mean flatten of the back end, the VGG flatten) is reproduced.

Layers returned by :meth:`MusiCNN.forward` (names as in the musicnn extractor):
``taggram`` (sigmoid, 50 tags), ``logits``, ``penultimate`` (200), ``max_pool`` and
``mean_pool`` (753 each), ``cnn1``-``cnn3`` (frames x 64), ``timbral`` (frames x 408)
and ``temporal`` (frames x 153). :class:`VGG` returns ``taggram``, ``logits`` and
``pool1``-``pool5`` (NHWC, as the extractor returns them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mgdata.errors import InputError
from mgdata.musicnn.checkpoint import Checkpoint
from mgdata.musicnn.frontend import N_MELS

TF_BN_EPS = 1e-3

# Tag vocabularies, copied from musicnn/configuration.py (index = taggram column).
MTT_LABELS: tuple[str, ...] = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
    "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing",
    "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop",
    "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice",
    "female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
)  # fmt: skip
MSD_LABELS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock",
    "ambient", "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb",
    "indie pop", "sad", "House", "happy",
)  # fmt: skip

# CLI names -> checkpoint folder inside the wheel.
MODELS: dict[str, str] = {
    "msd-musicnn": "MSD_musicnn",
    "mtt-musicnn": "MTT_musicnn",
    "msd-vgg": "MSD_vgg",
    "mtt-vgg": "MTT_vgg",
}


def wheel_dir() -> Path:
    """Folder of the installed ``musicnn`` package (found without importing it: it imports TensorFlow)."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "musicnn", "package not installed (pip install --no-deps musicnn==0.1.0: it ships the weights)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def labels_for(checkpoint_name: str) -> tuple[str, ...]:
    """Tag names of a checkpoint (``MTT_*`` or ``MSD_*``)."""
    return MTT_LABELS if checkpoint_name.startswith("MTT") else MSD_LABELS


class _BN(nn.Module):
    """Inference-mode batch norm over the last axis given, with TF's variable names and epsilon."""

    def __init__(self, n: int):
        super().__init__()
        for name in ("gamma", "beta", "moving_mean", "moving_variance"):
            self.register_buffer(name, torch.zeros(n))

    def scale(self) -> torch.Tensor:
        return self.gamma * torch.rsqrt(self.moving_variance + TF_BN_EPS)

    def forward(self, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
        shape = [1] * x.dim()
        shape[dim] = -1
        scale = self.scale()
        shift = self.beta - self.moving_mean * scale
        return x * scale.view(shape) + shift.view(shape)


def _conv_bn_relu_max(conv: nn.Conv2d, bn: _BN, x: torch.Tensor) -> torch.Tensor:
    """``bn(relu(conv(x))).amax(dim=3)``: a front-end branch pooled over frequency, reduced first.

    ReLU and a per-channel affine map are monotone, so the maximum over frequency of ``bn(relu(y))`` is
    ``bn(relu(max y))`` where the channel's batch-norm scale is >= 0 and ``bn(relu(min y))`` where it is
    negative. The minimum comes as ``-max(-y)``, with ``-y`` from the convolution with negated weights and
    bias (negation is exact, and rounding to nearest is symmetric, so the products and sums are exactly
    negated), so one max reduction serves both signs. Each step rounds monotonically in float too, hence
    the values are bit-identical to the unreduced order, while the ReLU and batch norm run on ``F`` times
    fewer elements (they and the reduction took a quarter of the forward pass).
    """
    sign = torch.where(bn.scale() >= 0, 1.0, -1.0)
    y = F.conv2d(x, conv.weight * sign.view(-1, 1, 1, 1), conv.bias * sign)
    return bn(F.relu(y.amax(dim=3) * sign.view(1, -1, 1)))


def _load_bn(bn: _BN, ckpt: dict[str, np.ndarray], scope: str) -> None:
    for name in ("gamma", "beta", "moving_mean", "moving_variance"):
        getattr(bn, name).copy_(torch.from_numpy(ckpt[f"{scope}/{name}"]))


def _conv_weight(kernel: np.ndarray) -> torch.Tensor:
    # TF1 conv2d kernel [kh, kw, in, out] -> torch [out, in, kh, kw]
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def _same_pad(k: int) -> tuple[int, int]:
    # TF 'same' at stride 1 puts the extra row of an even kernel after the input.
    return (k - 1) // 2, k - 1 - (k - 1) // 2


class MusiCNN(nn.Module):
    """Musically motivated CNN: timbral (7x38, 7x67) and temporal (128/64/32x1) front end,
    dense-residual 1-D mid end, max+mean pooled dense back end.

    Args:
        n_classes: Output tags (50).
        n_mels: Mel bands of the input (96).
        midend_filters: Mid-end conv filters (64 for the released models).
        backend_units: Penultimate dense units (200).
    """

    def __init__(self, n_classes: int = 50, n_mels: int = N_MELS, midend_filters: int = 64, backend_units: int = 200):
        super().__init__()
        timbral_filters, temporal_filters = int(1.6 * 128), int(1.6 * 32)
        self.bn_input = _BN(1)
        self.timbral = nn.ModuleList(nn.Conv2d(1, timbral_filters, (7, int(frac * n_mels))) for frac in (0.4, 0.7))
        self.timbral_bn = nn.ModuleList(_BN(timbral_filters) for _ in range(2))
        self.temporal_kernels = (128, 64, 32)
        self.temporal = nn.ModuleList(nn.Conv2d(1, temporal_filters, (k, 1)) for k in self.temporal_kernels)
        self.temporal_bn = nn.ModuleList(_BN(temporal_filters) for _ in range(3))
        frontend_channels = 2 * timbral_filters + 3 * temporal_filters
        self.midend = nn.ModuleList(
            nn.Conv1d(c, midend_filters, 7) for c in (frontend_channels, midend_filters, midend_filters)
        )
        self.midend_bn = nn.ModuleList(_BN(midend_filters) for _ in range(3))
        pooled = frontend_channels + 3 * midend_filters
        self.bn_pool = _BN(2 * pooled)
        self.dense = nn.Linear(2 * pooled, backend_units)
        self.bn_dense = _BN(backend_units)
        self.out = nn.Linear(backend_units, n_classes)

    def load_tf(self, ckpt: dict[str, np.ndarray]) -> MusiCNN:
        """Copy weights from a checkpoint's tensors (names as ``tf.compat.v1.layers`` created them)."""
        with torch.no_grad():
            convs = [*self.timbral, *self.temporal]
            for i, conv in enumerate(convs):
                scope = "conv2d" if i == 0 else f"conv2d_{i}"
                conv.weight.copy_(_conv_weight(ckpt[f"{scope}/kernel"]))
                conv.bias.copy_(torch.from_numpy(ckpt[f"{scope}/bias"]))
            for i, conv in enumerate(self.midend):
                scope = f"conv2d_{len(convs) + i}"
                kernel = ckpt[f"{scope}/kernel"][:, :, 0, :]  # [7, in, 1, out]: the band axis is the channel axis
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(2, 1, 0))))
                conv.bias.copy_(torch.from_numpy(ckpt[f"{scope}/bias"]))
            bns = [self.bn_input, *self.timbral_bn, *self.temporal_bn, *self.midend_bn, self.bn_pool, self.bn_dense]
            for i, bn in enumerate(bns):
                _load_bn(bn, ckpt, "batch_normalization" if i == 0 else f"batch_normalization_{i}")
            for lin, scope in ((self.dense, "dense"), (self.out, "dense_1")):
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(ckpt[f"{scope}/kernel"].T)))
                lin.bias.copy_(torch.from_numpy(ckpt[f"{scope}/bias"]))
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run patches ``[batch, frames, mels]`` of log-mel; returns every named layer."""
        h = self.bn_input(x.unsqueeze(1), dim=1)  # [B, 1, T, F]
        front = []
        padded = F.pad(h, (0, 0, 3, 3))  # time only: valid conv over time keeps T frames
        for conv, bn in zip(self.timbral, self.timbral_bn):
            front.append(_conv_bn_relu_max(conv, bn, padded))  # [B, C, T]
        for k, conv, bn in zip(self.temporal_kernels, self.temporal, self.temporal_bn):
            front.append(_conv_bn_relu_max(conv, bn, F.pad(h, (0, 0, *_same_pad(k)))))
        frontend = torch.cat(front, dim=1)  # [B, 561, T]
        c1 = self.midend_bn[0](F.relu(self.midend[0](F.pad(frontend, (3, 3)))))
        c2 = self.midend_bn[1](F.relu(self.midend[1](F.pad(c1, (3, 3))))) + c1
        c3 = self.midend_bn[2](F.relu(self.midend[2](F.pad(c2, (3, 3))))) + c2
        mid = torch.cat([frontend, c1, c2, c3], dim=1)  # [B, 753, T]
        max_pool, mean_pool = mid.amax(dim=2), mid.mean(dim=2)
        # TF flattens [B, 753, 2] (max, mean concatenated last): the two interleave per feature.
        flat = torch.stack([max_pool, mean_pool], dim=2).reshape(x.shape[0], -1)
        penultimate = self.bn_dense(F.relu(self.dense(self.bn_pool(flat))))
        logits = self.out(penultimate)
        return {
            "taggram": torch.sigmoid(logits),
            "logits": logits,
            "penultimate": penultimate,
            "max_pool": max_pool,
            "mean_pool": mean_pool,
            "cnn1": c1.transpose(1, 2),
            "cnn2": c2.transpose(1, 2),
            "cnn3": c3.transpose(1, 2),
            "timbral": torch.cat(front[:2], dim=1).transpose(1, 2),
            "temporal": torch.cat(front[2:], dim=1).transpose(1, 2),
        }


class VGG(nn.Module):
    """The VGG-like baseline: five 3x3 conv + batch norm + max-pool blocks, then a dense layer.

    Args:
        n_classes: Output tags (50).
        filters: Filters per conv layer (128 for the released models).
    """

    _POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))

    def __init__(self, n_classes: int = 50, filters: int = 128, flat_features: int = 256):
        super().__init__()
        self.bn_input = _BN(1)
        self.convs = nn.ModuleList(nn.Conv2d(1 if i == 0 else filters, filters, 3, padding=1) for i in range(5))
        self.bns = nn.ModuleList(_BN(filters) for _ in range(5))
        self.out = nn.Linear(flat_features, n_classes)

    def load_tf(self, ckpt: dict[str, np.ndarray]) -> VGG:
        """Copy weights from a checkpoint's tensors (conv layers are named ``1CNN``..``5CNN``)."""
        with torch.no_grad():
            for i, conv in enumerate(self.convs):
                conv.weight.copy_(_conv_weight(ckpt[f"{i + 1}CNN/kernel"]))
                conv.bias.copy_(torch.from_numpy(ckpt[f"{i + 1}CNN/bias"]))
            for i, bn in enumerate([self.bn_input, *self.bns]):
                _load_bn(bn, ckpt, "batch_normalization" if i == 0 else f"batch_normalization_{i}")
            self.out.weight.copy_(torch.from_numpy(np.ascontiguousarray(ckpt["dense/kernel"].T)))
            self.out.bias.copy_(torch.from_numpy(ckpt["dense/bias"]))
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run patches ``[batch, 187, 96]`` of log-mel; returns taggram, logits and pool1..pool5."""
        h = self.bn_input(x.unsqueeze(1), dim=1)
        out: dict[str, torch.Tensor] = {}
        for i, (conv, bn, (kernel, stride)) in enumerate(zip(self.convs, self.bns, self._POOLS)):
            h = F.max_pool2d(bn(F.relu(conv(h))), kernel, stride)
            out[f"pool{i + 1}"] = h.permute(0, 2, 3, 1)  # NHWC, as TF returns it
        logits = self.out(out["pool5"].reshape(x.shape[0], -1))  # TF flattens NHWC
        return {"taggram": torch.sigmoid(logits), "logits": logits, **out}


def load_model(name: str) -> tuple[nn.Module, tuple[str, ...]]:
    """Build a model and load its weights from the installed ``musicnn`` wheel.

    Args:
        name: ``msd-musicnn``, ``mtt-musicnn``, ``msd-vgg``, ``mtt-vgg`` or the
            checkpoint folder name (``MSD_musicnn``, ...).

    Returns:
        ``(model in eval mode, tag names)``.
    """
    folder = MODELS.get(name, name)
    if folder not in MODELS.values():
        raise InputError(name, f"unknown musicnn model (choose from {', '.join(MODELS)})")
    ckpt = Checkpoint(str(wheel_dir() / folder) + "/")
    tensors = ckpt.tensors([n for n in ckpt.names() if "Adam" not in n and not n.endswith("_power")])
    labels = labels_for(folder)
    model = VGG(len(labels)) if folder.endswith("vgg") else MusiCNN(len(labels))
    return model.load_tf(tensors).eval(), labels
