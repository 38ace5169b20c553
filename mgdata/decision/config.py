"""Section ``decision`` of params.yaml: model sizes, training, generation and evaluation settings."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from mgdata.config import check, to_dict


@dataclasses.dataclass(frozen=True)
class DecisionConfig:
    """Hyperparameters of the decision Transformer (see params.yaml for why each value).

    The paper uses 6 layers, d_model 768 (its code: 512), 12 (code: 8) heads, feed-forward
    2048, dropout 0.1; the defaults here are small enough to train on 2 CPU cores in minutes.
    """

    # model
    arch: Literal["paper", "aligned"] = "paper"
    window: int = 2
    history: int = 4
    summary: bool = False
    roles: bool = False
    role_min_pairs: int = 20
    # derived from the training split by the builder (:func:`mgdata.decision.data.with_roles`), not a param
    role_names: tuple[str, ...] = ()
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    ff_dim: int = 128
    dropout: float = 0.1
    max_len: int = 128
    # training
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.0
    batch_size: int = 128
    max_epochs: int = 10
    patience: int = 3
    min_delta: float = 1e-4
    stop_on: Literal["loss", "accuracy"] = "loss"
    ss_alpha: float = 2.0
    ss_max: float = 0.95
    seed: int = 0
    trials: int = 3
    threads: int = 1
    train_split: str = "train"
    val_split: str = "validation"
    test_split: str = "test"
    # generation
    strategy: Literal["greedy", "sample"] = "sample"
    top_k: int = 0
    top_p: float = 0.8
    temperature: float = 1.0
    # evaluation
    context_window: int = 2
    context_c: float = 1.0
    n_permutations: int = 10000
    n_renders: int = 3
    crossfade_s: float = 0.02
    render_corpus_split: str = "train"
    render_corpus_windows: int = 96

    def __post_init__(self):
        object.__setattr__(self, "role_names", tuple(str(r) for r in self.role_names))
        check(self.role_min_pairs >= 1, "role_min_pairs", "expected an integer >= 1")
        check(
            len(set(self.role_names)) == len(self.role_names) and all(self.role_names),
            "role_names",
            "expected distinct, non-empty stem names (the builder derives them; leave unset in params)",
        )
        check(self.arch in ("paper", "aligned"), "arch", "expected paper (encoder-decoder) or aligned")
        check(self.window >= 0, "window", "expected an integer >= 0 (A tokens t-window..t+window)")
        check(self.history >= 0, "history", "expected an integer >= 0 (B's own past tokens)")
        check(self.context_window >= 0, "context_window", "expected an integer >= 0")
        check(self.context_c > 0, "context_c", "expected a positive inverse regularisation strength")
        check(
            self.d_model >= 8 and self.d_model % self.n_heads == 0,
            "d_model",
            "expected an integer >= 8 divisible by n_heads",
        )
        check(self.n_heads >= 1, "n_heads", "expected an integer >= 1")
        check(self.n_layers >= 1, "n_layers", "expected an integer >= 1")
        check(self.ff_dim >= 1, "ff_dim", "expected an integer >= 1")
        check(0.0 <= self.dropout < 1.0, "dropout", "expected a number in [0, 1)")
        check(self.max_len >= 2, "max_len", "expected an integer >= 2")
        check(self.lr > 0, "lr", "expected a positive learning rate")
        check(
            len(self.betas) == 2 and all(0.0 <= b < 1.0 for b in self.betas), "betas", "expected two numbers in [0, 1)"
        )
        check(self.weight_decay >= 0, "weight_decay", "expected a number >= 0")
        check(self.batch_size >= 1, "batch_size", "expected an integer >= 1")
        check(self.max_epochs >= 1, "max_epochs", "expected an integer >= 1")
        check(self.patience >= 1, "patience", "expected an integer >= 1")
        check(self.min_delta >= 0, "min_delta", "expected a number >= 0")
        check(self.stop_on in ("loss", "accuracy"), "stop_on", "expected loss or accuracy (validation criterion)")
        check(self.ss_alpha > 0, "ss_alpha", "expected a positive number")
        check(0.0 <= self.ss_max <= 1.0, "ss_max", "expected a number in [0, 1]")
        check(self.trials >= 1, "trials", "expected an integer >= 1 (seeds decision.seed .. seed + trials - 1)")
        check(self.threads >= 0, "threads", "expected an integer >= 0 (0 = torch default)")
        check(self.top_k >= 0, "top_k", "expected an integer >= 0 (0 = off)")
        check(0.0 < self.top_p <= 1.0, "top_p", "expected a number in (0, 1]")
        check(self.temperature > 0, "temperature", "expected a positive number")
        check(self.n_permutations >= 100, "n_permutations", "expected an integer >= 100")
        check(self.n_renders >= 0, "n_renders", "expected an integer >= 0")
        check(0.0 <= self.crossfade_s <= 0.5, "crossfade_s", "expected seconds in [0, 0.5]")
        check(self.render_corpus_windows >= 1, "render_corpus_windows", "expected an integer >= 1")

    def trial_seeds(self) -> list[int]:
        """Seeds of the trials: ``seed, seed + 1, ...``; the first is ``seed`` itself (renders, saved model)."""
        return [self.seed + i for i in range(self.trials)]

    def model_settings(self) -> dict[str, Any]:
        """The keys that shape the network (a checkpoint must match them)."""
        keys = ("d_model", "n_heads", "n_layers", "ff_dim", "dropout", "max_len")
        if self.arch == "aligned":  # the paper's checkpoints keep their settings (and hashes) unchanged
            keys = ("arch", "window", "history", "summary", *keys)
        if self.roles:  # so do role-free ones; a model with roles carries its role vocabulary
            keys = (*keys, "roles", "role_names")
        return {k: getattr(self, k) for k in keys}

    def train_settings(self) -> dict[str, Any]:
        """The keys that change the trained weights (model + optimisation + data split names)."""
        keys = (
            "lr",
            "betas",
            "weight_decay",
            "batch_size",
            "max_epochs",
            "patience",
            "min_delta",
            "stop_on",
            "ss_alpha",
            "ss_max",
            "seed",
            "train_split",
            "val_split",
        )
        return {**self.model_settings(), **to_dict({k: getattr(self, k) for k in keys})}


__all__ = ["DecisionConfig"]
