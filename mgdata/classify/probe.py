"""Torch probes on fixed embeddings: SLP/MLP, single-label (softmax + CE) or multi-label (sigmoid + BCE).

Training is deterministic on CPU: :func:`deterministic` seeds torch, switches on
``torch.use_deterministic_algorithms`` and uses one intra-op thread (a different
thread count changes the order of float sums), so the same data, settings and seed
give the same weights and predictions bit for bit. Features are standardised with the
training split's mean and std only; early stopping watches the validation loss and
keeps the best epoch's weights.

A trained probe saves to a small folder that :meth:`ProbeModel.load` reads without
the pipeline: ``model.safetensors`` (weights, scaler mean/std, thresholds) and
``probe.json`` (labels, task type, architecture, embedder id and settings, windowing,
training params and history).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.classify.config import ProbeConfig
from mgdata.config import to_dict
from mgdata.errors import InputError

FORMAT_VERSION = 1
_STD_FLOOR = 1e-8  # a constant feature is centred, not divided by ~0


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed torch, force deterministic kernels and one thread; restore the previous settings after."""
    import torch

    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det)


def build_net(dim: int, n_classes: int, hidden: Sequence[int]):
    """``Linear`` (SLP) or ``Linear -> ReLU`` per hidden width then ``Linear`` (MLP)."""
    from torch import nn

    layers: list[nn.Module] = []
    width = dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def _check_features(x: np.ndarray, where: str, dim: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise InputError(where, f"expected an (n, dim) embedding matrix, got shape {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise InputError(where, f"embedding dim {x.shape[1]} does not match the model's {dim}")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise InputError(
            where,
            f"{int(bad.sum())} embedding rows contain NaN or infinite values (first row {int(np.flatnonzero(bad)[0])})",
        )
    return x


@dataclass
class ProbeModel:
    """A trained probe and everything ``predict`` needs.

    Attributes:
        labels: Class names, in output column order.
        multilabel: Sigmoid outputs (``True``) or softmax (``False``).
        hidden: Hidden widths (``[]`` = SLP).
        mean: Scaler mean ``[dim]`` (training split).
        std: Scaler std ``[dim]`` (training split, floored).
        state: Network weights (name -> float32 array).
        thresholds: Per-class decision thresholds (multi-label; chosen on validation) or ``None``.
        meta: Embedder description, windowing, training params and history (JSON-safe).
    """

    labels: list[str]
    multilabel: bool
    hidden: list[int]
    mean: np.ndarray
    std: np.ndarray
    state: dict[str, np.ndarray]
    thresholds: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """Input embedding dimension."""
        return int(self.mean.shape[0])

    def _net(self):
        import torch

        net = build_net(self.dim, len(self.labels), self.hidden)
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.state.items()})
        net.eval()
        return net

    def predict_proba(self, x: np.ndarray, *, where: str = "embeddings") -> np.ndarray:
        """Class scores ``[n, c]`` (softmax or sigmoid probabilities, float64)."""
        import torch

        x = _check_features(x, where, self.dim)
        z = (x - self.mean) / self.std
        with deterministic(0), torch.no_grad():
            logits = self._net()(torch.from_numpy(z.astype(np.float32)))
            p = torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)
        return p.numpy().astype(np.float64)

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """0/1 decisions: validation thresholds (multi-label) or argmax (single-label)."""
        from mgdata.classify.metrics import decisions_from_scores

        return decisions_from_scores(scores, self.thresholds if self.multilabel else None)

    def save(self, folder: str | Path) -> Path:
        """Write ``model.safetensors`` + ``probe.json`` into ``folder`` (byte-identical for equal models)."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"net.{k}": np.ascontiguousarray(v, dtype=np.float32) for k, v in self.state.items()}
        tensors["scaler.mean"] = np.ascontiguousarray(self.mean, dtype=np.float32)
        tensors["scaler.std"] = np.ascontiguousarray(self.std, dtype=np.float32)
        if self.thresholds is not None:
            tensors["thresholds"] = np.ascontiguousarray(self.thresholds, dtype=np.float64)
        save_file(tensors, str(folder / "model.safetensors"))
        info = {
            "format_version": FORMAT_VERSION,
            "labels": self.labels,
            "multilabel": self.multilabel,
            "hidden": self.hidden,
            "dim": self.dim,
            **self.meta,
        }
        (folder / "probe.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ProbeModel:
        """Read a folder written by :meth:`save`."""
        from safetensors.numpy import load_file

        folder = Path(folder)
        for name in ("probe.json", "model.safetensors"):
            if not (folder / name).exists():
                raise InputError(str(folder), f"not a probe folder ({name} missing)")
        info = json.loads((folder / "probe.json").read_text(encoding="utf-8"))
        tensors = load_file(str(folder / "model.safetensors"))
        meta = {k: v for k, v in info.items() if k not in ("format_version", "labels", "multilabel", "hidden", "dim")}
        return cls(
            labels=list(info["labels"]),
            multilabel=bool(info["multilabel"]),
            hidden=list(info["hidden"]),
            mean=tensors["scaler.mean"],
            std=tensors["scaler.std"],
            state={k[4:]: v for k, v in tensors.items() if k.startswith("net.")},
            thresholds=tensors.get("thresholds"),
            meta=meta,
        )


def class_weights(y: np.ndarray, multilabel: bool) -> np.ndarray:
    """Balanced weights: n / (c * n_class) per class (single-label) or negatives / positives (multi-label)."""
    y = np.asarray(y, dtype=np.float64)
    pos = y.sum(axis=0)
    if multilabel:
        return (y.shape[0] - pos) / np.maximum(pos, 1.0)
    return y.shape[0] / (y.shape[1] * np.maximum(pos, 1.0))


def _check_inputs(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, labels: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked float32 ``x_train, y_train, x_val, y_val``.

    Raises:
        InputError: NaN embeddings, shape mismatches, a class without training examples, an empty split.
    """
    x_train = _check_features(x_train, "train embeddings")
    x_val = _check_features(x_val, "validation embeddings", x_train.shape[1])
    y_train = np.asarray(y_train, dtype=np.float32)
    y_val = np.asarray(y_val, dtype=np.float32)
    if x_train.shape[0] == 0 or x_val.shape[0] == 0:
        raise InputError("probe", f"empty split (train {x_train.shape[0]} rows, validation {x_val.shape[0]} rows)")
    if y_train.shape != (x_train.shape[0], len(labels)) or y_val.shape != (x_val.shape[0], len(labels)):
        raise InputError("probe", f"targets {y_train.shape}/{y_val.shape} do not match {len(labels)} classes")
    empty = [c for c, n in zip(labels, y_train.sum(axis=0)) if n == 0]
    if empty:
        raise InputError("probe", f"class {empty[0]!r} has no training examples")
    return x_train, y_train, x_val, y_val


def _loss_and_targets(y_train: np.ndarray, y_val: np.ndarray, multilabel: bool, cfg: ProbeConfig):
    """The (optionally class-weighted) loss and the train/validation targets in the form it takes."""
    import torch
    from torch import nn

    w = (
        torch.from_numpy(class_weights(y_train, multilabel).astype(np.float32))
        if cfg.class_weights == "balanced"
        else None
    )
    if multilabel:
        return nn.BCEWithLogitsLoss(pos_weight=w), torch.from_numpy(y_train), torch.from_numpy(y_val)
    yt = torch.from_numpy(y_train.argmax(axis=1).astype(np.int64))
    yv = torch.from_numpy(y_val.argmax(axis=1).astype(np.int64))
    return nn.CrossEntropyLoss(weight=w), yt, yv


def _fit(net, loss_fn, zt, yt, zv, yv, cfg: ProbeConfig, seed: int) -> tuple[list[float], float, int, dict]:
    """Adam on seeded mini-batches until ``cfg.patience`` epochs without a lower validation loss.

    Runs inside :func:`deterministic` (the caller's), right after the net is built: the optimiser and the
    batch-order generator are created here in the order they always were, so the weights do not change.

    Returns:
        Validation loss per epoch, the best loss, its epoch and the weights of that epoch.
    """
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    history: list[float] = []
    best, best_epoch, best_state, waited = float("inf"), -1, None, 0
    for epoch in range(cfg.max_epochs):
        net.train()
        order = torch.randperm(zt.shape[0], generator=gen)
        for start in range(0, zt.shape[0], cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            opt.zero_grad()
            loss_fn(net(zt[idx]), yt[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val = float(loss_fn(net(zv), yv))
        history.append(val)
        if val < best:
            best, best_epoch, waited = val, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= cfg.patience:
                break
    return history, best, best_epoch, best_state


def train_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    labels: Sequence[str],
    multilabel: bool,
    cfg: ProbeConfig,
    seed: int,
    meta: dict[str, Any] | None = None,
) -> ProbeModel:
    """Train a probe with Adam on mini-batches, early stopping on the validation loss.

    Args:
        x_train: ``[n, dim]`` training embeddings.
        y_train: ``[n, c]`` 0/1 targets (one-hot for single-label).
        x_val: ``[m, dim]`` validation embeddings (early stopping).
        y_val: ``[m, c]`` validation targets.
        labels: Class names (``c``).
        multilabel: Sigmoid + BCE (``True``) or softmax + CE.
        cfg: Probe settings.
        seed: Seeds the initialisation and batch order.
        meta: Extra JSON-safe info saved with the model (embedder, windowing, ...).

    Returns:
        The probe with the weights of the epoch of lowest validation loss.

    Raises:
        InputError: NaN embeddings, shape mismatches, a class without training examples
            (names the class), an empty split.
    """
    import torch

    labels = [str(c) for c in labels]
    x_train, y_train, x_val, y_val = _check_inputs(x_train, y_train, x_val, y_val, labels)
    mean = x_train.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = np.maximum(x_train.std(axis=0, dtype=np.float64), _STD_FLOOR).astype(np.float32)
    zt = torch.from_numpy((x_train - mean) / std)
    zv = torch.from_numpy((x_val - mean) / std)
    loss_fn, yt, yv = _loss_and_targets(y_train, y_val, multilabel, cfg)
    with deterministic(seed):
        net = build_net(x_train.shape[1], len(labels), cfg.hidden)
        history, best, best_epoch, best_state = _fit(net, loss_fn, zt, yt, zv, yv, cfg, seed)
    info = dict(meta or {})
    info["training"] = {
        "probe": to_dict(cfg),
        "seed": seed,
        "best_epoch": best_epoch,
        "epochs": len(history),
        "best_val_loss": best,
        "n_train": int(x_train.shape[0]),
        "n_val": int(x_val.shape[0]),
    }
    return ProbeModel(
        labels=labels,
        multilabel=multilabel,
        hidden=list(cfg.hidden),
        mean=mean,
        std=std,
        state={k: v.numpy().copy() for k, v in best_state.items()},
        meta=info,
    )


__all__ = ["FORMAT_VERSION", "ProbeModel", "build_net", "class_weights", "deterministic", "train_probe"]
