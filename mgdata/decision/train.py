"""Training of the decision Transformer: Adam, CE ignoring pad, scheduled sampling, early stopping.

* Pairs: every ordered pair of the training split (the token artifact holds both directions).
* Scheduled sampling (the paper's exponential schedule): at epoch ``e`` (0-based) each decoder
  input token is replaced by the model's own previous prediction with probability
  ``p(e) = min(ss_max, 1 - exp(-e * k / E))`` with ``k = -ln(1e-9) / alpha`` and ``E = max_epochs``;
  so ``p`` starts at 0 (teacher forcing) and would reach 1 - 1e-9 after ``alpha * E`` epochs.
  The predictions come from a teacher-forced pass without gradient (two-pass scheduled
  sampling for Transformers, Mihaylova & Liu 2019).
* Early stopping on the teacher-forced validation loss (``stop_on: loss``) or argmax accuracy
  (``stop_on: accuracy``, the TPP of greedy decoding when the model does not read B's own tokens);
  the returned weights are the best epoch's.
* Checkpoint after every epoch (atomic: temp file + rename) with the optimiser and every RNG
  state, so a killed run restarted on the same inputs continues from the last epoch and ends with
  the same weights as an uninterrupted run. A checkpoint of other params/data is not resumed.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mgdata.config import to_dict
from mgdata.decision.config import DecisionConfig
from mgdata.decision.data import TokenPair, with_roles
from mgdata.decision.model import DecisionModel, build_model, make_model
from mgdata.errors import InputError
from mgdata.store import fingerprint

log = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.pt"
MODEL_FILE = "model.pt"


def ss_probability(epoch: int, cfg: DecisionConfig) -> float:
    """Scheduled-sampling probability of epoch ``epoch`` (0-based), see the module docstring."""
    k = -math.log(1e-9) / cfg.ss_alpha
    return float(min(cfg.ss_max, 1.0 - math.exp(-epoch * k / cfg.max_epochs)))


def data_fingerprint(pairs: Sequence[TokenPair]) -> str:
    """sha256 over the pairs' keys and tokens (changes when the training data change)."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(f"{p.a_key}|{p.b_key}|{p.split}|".encode())
        h.update(np.asarray(p.a, dtype=np.int64).tobytes() + b"|" + np.asarray(p.b, dtype=np.int64).tobytes())
    return h.hexdigest()


def params_hash(cfg: DecisionConfig, k: int, data_fp: str) -> str:
    """Fingerprint stored in checkpoints: model/training params, K and the training data."""
    return fingerprint({"decision": cfg.train_settings(), "k": int(k), "data": data_fp})


def check_pairs(pairs: Sequence[TokenPair], k: int, max_len: int, split: str) -> None:
    """Raise InputError for an empty split, a sequence longer than ``max_len`` or a token >= k."""
    if not pairs:
        raise InputError(f"split {split}", "no pairs in this split (empty split)")
    for p in pairs:
        for side, seq in (("A", p.a), ("B", p.b)):
            if len(seq) > max_len:
                raise InputError(
                    f"pair {p.a_key}->{p.b_key}", f"{side} has {len(seq)} tokens, more than decision.max_len={max_len}"
                )
            if len(seq) == 0:
                raise InputError(f"pair {p.a_key}->{p.b_key}", f"{side} has no tokens")
            if int(np.max(seq)) >= k:
                raise InputError(f"pair {p.a_key}->{p.b_key}", f"{side} has token {int(np.max(seq))} >= K={k}")


def collate(
    pairs: Sequence[TokenPair], k: int, source: Callable[[TokenPair], np.ndarray] | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(src, tgt_in, tgt_out)`` tensors: A padded; SOS + B; B + EOS (PAD = k, SOS = k+1, EOS = k+2).

    ``source`` maps a pair to the encoder input (the model's ``pair_source``: A after its role tokens when the
    model has roles); None: A's tokens.
    """
    pad, sos, eos = k, k + 1, k + 2
    n = len(pairs)
    srcs = [np.asarray(p.a if source is None else source(p), dtype=np.int64) for p in pairs]
    s = max(len(a) for a in srcs)
    t = max(len(p.b) for p in pairs) + 1
    src = torch.full((n, s), pad, dtype=torch.long)
    tgt_in = torch.full((n, t), pad, dtype=torch.long)
    tgt_out = torch.full((n, t), pad, dtype=torch.long)
    for i, p in enumerate(pairs):
        a, b = torch.as_tensor(srcs[i]), torch.as_tensor(np.asarray(p.b, dtype=np.int64))
        src[i, : len(a)] = a
        tgt_in[i, 0] = sos
        tgt_in[i, 1 : len(b) + 1] = b
        tgt_out[i, : len(b)] = b
        tgt_out[i, len(b)] = eos
    return src, tgt_in, tgt_out


def _mix_inputs(
    model: DecisionModel, src: torch.Tensor, tgt_in: torch.Tensor, p: float, gen: torch.Generator
) -> torch.Tensor:
    """Replace decoder inputs (not SOS, not PAD) by the model's teacher-forced predictions with prob ``p``."""
    if p <= 0.0:
        return tgt_in
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(src, tgt_in)
    model.train(was_training)
    pred = logits[:, :-1, : model.k].argmax(-1)  # output at t predicts input t+1
    coin = torch.rand(tgt_in[:, 1:].shape, generator=gen) < p
    replace = coin & (tgt_in[:, 1:] < model.k)
    mixed = tgt_in.clone()
    mixed[:, 1:] = torch.where(replace, pred, tgt_in[:, 1:])
    return mixed


def evaluate_loss(model: DecisionModel, pairs: Sequence[TokenPair], batch_size: int) -> float:
    """Teacher-forced cross-entropy per target token (pad ignored), no dropout."""
    return evaluate_metrics(model, pairs, batch_size)[0]


def evaluate_metrics(model: DecisionModel, pairs: Sequence[TokenPair], batch_size: int) -> tuple[float, float]:
    """Teacher-forced cross-entropy per target token (pad ignored) and argmax accuracy over B's tokens.

    The accuracy counts codebook positions only (not EOS); for a model that does not read B's own tokens
    (``arch: aligned``, ``history: 0``) it is exactly the TPP of free greedy generation, pooled over tokens.
    """
    model.eval()
    total, count, hits, tokens = 0.0, 0, 0, 0
    with torch.no_grad():
        for i in range(0, len(pairs), batch_size):
            src, tgt_in, tgt_out = collate(pairs[i : i + batch_size], model.k, model.pair_source)
            logits = model(src, tgt_in)
            loss = F.cross_entropy(
                logits.reshape(-1, model.vocab), tgt_out.reshape(-1), ignore_index=model.pad, reduction="sum"
            )
            total += float(loss)
            count += int((tgt_out != model.pad).sum())
            real = tgt_out < model.k
            hits += int((logits[..., : model.k].argmax(-1).eq(tgt_out) & real).sum())
            tokens += int(real.sum())
    return total / max(count, 1), hits / max(tokens, 1)


@dataclasses.dataclass
class TrainResult:
    """Outcome of :func:`train_model`."""

    model: DecisionModel
    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float
    params_hash: str
    epochs_run: int  # epochs computed in this call (resumed ones excluded)
    resumed_epochs: int  # epochs taken from a checkpoint
    stopped_early: bool
    finished: bool  # False when stop_after ended the call before the schedule did
    train_tokens: int  # target tokens per epoch
    epoch_seconds: list[float] = dataclasses.field(default_factory=list)  # wall time of the epochs run in this call

    def summary(self) -> dict[str, Any]:
        """Numbers-only summary for metrics."""
        secs = self.epoch_seconds
        return {
            "epochs": len(self.history),
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "stopped_early": int(self.stopped_early),
            "resumed_epochs": self.resumed_epochs,
            "train_tokens_per_epoch": self.train_tokens,
            "seconds_per_epoch": float(np.mean(secs)) if secs else 0.0,
            "train_tokens_per_s": float(self.train_tokens / np.mean(secs)) if secs else 0.0,
        }


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load_resume(path: Path, phash: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("params_hash") != phash:
        log.warning(
            "%s: checkpoint of other params or data (hash %s != %s); starting afresh",
            path,
            str(state.get("params_hash"))[:12],
            phash[:12],
        )
        return None
    return state


@dataclasses.dataclass
class _Loop:
    """Mutable state of one training run: everything ``last.pt`` saves and a resume restores."""

    model: DecisionModel
    opt: torch.optim.Optimizer
    rng: np.random.Generator  # epoch order
    gen: torch.Generator  # scheduled-sampling draws
    best_state: dict[str, Any]
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int = -1
    bad: int = 0  # epochs since the last improvement
    epoch: int = 0  # epochs done

    def checkpoint(self, phash: str) -> dict[str, Any]:
        """The ``last.pt`` payload (key order kept: the file's bytes depend on it)."""
        return {
            "params_hash": phash,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optim": self.opt.state_dict(),
            "np_rng": self.rng.bit_generator.state,
            "ss_rng": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "best_val": self.best_val,
            "best_state": self.best_state,
            "best_epoch": self.best_epoch,
            "bad": self.bad,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`checkpoint` payload."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optim"])
        self.rng.bit_generator.state = state["np_rng"]
        self.gen.set_state(state["ss_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.history, self.best_val, self.best_state = state["history"], state["best_val"], state["best_state"]
        self.best_epoch, self.bad, self.epoch = state["best_epoch"], state["bad"], state["epoch"]


def _start(k: int, cfg: DecisionConfig, phash: str, ckpt: Path | None) -> _Loop:
    """A fresh model, optimiser and seeded generators, resumed from ``ckpt`` when it holds these params."""
    model = build_model(k, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    loop = _Loop(model, opt, rng, gen, best_state=copy.deepcopy(model.state_dict()))
    state = _load_resume(ckpt, phash) if ckpt is not None else None
    if state is not None:
        loop.restore(state)
        log.info("resuming from %s after epoch %d", ckpt, loop.epoch)
    return loop


def _train_pass(loop: _Loop, train_pairs: Sequence[TokenPair], k: int, cfg: DecisionConfig, p_ss: float) -> float:
    """One pass over the training pairs in a seeded order; the mean loss per target token."""
    order = loop.rng.permutation(len(train_pairs))
    model = loop.model
    model.train()
    tot, cnt = 0.0, 0
    for i in range(0, len(order), cfg.batch_size):
        batch = [train_pairs[j] for j in order[i : i + cfg.batch_size]]
        src, tgt_in, tgt_out = collate(batch, k, model.pair_source)
        tgt_in = _mix_inputs(model, src, tgt_in, p_ss, loop.gen)
        logits = model(src, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, model.vocab), tgt_out.reshape(-1), ignore_index=model.pad)
        loop.opt.zero_grad(set_to_none=True)
        loss.backward()
        loop.opt.step()
        n_tok = int((tgt_out != model.pad).sum())
        tot += float(loss.detach()) * n_tok
        cnt += n_tok
    return tot / max(cnt, 1)


def _epoch(
    loop: _Loop, train_pairs: Sequence[TokenPair], val_pairs: Sequence[TokenPair], k: int, cfg: DecisionConfig
) -> dict[str, float]:
    """Train one epoch, validate, keep the best weights; the epoch's history row."""
    p_ss = ss_probability(loop.epoch, cfg)
    train_loss = _train_pass(loop, train_pairs, k, cfg, p_ss)
    val, acc = evaluate_metrics(loop.model, val_pairs, cfg.batch_size)
    # the criterion is minimised: the loss, or the error rate (1 - accuracy) with stop_on: accuracy
    score = val if cfg.stop_on == "loss" else 1.0 - acc
    if score < loop.best_val - cfg.min_delta:
        loop.best_val, loop.best_state = score, copy.deepcopy(loop.model.state_dict())
        loop.best_epoch, loop.bad = loop.epoch, 0
    else:
        loop.bad += 1
    row = {"epoch": float(loop.epoch), "train_loss": train_loss, "val_loss": val, "ss_p": p_ss}
    if cfg.stop_on == "accuracy":  # loss-criterion histories (and checkpoints) keep their earlier bytes
        row["val_acc"] = acc
    return row


def train_model(
    train_pairs: Sequence[TokenPair],
    val_pairs: Sequence[TokenPair],
    k: int,
    cfg: DecisionConfig,
    ckpt_dir: str | Path | None = None,
    *,
    stop_after: int | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train (or resume training) a decision model on ``train_pairs``, early-stopping on ``val_pairs``.

    Args:
        train_pairs: Training pairs (all ordered pairs of the training split).
        val_pairs: Validation pairs (early stopping only).
        k: Codebook size.
        cfg: Hyperparameters.
        ckpt_dir: Folder for ``last.pt`` (per-epoch checkpoint) and ``model.pt`` (best weights);
            None trains in memory only.
        stop_after: Stop after this many epochs in total (simulates a kill; for tests and benches).
        progress: Called with each epoch's history row.

    Raises:
        InputError: Empty split, too-long sequences or tokens outside the codebook.
    """
    check_pairs(train_pairs, k, cfg.max_len, cfg.train_split)
    check_pairs(val_pairs, k, cfg.max_len, cfg.val_split)
    cfg = with_roles(cfg, train_pairs)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # CPU kernels are deterministic for a fixed thread count; torch.use_deterministic_algorithms is not needed
    # (and costs ~10 s of torch._dynamo imports per process).
    data_fp = data_fingerprint(list(train_pairs) + list(val_pairs))
    phash = params_hash(cfg, k, data_fp)
    ckpt = Path(ckpt_dir) / LAST_CHECKPOINT if ckpt_dir is not None else None
    loop = _start(k, cfg, phash, ckpt)
    resumed = loop.epoch
    stopped_early = loop.bad >= cfg.patience
    train_tokens = int(sum(len(p.b) + 1 for p in train_pairs))
    epoch_seconds: list[float] = []
    while loop.epoch < cfg.max_epochs and not stopped_early:
        if stop_after is not None and loop.epoch >= stop_after:
            break
        t0 = time.perf_counter()
        row = _epoch(loop, train_pairs, val_pairs, k, cfg)
        stopped_early = loop.bad >= cfg.patience
        # wall time is kept out of the history: checkpoints and model files stay byte-identical across runs
        epoch_seconds.append(time.perf_counter() - t0)
        loop.history.append(row)
        if progress is not None:
            progress(row)
        log.info(
            "epoch %d: train %.4f val %.4f ss_p %.3f (%.1f s)",
            loop.epoch,
            row["train_loss"],
            row["val_loss"],
            row["ss_p"],
            epoch_seconds[-1],
        )
        loop.epoch += 1
        if ckpt is not None:
            _atomic_save(loop.checkpoint(phash), ckpt)
    finished = stopped_early or loop.epoch >= cfg.max_epochs
    model = loop.model
    model.load_state_dict(loop.best_state)
    model.eval()
    if ckpt_dir is not None and finished:
        save_model(Path(ckpt_dir) / MODEL_FILE, model, cfg, phash, loop.history, data_fp=data_fp)
    return TrainResult(
        model=model,
        history=loop.history,
        best_epoch=loop.best_epoch,
        # the best epoch's validation loss, whichever criterion chose it
        best_val_loss=loop.history[loop.best_epoch]["val_loss"] if loop.best_epoch >= 0 else loop.best_val,
        params_hash=phash,
        epochs_run=loop.epoch - resumed,
        resumed_epochs=resumed,
        stopped_early=stopped_early,
        finished=finished,
        train_tokens=train_tokens,
        epoch_seconds=epoch_seconds,
    )


def save_model(
    path: str | Path,
    model: DecisionModel,
    cfg: DecisionConfig,
    phash: str,
    history: list[dict[str, float]] | None = None,
    *,
    data_fp: str = "",
) -> None:
    """Write the final weights with K, the model settings, the params hash and the data fingerprint (atomic).

    ``data_fp`` (:func:`data_fingerprint` of the training + validation pairs) names the token data the model
    learnt from, so a render can refuse a token artifact it was not trained on (:func:`check_tokens`).
    """
    _atomic_save(
        {
            "k": model.k,
            "model_settings": to_dict(cfg.model_settings()),
            "params_hash": phash,
            "data_fingerprint": data_fp,
            "state": model.state_dict(),
            # JSON text, not dicts: pickle memoises equal strings by object identity, so a resumed history
            # (unpickled) and a fresh one would serialise to different bytes
            "history": json.dumps(history or [], sort_keys=True),
        },
        Path(path),
    )


def load_model(
    path: str | Path, cfg: DecisionConfig, *, k: int | None = None, expect_hash: str | None = None
) -> DecisionModel:
    """Load weights written by :func:`save_model`, checking they fit ``cfg`` (and ``k``/``expect_hash``).

    Raises:
        InputError: Missing file, a model of other sizes, K or params.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no trained decision model here (run the decision stage first)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if to_dict(cfg.model_settings()) != state.get("model_settings"):
        raise InputError(
            path,
            f"checkpoint from other params: model settings {state.get('model_settings')} != "
            f"params decision {to_dict(cfg.model_settings())}",
        )
    if k is not None and int(state["k"]) != int(k):
        raise InputError(path, f"model has K={state['k']} but the token artifact has K={k}")
    if expect_hash is not None and state.get("params_hash") != expect_hash:
        raise InputError(path, "checkpoint from other params or data (params hash differs); retrain it")
    model = make_model(int(state["k"]), cfg)
    model.load_state_dict(state["state"])
    model.eval()
    return model


def check_tokens(path: str | Path, train_pairs: Sequence[TokenPair], val_pairs: Sequence[TokenPair], where) -> None:
    """Raise InputError when the model file ``path`` was trained on other pairs than these (named ``where``).

    A model file without a fingerprint (written before it was recorded) is not checked.
    """
    saved = torch.load(Path(path), map_location="cpu", weights_only=False).get("data_fingerprint") or ""
    if saved and saved != data_fingerprint(list(train_pairs) + list(val_pairs)):
        raise InputError(
            where, f"the model {path} was trained on other token data (fingerprint {saved[:12]}); pass its --tokens"
        )


__all__ = [
    "LAST_CHECKPOINT",
    "MODEL_FILE",
    "TrainResult",
    "check_pairs",
    "check_tokens",
    "collate",
    "data_fingerprint",
    "evaluate_loss",
    "evaluate_metrics",
    "load_model",
    "params_hash",
    "save_model",
    "ss_probability",
    "train_model",
]
