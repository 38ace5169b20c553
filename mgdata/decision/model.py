"""Decision models over token sequences: stem A's tokens in, stem B's tokens out.

* ``arch: paper``: the paper's encoder-decoder Transformer (:class:`DecisionTransformer`);
* ``arch: aligned``: :class:`AlignedDecision`, which uses that A and B are time-aligned (token t of B sounds
  with token t of A): B_t is predicted from A's tokens t-window..t+window and B's own last ``history``
  tokens by an MLP, so it needs no attention to find where in A to look.

Both share one interface (``encode``/``decode``/``forward`` on SOS-prefixed decoder inputs), so training,
scheduled sampling and generation work on either.

Vocabulary: the ``K`` codebook symbols ``0..K-1`` plus three specials, ``PAD = K``,
``SOS = K + 1`` and ``EOS = K + 2``. Positions are learned embeddings (sequences are
short, at most ``max_len`` tokens plus SOS/EOS).

Stem roles (``decision.roles``): which part A is and which part B should be (``soprano`` -> ``bass``) are two
tokens before A's (:meth:`RoleSource.source`): ``K + 3`` for a role the training split did not name often
enough (``other``), ``K + 4 + i`` for ``role_names[i]``. They are inputs only (never generated), so every
caller passes ``model.source(a, stem_a, stem_b)`` where it passed ``a``, and the rest is unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from mgdata.decision.config import DecisionConfig


def specials(k: int) -> tuple[int, int, int]:
    """``(pad, sos, eos)`` token ids for a codebook of ``k`` symbols."""
    return k, k + 1, k + 2


class RoleSource:
    """The source sequence a model reads: A's tokens, after the two role tokens when the model has roles."""

    k: int
    vocab: int
    role_names: tuple[str, ...]

    @property
    def n_inputs(self) -> int:
        """Input vocabulary: codebook + specials + (with roles) ``other`` and one token per role name."""
        return self.vocab + (len(self.role_names) + 1 if self.role_names else 0)

    def role_token(self, name: str) -> int:
        """Token of stem role ``name`` (``other`` for a name not in :attr:`role_names`)."""
        names = self.role_names
        return self.vocab + 1 + names.index(name) if name in names else self.vocab

    def source(self, a, stem_a: str = "", stem_b: str = ""):
        """The encoder input of A tokens ``a`` (int64 array) for roles ``stem_a`` -> ``stem_b``."""
        a = np.asarray(a, dtype=np.int64)
        if not self.role_names:
            return a
        return np.concatenate([np.array([self.role_token(stem_a), self.role_token(stem_b)], dtype=np.int64), a])

    def pair_source(self, pair):
        """:meth:`source` of a :class:`~mgdata.decision.data.TokenPair` (its A and both stems' roles)."""
        return self.source(pair.a, pair.stem_a, pair.stem_b)


class DecisionTransformer(RoleSource, nn.Module):
    """``nn.Transformer`` with token + learned position embeddings and a tied-size output head.

    Args:
        k: Codebook size (the vocabulary is ``k + 3``).
        cfg: Model sizes (d_model, n_heads, n_layers, ff_dim, dropout, max_len).
    """

    def __init__(self, k: int, cfg: DecisionConfig):
        super().__init__()
        self.k = int(k)
        self.vocab = self.k + 3
        self.pad, self.sos, self.eos = specials(self.k)
        self.max_len = cfg.max_len
        self.d_model = cfg.d_model
        self.role_names = tuple(cfg.role_names) if cfg.roles else ()
        # role tokens only ever enter the encoder; the head predicts codebook + specials
        self.tok = nn.Embedding(self.n_inputs, cfg.d_model, padding_idx=self.pad)
        # +2: SOS and EOS around a sequence of max_len tokens (or the two role tokens before A's)
        self.pos = nn.Embedding(cfg.max_len + 2, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.transformer = nn.Transformer(
            d_model=cfg.d_model,
            nhead=cfg.n_heads,
            num_encoder_layers=cfg.n_layers,
            num_decoder_layers=cfg.n_layers,
            dim_feedforward=cfg.ff_dim,
            dropout=cfg.dropout,
            batch_first=True,
        )
        self.head = nn.Linear(cfg.d_model, self.vocab)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(x.shape[1], device=x.device)
        return self.drop(self.tok(x) * math.sqrt(self.d_model) + self.pos(pos)[None])

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder memory and its padding mask for ``src`` [B, S] (A's tokens, PAD-padded)."""
        mask = src == self.pad
        return self.transformer.encoder(self._embed(src), src_key_padding_mask=mask), mask

    def decode(self, memory: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Logits [B, T, vocab] for decoder input ``tgt_in`` [B, T] (SOS + B's tokens, causal)."""
        t = tgt_in.shape[1]
        # boolean like the padding masks (True = may not attend): mixing float and bool masks is deprecated
        causal = torch.triu(torch.ones((t, t), dtype=torch.bool, device=tgt_in.device), diagonal=1)
        out = self.transformer.decoder(
            self._embed(tgt_in),
            memory,
            tgt_mask=causal,
            tgt_key_padding_mask=tgt_in == self.pad,
            memory_key_padding_mask=src_mask,
        )
        return self.head(out)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits [B, T, vocab]."""
        memory, mask = self.encode(src)
        return self.decode(memory, mask, tgt_in)


class AlignedDecision(RoleSource, nn.Module):
    """Causal, time-aligned MLP: logits of B_t from A[t-w..t+w] and B[t-h..t-1] embeddings.

    Each of the ``2w + 1`` A slots and ``h`` B slots has its own weights in the first layer (the embeddings
    are concatenated, not summed), so it contains the multinomial logistic regression on one-hot A windows
    and adds B's own past (what a free-running generator must stay consistent with) and non-linearity.
    With ``summary`` one more slot holds the mean embedding of all of A's tokens: the key and harmony of
    the whole window, which a few neighbouring tokens cannot show. With roles two more slots hold the
    embeddings of A's and B's stem roles (the source's first two tokens).

    Args:
        k: Codebook size (the vocabulary is ``k + 3``: PAD, SOS, EOS as in :func:`specials`).
        cfg: ``window``, ``history``, ``d_model`` (embedding size per slot), ``ff_dim`` (hidden width),
            ``n_layers`` (hidden layers), ``dropout``, ``max_len``.
    """

    def __init__(self, k: int, cfg: DecisionConfig):
        super().__init__()
        self.k = int(k)
        self.vocab = self.k + 3
        self.pad, self.sos, self.eos = specials(self.k)
        self.max_len = cfg.max_len
        self.window, self.history, self.summary = int(cfg.window), int(cfg.history), bool(cfg.summary)
        self.role_names = tuple(cfg.role_names) if cfg.roles else ()
        # no padding_idx: "before the start / past the end" is information the model may use
        self.a_emb = nn.Embedding(self.vocab, cfg.d_model)
        self.b_emb = nn.Embedding(self.vocab, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        if self.role_names:  # created after the others: a role-free model keeps its initial weights
            self.role_emb = nn.Embedding(len(self.role_names) + 1, cfg.d_model)
        slots = 2 * self.window + 1 + self.history + int(self.summary) + 2 * bool(self.role_names)
        width = slots * cfg.d_model
        layers: list[nn.Module] = []
        for _ in range(cfg.n_layers):
            layers += [nn.Linear(width, cfg.ff_dim), nn.GELU(), nn.Dropout(cfg.dropout)]
            width = cfg.ff_dim
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(width, self.vocab)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """No encoder: the "memory" is A's tokens themselves (and their padding mask)."""
        return src, src == self.pad

    def decode(self, memory: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Logits [B, T, vocab] for decoder input ``tgt_in`` [B, T] (SOS + B's tokens); ``memory`` is A."""
        del src_mask  # A's padding is the PAD token, which has its own embedding
        return self.forward(memory, tgt_in)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits [B, T, vocab]: position t sees A[t-w..t+w] and tgt_in[t-h+1..t] = B[t-h..t-1]."""
        n, t = tgt_in.shape
        w, h = self.window, self.history
        roles = None
        if self.role_names:  # the first two source tokens are A's and B's roles
            roles, src = self.role_emb(src[:, :2] - self.vocab), src[:, 2:]
        # all of A, not only its first t tokens: during generation t grows, and position t looks ahead to t+w
        s = src.shape[1]
        a = torch.full((n, max(s, t) + 2 * w), self.pad, dtype=torch.long)
        a[:, w : w + s] = src
        ea = self.a_emb(a)
        parts = [ea[:, j : j + t] for j in range(2 * w + 1)]
        if self.summary:
            real = (src != self.pad).unsqueeze(-1).to(ea.dtype)
            mean = (self.a_emb(src) * real).sum(1) / real.sum(1).clamp(min=1.0)
            parts.append(mean[:, None].expand(n, t, mean.shape[-1]))
        if roles is not None:
            parts += [roles[:, j : j + 1].expand(n, t, roles.shape[-1]) for j in range(2)]
        if h:
            b = torch.cat([torch.full((n, h - 1), self.pad, dtype=torch.long), tgt_in], 1)
            eb = self.b_emb(b)
            parts += [eb[:, h - 1 - i : h - 1 - i + t] for i in range(h)]
        x = self.drop(torch.cat(parts, -1))
        return self.head(self.mlp(x))


DecisionModel = DecisionTransformer | AlignedDecision


def make_model(k: int, cfg: DecisionConfig) -> DecisionModel:
    """An untrained model of architecture ``cfg.arch`` (weights from the current torch RNG).

    Raises:
        ValueError: ``cfg.roles`` without the role vocabulary (:func:`mgdata.decision.data.with_roles`).
    """
    if cfg.roles and not cfg.role_names:
        raise ValueError("decision.roles: role_names not derived from the training pairs (see data.with_roles)")
    return AlignedDecision(k, cfg) if cfg.arch == "aligned" else DecisionTransformer(k, cfg)


def build_model(k: int, cfg: DecisionConfig, seed: int | None = None) -> DecisionModel:
    """A freshly initialised model; ``seed`` (default ``cfg.seed``) fixes the initial weights."""
    torch.manual_seed(cfg.seed if seed is None else seed)
    return make_model(k, cfg)


__all__ = [
    "AlignedDecision",
    "DecisionModel",
    "DecisionTransformer",
    "RoleSource",
    "build_model",
    "make_model",
    "specials",
]
