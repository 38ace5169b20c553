"""Typed records of a tokens artifact and their readers.

A tokens artifact (``data/tokens/{encoder}-s{segment_s}-k{k}/``) holds one sample per
stem-window: ``tokens.npy`` (int16, one token per ``segment_s``) and ``json``
(:class:`TokenRecord`), plus the side files ``codebook.npy`` and ``pairs.parquet``.
:class:`TokensResult` is what :func:`mgdata.tokens.build.build_tokens` returns;
:func:`read_tokens` and :func:`read_token_pairs` stream an artifact back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.stems.records import PairRecord, read_pairs
from mgdata.store import JsonRecord, decode_npy, encode_npy, iter_samples, read_artifact_info
from mgdata.tokens.metrics import TokenStats

FORMAT_VERSION = "tokens/2"
CODEBOOK_FILE = "codebook.npy"
PAIRS_FILE = "pairs.parquet"
MEMBERS = ("json", "tokens.npy")


@dataclass(frozen=True)
class TokenRecord(JsonRecord):
    """The json of one token sample (one stem-window).

    Attributes:
        key: Stem-window key (the same as in ``data/stems``).
        track_id, window_index, stem_index, stem, split: From the stem-window.
        quadrant, mood, style: Labels of the track (None where the source has none).
        segment_s: Seconds per token.
        k: Alphabet size.
        encoder: Encoder name (``chroma_stft``, ...); its settings are in ``artifact.json``.
        codebook_sha256: sha256 of ``codebook.npy``.
        n_tokens: Length of ``tokens.npy``.
        provenance: Per-sample provenance.
    """

    json_what = "token"
    json_optional = frozenset({"quadrant", "mood", "style"})

    key: str
    track_id: str
    window_index: int
    stem_index: int
    stem: str
    split: str
    quadrant: str | None
    mood: list[str] | None
    style: str | None
    segment_s: float
    k: int
    encoder: str
    codebook_sha256: str
    n_tokens: int
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class TokensResult:
    """What :func:`build_tokens` produced.

    Attributes:
        name: Configuration name (``chroma_stft-s0.5-k16``).
        encoder_name: Encoder name.
        segment_s: Segment length in seconds.
        k: Alphabet size.
        codebook: float32 ``[k, dim]``.
        codebook_sha256: sha256 of ``codebook.npy``.
        encoder: The encoder's id and settings.
        fingerprint: Fingerprint of params + upstream artifact.
        stats: ``{"all": TokenStats, <split>: TokenStats}`` over stem-windows.
        counts: Counters (stem-windows written/skipped, runs encoded, training segments, pairs...).
        pair_mi: ``{"mi_bits", "mi_shuffled_bits", "pairs"}`` on the held-out pairs.
        tokens: stem-window key -> tokens, for every stem-window kept.
        pairs: The pair index rows kept.
        out_dir: The artifact directory, or ``None`` when nothing was written.
    """

    name: str
    encoder_name: str
    segment_s: float
    k: int
    codebook: np.ndarray
    codebook_sha256: str
    encoder: dict[str, Any]
    fingerprint: str
    stats: dict[str, TokenStats]
    counts: dict[str, int]
    pair_mi: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    pairs: list[PairRecord] = field(repr=False, default_factory=list)
    out_dir: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (arrays left out)."""
        return {
            "config": self.name,
            "encoder_name": self.encoder_name,
            "segment_s": self.segment_s,
            "k": self.k,
            "dim": int(self.codebook.shape[1]),
            "codebook_sha256": self.codebook_sha256,
            "encoder": self.encoder,
            "fingerprint": self.fingerprint,
            "overall": self.stats["all"].to_dict(),
            "splits": {s: st.to_dict() for s, st in sorted(self.stats.items()) if s != "all"},
            "counts": dict(sorted(self.counts.items())),
            "pair_mi": dict(sorted(self.pair_mi.items())),
            "out_dir": str(self.out_dir) if self.out_dir is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], codebook: np.ndarray) -> TokensResult:
        """Rebuild a result (without tokens and pairs) from :meth:`to_dict` and its codebook."""
        stats = {"all": TokenStats.from_dict(data["overall"])}
        stats.update({s: TokenStats.from_dict(v) for s, v in data["splits"].items()})
        return cls(
            name=data["config"],
            encoder_name=data["encoder_name"],
            segment_s=data["segment_s"],
            k=data["k"],
            codebook=codebook,
            codebook_sha256=data["codebook_sha256"],
            encoder=data["encoder"],
            fingerprint=data["fingerprint"],
            stats=stats,
            counts=data["counts"],
            pair_mi=data.get("pair_mi", {}),
            out_dir=Path(data["out_dir"]) if data.get("out_dir") else None,
        )

    def metrics(self) -> dict[str, int | float]:
        """Flat numbers for ``metrics/tokens/<name>.json``."""
        out: dict[str, int | float] = {"segment_s": self.segment_s, "k": self.k, "dim": int(self.codebook.shape[1])}
        skip = {"k", "top_symbol"}
        out.update({f: v for f, v in self.stats["all"].to_dict().items() if f not in skip})
        for split, st in sorted(self.stats.items()):
            if split != "all":
                out.update(
                    {
                        f"{split}_{f}": v
                        for f, v in st.to_dict().items()
                        if f in ("usage", "entropy_bits", "top_share", "mean_run_length", "n_tokens")
                    }
                )
        out.update(self.counts)
        out.update({f"pair_{k}": v for k, v in self.pair_mi.items()})
        return out


def tokens_npy(tokens: np.ndarray) -> bytes:
    """The ``tokens.npy`` member: the sequence as int16."""
    return encode_npy(np.asarray(tokens, dtype=np.int16))


def read_tokens(path: str | Path, *, split: str | None = None) -> Iterator[dict[str, Any]]:
    """Stream a tokens artifact: ``{"key", "split", "tokens", "record", "meta"}`` per stem-window.

    ``record`` is the sample's :class:`TokenRecord` (read through the record contract: an
    unknown or missing field is a one-line error naming the shard and key); ``meta`` is its
    ``to_dict()``, the json as a dict.

    Raises:
        MgdataError: The artifact is missing or incomplete.
    """
    read_artifact_info(path)
    for sample in iter_samples(path, split=split):
        record = TokenRecord.from_sample(sample)
        yield {
            "key": sample["__key__"],
            "split": sample["__split__"],
            "record": record,
            "meta": record.to_dict(),
            "tokens": decode_npy(sample["tokens.npy"]),
        }


def read_token_pairs(path: str | Path, *, split: str | None = None) -> Iterator[dict[str, Any]]:
    """The (A, B) token pairs of a tokens artifact, assembled from ``pairs.parquet`` (no duplicated storage).

    Yields:
        ``{"pair_key", "split", "track_id", "window_index", "stem_a", "stem_b", "a_tokens", "b_tokens"}`` in
        pair-index order.
    """
    toks = {r["key"]: r["tokens"] for r in read_tokens(path, split=split)}
    for p in read_pairs(path):
        if split is not None and p.split != split:
            continue
        yield {
            **{k: v for k, v in p.to_dict().items() if k not in ("a_key", "b_key")},
            "a_tokens": toks[p.a_key],
            "b_tokens": toks[p.b_key],
        }


__all__ = [
    "CODEBOOK_FILE",
    "FORMAT_VERSION",
    "MEMBERS",
    "PAIRS_FILE",
    "TokenRecord",
    "TokensResult",
    "read_token_pairs",
    "read_tokens",
    "tokens_npy",
]
