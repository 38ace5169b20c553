"""Encoder-decoder Transformer over token sequences: stem A's tokens in, stem B's tokens out.

Vocabulary: the ``K`` codebook symbols ``0..K-1`` plus three specials, ``PAD = K``,
``SOS = K + 1`` and ``EOS = K + 2``. Positions are learned embeddings (sequences are
short, at most ``max_len`` tokens plus SOS/EOS).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mgdata.decision.config import DecisionConfig


def specials(k: int) -> tuple[int, int, int]:
    """``(pad, sos, eos)`` token ids for a codebook of ``k`` symbols."""
    return k, k + 1, k + 2


class DecisionTransformer(nn.Module):
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
        self.tok = nn.Embedding(self.vocab, cfg.d_model, padding_idx=self.pad)
        # +2: SOS and EOS around a sequence of max_len tokens
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


def build_model(k: int, cfg: DecisionConfig, seed: int | None = None) -> DecisionTransformer:
    """A freshly initialised model; ``seed`` (default ``cfg.seed``) fixes the initial weights."""
    torch.manual_seed(cfg.seed if seed is None else seed)
    return DecisionTransformer(k, cfg)


__all__ = ["DecisionTransformer", "build_model", "specials"]
