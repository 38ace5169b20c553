"""Read a token artifact as (A, B) sequence pairs, in either token layout.

Two layouts are supported, detected by the members of the first sample:

* **per stem-window** (foundation v2, ``docs: CONTRACTS``): one sample per stem-window
  with ``tokens.npy`` + ``json``; side files ``codebook.npy`` and ``pairs.parquet``
  (``pair_key, a_key, b_key, track_id, window_index, stem_a, stem_b, split``);
* **per pair** (v1): one sample per ordered pair with ``a_tokens.npy``, ``b_tokens.npy``
  and ``json`` (``track_id, window_index, stem_a, stem_b, split``); side file ``codebook.npy``.

Either way :func:`load_pairs` returns the same :class:`TokenPair` records, so the
decision stage works on both.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.errors import InputError
from mgdata.store import decode_json, decode_npy, iter_samples, make_key, read_artifact_info

CODEBOOK_FILE = "codebook.npy"
PAIRS_FILE = "pairs.parquet"


@dataclasses.dataclass(frozen=True)
class TokenPair:
    """One ordered (A, B) pair of token sequences of the same track window."""

    track_id: str
    split: str
    a: np.ndarray
    b: np.ndarray
    a_key: str
    b_key: str
    window_index: int = 0
    stem_a: str = ""
    stem_b: str = ""
    pair_key: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (token arrays as lists)."""
        d = dataclasses.asdict(self)
        d["a"], d["b"] = [int(x) for x in self.a], [int(x) for x in self.b]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenPair:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "a": np.asarray(data["a"], dtype=np.int64), "b": np.asarray(data["b"], dtype=np.int64)})


@dataclasses.dataclass
class TokenData:
    """Everything the decision stage reads from one token artifact."""

    path: Path
    layout: str  # "stem-window" or "pair"
    k: int
    codebook: np.ndarray
    pairs: list[TokenPair]
    windows: dict[str, dict[str, Any]]  # stem-window key -> {"tokens", "meta"}

    def split(self, name: str) -> list[TokenPair]:
        """The pairs of split ``name`` (input order)."""
        return [p for p in self.pairs if p.split == name]


def window_key(track_id: str, window_index: int, stem: str) -> str:
    """Stem-window key of the v1 layout (v2 stores its own keys)."""
    return make_key(track_id, f"w{int(window_index):04d}", stem)


def _load_codebook(path: Path) -> np.ndarray:
    cb_path = path / CODEBOOK_FILE
    if not cb_path.is_file():
        raise InputError(cb_path, "missing codebook (is this a token artifact?)")
    cb = np.load(cb_path, allow_pickle=False)
    if cb.ndim != 2 or len(cb) < 1:
        raise InputError(cb_path, f"expected a [K, dim] codebook, got shape {cb.shape}")
    return cb


def _check_tokens(arr: np.ndarray, k: int, where: str) -> np.ndarray:
    a = np.asarray(arr).astype(np.int64).reshape(-1)
    if len(a) and (a.min() < 0 or a.max() >= k):
        raise InputError(where, f"token outside 0..{k - 1} (codebook has K={k})")
    return a


def load_pairs(path: str | Path) -> TokenData:
    """Read every (A, B) pair of a token artifact, whichever its layout.

    Raises:
        InputError: Missing/incomplete artifact, codebook or pair index, or a bad token.
    """
    path = Path(path)
    read_artifact_info(path)  # raises a clear error on a missing or unfinished artifact
    codebook = _load_codebook(path)
    k = len(codebook)
    pairs: list[TokenPair] = []
    windows: dict[str, dict[str, Any]] = {}
    layout = ""
    for sample in iter_samples(path):
        key = sample["__key__"]
        if "json" not in sample:
            raise InputError(f"{path}:{key}", "sample lacks json")
        meta = decode_json(sample["json"])
        if "tokens.npy" in sample:
            layout = layout or "stem-window"
            windows[key] = {"tokens": _check_tokens(decode_npy(sample["tokens.npy"]), k, f"{path}:{key}"), "meta": meta}
        elif "a_tokens.npy" in sample and "b_tokens.npy" in sample:
            layout = layout or "pair"
            where = f"{path}:{key}"
            try:
                track, window = str(meta["track_id"]), int(meta["window_index"])
                sa, sb, split = str(meta["stem_a"]), str(meta["stem_b"]), str(meta.get("split", sample["__split__"]))
            except KeyError as exc:
                raise InputError(where, f"json lacks {exc.args[0]}") from None
            a = _check_tokens(decode_npy(sample["a_tokens.npy"]), k, where)
            b = _check_tokens(decode_npy(sample["b_tokens.npy"]), k, where)
            ka, kb = window_key(track, window, sa), window_key(track, window, sb)
            windows.setdefault(ka, {"tokens": a, "meta": {**meta, "stem": sa, "split": split}})
            windows.setdefault(kb, {"tokens": b, "meta": {**meta, "stem": sb, "split": split}})
            pairs.append(TokenPair(track, split, a, b, ka, kb, window, sa, sb, key))
        else:
            raise InputError(f"{path}:{key}", "neither tokens.npy nor a_tokens.npy/b_tokens.npy: not a token artifact")
    if not layout:
        raise InputError(path, "token artifact has no samples")
    if layout == "stem-window":
        pairs = _pairs_from_index(path, windows)
    return TokenData(path=path, layout=layout, k=k, codebook=codebook, pairs=pairs, windows=windows)


def _pairs_from_index(path: Path, windows: dict[str, dict[str, Any]]) -> list[TokenPair]:
    import polars as pl

    idx_path = path / PAIRS_FILE
    if not idx_path.is_file():
        raise InputError(idx_path, "missing pair index of a per-stem-window token artifact")
    df = pl.read_parquet(idx_path)
    need = ("a_key", "b_key", "track_id", "split")
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(idx_path, f"pair index lacks column(s) {', '.join(missing)}")
    out = []
    for row in df.iter_rows(named=True):
        for side in ("a_key", "b_key"):
            if row[side] not in windows:
                raise InputError(
                    idx_path, f"pair {row.get('pair_key', row['a_key'])}: {side} {row[side]!r} has no tokens"
                )
        out.append(
            TokenPair(
                str(row["track_id"]),
                str(row["split"]),
                windows[row["a_key"]]["tokens"],
                windows[row["b_key"]]["tokens"],
                row["a_key"],
                row["b_key"],
                int(row.get("window_index") or 0),
                str(row.get("stem_a") or ""),
                str(row.get("stem_b") or ""),
                str(row.get("pair_key") or f"{row['a_key']}__{row['b_key']}"),
            )
        )
    return out


def role_names(pairs: Sequence[TokenPair], min_pairs: int) -> tuple[str, ...]:
    """Stem names that are B in at least ``min_pairs`` of ``pairs`` (sorted); rarer names share ``other``."""
    counts = Counter(p.stem_b for p in pairs)
    return tuple(sorted(name for name, n in counts.items() if name and n >= min_pairs))


def with_roles(cfg, train_pairs: Sequence[TokenPair]):
    """``cfg`` (section ``decision``) with the role vocabulary of the training pairs when ``cfg.roles``.

    Raises:
        InputError: ``roles`` is on and no stem name is B in ``role_min_pairs`` training pairs.
    """
    if not cfg.roles or cfg.role_names:
        return cfg
    names = role_names(train_pairs, cfg.role_min_pairs)
    if not names:
        raise InputError(
            "decision.roles", f"no stem name is B in >= role_min_pairs={cfg.role_min_pairs} training pairs"
        )
    return dataclasses.replace(cfg, role_names=names)


__all__ = [
    "CODEBOOK_FILE",
    "PAIRS_FILE",
    "TokenData",
    "TokenPair",
    "load_pairs",
    "role_names",
    "window_key",
    "with_roles",
]
