"""Build token sequences for the stem pairs: encoder -> condenser -> k-means, one artifact per config.

Input: the stem-pairs artifact (``data/stems/``: members ``a.flac``, ``b.flac``,
``json``). Output (``data/tokens/s{segment_s}-k{k}/``): shards keyed by pair key
with ``a_tokens.npy`` / ``b_tokens.npy`` (int16, one token per ``segment_s``) and
``json``, plus ``codebook.npy`` (float32 ``[K, dim]``).

Two streaming passes over the stem pairs:

1. the training split (``cfg.fit_split``) only: every distinct stem audio
   ``(track_id, window_index, stem)`` is encoded once and condensed; these
   segment vectors (small: ``dim`` floats per segment) fit the codebook;
2. every split: each pair's two stems are tokenised (a stem repeats across
   pairs, so tokens are cached by stem; training stems reuse their pass-1
   vectors, so no audio is encoded twice) and written in input order.

Encoder frames do not depend on ``segment_s`` or ``k``, so the configurations
of the grid share them through a content-addressed frame cache
(``tokens.frames_cache``, see :class:`mgdata.tokens.frames.FrameCache`): only
the first configuration pays for the encoder.

Bad input: a stem copy that cannot be decoded, is not finite or is shorter than
one segment skips its own pair (``report.skip`` with the pair key, member and
reason, grouped as "bad stem audio" / "too short"); other pairs carrying a good
copy of the same stem are kept. With ``tokens.strict`` the first one raises.
Input shards are read with checksum verification, so byte-level corruption of
a shard fails loudly instead of yielding wrong tokens.

Metrics are computed over the distinct stems of the pairs kept (a stem shared by
several pairs counts once), overall and per split.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import soundfile as sf
from tqdm import tqdm

from mgdata.audio import decode_audio
from mgdata.config import ShardConfig
from mgdata.errors import InputError, ParamsError
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.store import (
    ArtifactWriter,
    Sample,
    decode_json,
    decode_npy,
    encode_json,
    encode_npy,
    fingerprint,
    iter_samples,
    read_artifact_info,
)
from mgdata.tokens.condense import condense
from mgdata.tokens.config import TokensConfig, config_name
from mgdata.tokens.frames import FrameCache, FrameEncoder, encode_audio, make_encoder
from mgdata.tokens.metrics import TokenStats, token_stats
from mgdata.tokens.vq import codebook_sha256, distinct_rows, encode, fit_codebook, save_codebook

FORMAT_VERSION = "tokens/1"
CODEBOOK_FILE = "codebook.npy"
_REQUIRED_META = ("track_id", "window_index", "stem_a", "stem_b", "split")

# (track_id, window_index, stem): one stem audio, shared by every pair that uses it.
StemId = tuple[str, int, str]

log = logging.getLogger("mgdata.tokens")


@dataclass
class TokensResult:
    """What :func:`build_tokens` produced.

    Attributes:
        name: Configuration name (``s0.5-k16``).
        segment_s: Segment length in seconds.
        k: Alphabet size.
        codebook: float32 ``[k, dim]``.
        codebook_sha256: sha256 of ``codebook.npy``.
        encoder: The encoder's id and settings.
        fingerprint: Fingerprint of params + upstream artifact.
        stats: ``{"all": TokenStats, <split>: TokenStats}`` over distinct stems.
        counts: Counters (pairs written/skipped/resumed, stems encoded, training segments...).
        tokens: ``pair_key -> (a_tokens, b_tokens)`` for every pair kept.
        out_dir: The artifact directory, or ``None`` when nothing was written.
    """

    name: str
    segment_s: float
    k: int
    codebook: np.ndarray
    codebook_sha256: str
    encoder: dict[str, Any]
    fingerprint: str
    stats: dict[str, TokenStats]
    counts: dict[str, int]
    tokens: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False, default_factory=dict)
    out_dir: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (the metrics file's content; arrays left out)."""
        return {
            "config": self.name,
            "segment_s": self.segment_s,
            "k": self.k,
            "dim": int(self.codebook.shape[1]),
            "codebook_sha256": self.codebook_sha256,
            "encoder": self.encoder,
            "fingerprint": self.fingerprint,
            "overall": self.stats["all"].to_dict(),
            "splits": {s: st.to_dict() for s, st in sorted(self.stats.items()) if s != "all"},
            "counts": dict(sorted(self.counts.items())),
            "out_dir": str(self.out_dir) if self.out_dir is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], codebook: np.ndarray) -> "TokensResult":
        """Rebuild a result (without per-pair tokens) from :meth:`to_dict` and its codebook."""
        stats = {"all": TokenStats.from_dict(data["overall"])}
        stats.update({s: TokenStats.from_dict(v) for s, v in data["splits"].items()})
        return cls(name=data["config"], segment_s=data["segment_s"], k=data["k"], codebook=codebook,
                   codebook_sha256=data["codebook_sha256"], encoder=data["encoder"],
                   fingerprint=data["fingerprint"], stats=stats, counts=data["counts"],
                   out_dir=Path(data["out_dir"]) if data.get("out_dir") else None)


class _StemEncoder:
    """Audio bytes -> condensed segment vectors (frames via the cache when one is set)."""

    def __init__(self, encoder: FrameEncoder, segment_s: float, keep_partial: bool, cache: FrameCache | None):
        self.encoder = encoder
        self.segment_s = segment_s
        self.keep_partial = keep_partial
        self.cache = cache
        self.n_encoded = 0
        self.n_cached = 0

    def _frames(self, data: bytes, where: str) -> tuple[np.ndarray, float]:
        """Frames and audio duration (seconds) of one stem."""
        try:
            info = sf.info(io.BytesIO(data))  # header only: the duration, even on a cache hit
            duration_s = info.frames / info.samplerate
            frames = self.cache.get(data) if self.cache is not None else None
            if frames is not None:
                self.n_cached += 1
                return frames, duration_s
            audio, sr = decode_audio(data)
        except Exception as exc:  # noqa: BLE001 - libsndfile raises several types on bad bytes
            # Drop "<_io.BytesIO object at 0x...>" so the metrics file stays deterministic.
            detail = re.sub(r"<[^>]* at 0x[0-9a-fA-F]+>", "audio bytes", str(exc))
            raise InputError(where, f"undecodable audio ({detail})") from None
        frames = encode_audio(self.encoder, audio, sr, where=where)
        self.n_encoded += 1
        if self.cache is not None:
            self.cache.put(data, frames)
        return frames, len(audio) / sr

    def vectors(self, data: bytes, where: str) -> np.ndarray:
        """Segment vectors ``[n_segments, dim]`` of one stem (raises InputError on bad audio)."""
        frames, duration_s = self._frames(data, where)
        try:
            vecs = condense(frames, self.encoder.frame_rate, self.segment_s, keep_partial=self.keep_partial,
                            duration_s=duration_s)
        except ValueError as exc:
            raise InputError(where, f"bad encoder frames: {exc}") from None
        if len(vecs) == 0:
            raise InputError(where, f"too short: {duration_s:.3f} s < one segment of {self.segment_s} s")
        return vecs


def _stem_ids(key: str, meta: dict[str, Any]) -> tuple[StemId, StemId]:
    missing = [f for f in _REQUIRED_META if f not in meta]
    if missing:
        raise InputError(key, f"bad metadata: json lacks {', '.join(missing)}")
    track, window = str(meta["track_id"]), int(meta["window_index"])
    return (track, window, str(meta["stem_a"])), (track, window, str(meta["stem_b"]))


def _read_meta(sample: dict[str, Any]) -> dict[str, Any]:
    key = sample["__key__"]
    for member in ("json", "a.flac", "b.flac"):
        if member not in sample:
            raise InputError(key, f"bad metadata: sample lacks member {member!r}")
    try:
        meta = decode_json(sample["json"])
    except ValueError as exc:
        raise InputError(key, f"bad metadata: unreadable json ({exc})") from None
    if not isinstance(meta, dict):
        raise InputError(key, "bad metadata: json is not an object")
    return meta


def _skip_reason(exc: InputError) -> str:
    # StageReport groups skips by the text before the first colon: "too short" or "bad stem audio".
    category = "too short" if exc.message.startswith("too short") else "bad stem audio"
    detail = exc.message.removeprefix("too short: ")
    return f"{category}: {exc.where}: {detail}"


def build_tokens(
    stem_pairs_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    cfg: TokensConfig,
    segment_s: float,
    k: int,
    shards: ShardConfig,
    report: StageReport | None = None,
    name: str | None = None,
) -> TokensResult:
    """Tokenise every stem pair for one (segment_s, k) configuration.

    Args:
        stem_pairs_dir: The stem-pairs artifact (``data/stems``).
        out_dir: Artifact directory to write (shards, ``codebook.npy``,
            ``artifact.json``); ``None`` writes nothing and only returns results.
        cfg: Section ``tokens``.
        segment_s: Segment length in seconds (one token per segment).
        k: Alphabet size.
        shards: Section ``shards``.
        report: Stage report to count into (a new one if ``None``).
        name: Configuration name (default ``config_name(segment_s, k)``).

    Returns:
        A :class:`TokensResult` (codebook, metrics, tokens per pair).

    Raises:
        ParamsError: (``tokens.k``) fewer training segments than ``k``, or a bad
            ``segment_s``.
        InputError: A bad input while ``cfg.strict`` is set.
        MgdataError: The input artifact is missing or incomplete.
    """
    stem_pairs_dir = Path(stem_pairs_dir)
    segment_s = float(segment_s)
    k = int(k)
    if not segment_s >= cfg.hop_s:
        raise ParamsError("tokens.segment_s", f"expected >= hop_s ({cfg.hop_s} s), got {segment_s}")
    if not 2 <= k <= 32768:
        raise ParamsError("tokens.k", f"expected 2 <= k <= 32768 (int16 tokens), got {k}")
    name = name or config_name(segment_s, k)
    report = report if report is not None else StageReport("tokens")
    info = read_artifact_info(stem_pairs_dir)
    up_prov = info.get("provenance", {})
    encoder = make_encoder(cfg)
    enc_desc = encoder.describe()
    fp = fingerprint(FORMAT_VERSION, cfg.settings(), segment_s, k, shards, info["fingerprint"], enc_desc)
    cache = FrameCache(cfg.frames_cache, enc_desc) if cfg.frames_cache else None
    stems = _StemEncoder(encoder, segment_s, cfg.keep_partial, cache)
    # A stem is decoded from the first pair that carries it; a copy that fails (undecodable,
    # non-finite, too short) skips its own pair only, keyed (pair_key, side).
    bad_copies: dict[tuple[str, str], str] = {}

    def check_strict(exc: InputError) -> None:
        if cfg.strict:
            raise exc

    # ---- pass 1: training segments (distinct stems only), for the fit
    train_vecs: dict[StemId, np.ndarray] = {}
    n_fit_pairs = info.get("splits", {}).get(cfg.fit_split, {}).get("samples")
    for sample in tqdm(iter_samples(stem_pairs_dir, split=cfg.fit_split, verify=True), total=n_fit_pairs,
                       unit="pair", desc=f"tokens {name}: encode {cfg.fit_split}", disable=None):
        key = sample["__key__"]
        try:
            meta = _read_meta(sample)
            sids = _stem_ids(key, meta)
        except InputError as exc:
            check_strict(exc)
            continue  # counted once, in pass 2
        if meta["split"] != cfg.fit_split:
            continue  # a mislabelled pair never reaches the fit; pass 2 reports it
        for side, sid in zip(("a", "b"), sids):
            if sid in train_vecs:
                continue
            try:
                train_vecs[sid] = stems.vectors(sample[f"{side}.flac"], f"{key}/{side}.flac")
            except InputError as exc:
                check_strict(exc)
                bad_copies[(key, side)] = _skip_reason(exc)

    order = sorted(train_vecs)  # fit input in a canonical order, whatever the shard layout
    dim = _encoder_dim(train_vecs, enc_desc)
    train = np.concatenate([train_vecs[s] for s in order]) if order else np.zeros((0, dim), np.float32)
    try:
        codebook = fit_codebook(train, k, seed=cfg.seed, batch_size=cfg.batch_size, max_iter=cfg.max_iter,
                                n_init=cfg.n_init)
    except ParamsError as exc:
        if exc.key != "tokens.k":
            raise
        raise ParamsError(
            "tokens.k",
            f"k={k} needs at least {k} training segments, but the '{cfg.fit_split}' split of {stem_pairs_dir} "
            f"has only {len(train)} segments of {segment_s} s ({len(order)} distinct stems): use a smaller "
            "tokens.k or tokens.segment_s, or a larger corpus",
        ) from None
    cb_sha = codebook_sha256(codebook)

    # ---- pass 2: tokenise every pair, write in input order
    stem_tokens: dict[StemId, np.ndarray] = {}
    stem_split: dict[StemId, str] = {}
    pair_tokens: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    counts = {"pairs_in": 0, "pairs_written": 0, "pairs_resumed": 0, "pairs_skipped": 0,
              "train_stems": len(order), "train_segments": int(len(train)),
              "codebook_distinct_centroids": distinct_rows(codebook)}
    prov = Provenance(
        builder="tokens",
        source=f"stem pairs ({up_prov.get('source', str(stem_pairs_dir))})",
        source_version=str(info["fingerprint"]),
        licence=str(up_prov.get("licence") or "see upstream artifact"),
        seed=cfg.seed,
        params_hash=fp,
        extra={"config": name, "segment_s": segment_s, "k": k, "encoder": enc_desc, "codebook_sha256": cb_sha},
    )
    sample_prov = prov.sample_dict() | {"upstream_fingerprint": str(info["fingerprint"])}

    if out_dir is not None:
        out_dir = Path(out_dir)
        writer_cm: Any = ArtifactWriter(
            out_dir, fingerprint=fp, provenance=prov, shards=shards,
            extra_info={"tokens": {"config": name, "segment_s": segment_s, "k": k, "dim": int(codebook.shape[1]),
                                   "codebook": CODEBOOK_FILE, "codebook_sha256": cb_sha, "encoder": enc_desc}},
        )
    else:
        writer_cm = contextlib.nullcontext(None)

    with writer_cm as writer:
        done = writer.done_keys if writer is not None else frozenset()
        if done:
            # Resumed run: reuse the tokens of pairs already in verified shards (same fingerprint).
            for sid, toks in _read_back(out_dir, done):
                stem_tokens[sid] = toks
        n_total = info.get("samples")
        for sample in tqdm(iter_samples(stem_pairs_dir, verify=True), total=n_total, unit="pair",
                           desc=f"tokens {name}: tokenise", disable=None):
            key = sample["__key__"]
            counts["pairs_in"] += 1
            try:
                meta = _read_meta(sample)
                sids = _stem_ids(key, meta)
                split = str(meta["split"])
                if split != sample["__split__"]:
                    raise InputError(key, f"bad metadata: json split {split!r} but shard split "
                                          f"{sample['__split__']!r}")
            except InputError as exc:
                check_strict(exc)
                report.skip(key, exc.message)
                counts["pairs_skipped"] += 1
                continue
            toks, failure = [], None
            for side, sid in zip(("a", "b"), sids):
                failure = bad_copies.get((key, side))
                if failure is not None:
                    break
                if sid not in stem_tokens:
                    vecs = train_vecs.pop(sid, None)
                    if vecs is None:
                        try:
                            vecs = stems.vectors(sample[f"{side}.flac"], f"{key}/{side}.flac")
                        except InputError as exc:
                            check_strict(exc)
                            failure = _skip_reason(exc)
                            break
                    stem_tokens[sid] = encode(vecs, codebook)
                toks.append(stem_tokens[sid])
            if failure is not None:
                report.skip(key, failure)
                counts["pairs_skipped"] += 1
                continue
            for sid in sids:  # metrics count the stems of kept pairs only
                stem_split[sid] = split
            a_tok, b_tok = toks
            pair_tokens[key] = (a_tok, b_tok)
            if key in done:
                counts["pairs_resumed"] += 1
                continue
            if writer is not None:
                doc = {
                    "pair_key": key, "track_id": sids[0][0], "window_index": sids[0][1],
                    "stem_a": sids[0][2], "stem_b": sids[1][2], "split": split,
                    "start_s": meta.get("start_s"), "length_s": meta.get("length_s"),
                    "instrument_a": meta.get("instrument_a"), "instrument_b": meta.get("instrument_b"),
                    "segment_s": segment_s, "k": k, "n_tokens_a": int(len(a_tok)), "n_tokens_b": int(len(b_tok)),
                    "encoder": enc_desc, "codebook_sha256": cb_sha, "provenance": sample_prov,
                }
                writer.write(split, Sample(key, {"a_tokens.npy": encode_npy(a_tok), "b_tokens.npy": encode_npy(b_tok),
                                                 "json": encode_json(doc)},
                                           seconds=len(a_tok) * segment_s))
            counts["pairs_written"] += 1
        if writer is not None:
            # Written with the shards so a finished artifact always has its codebook.
            save_codebook(out_dir / CODEBOOK_FILE, codebook)

    counts["stems_encoded"] = stems.n_encoded
    counts["stems_frames_cached"] = stems.n_cached
    counts["stems_tokenised"] = len(stem_split)
    stats = {"all": token_stats((stem_tokens[s] for s in sorted(stem_split)), k)}
    for split in sorted(set(stem_split.values())):
        stats[split] = token_stats((stem_tokens[s] for s in sorted(stem_split) if stem_split[s] == split), k)
    result = TokensResult(name=name, segment_s=segment_s, k=k, codebook=codebook, codebook_sha256=cb_sha,
                          encoder=enc_desc, fingerprint=fp, stats=stats, counts=counts, tokens=pair_tokens,
                          out_dir=out_dir)
    # Cache hits and resumed pairs depend on what ran before, not on the data: they go to the
    # log (report.run); the metrics count pairs in the artifact, however many runs it took.
    for cname, n in counts.items():
        if cname in ("stems_encoded", "stems_frames_cached", "pairs_resumed"):
            report.run(cname, n)
        elif cname == "pairs_written":
            report.count(cname, n + counts["pairs_resumed"])
        else:
            report.count(cname, n)
    summary = result.to_dict()
    for field_name in ("config", "segment_s", "k", "dim", "codebook_sha256", "encoder", "overall", "splits"):
        report.set(field_name, summary[field_name])
    return result


def _encoder_dim(train_vecs: dict[StemId, np.ndarray], enc_desc: dict[str, Any]) -> int:
    for v in train_vecs.values():
        return int(v.shape[1])
    return int(enc_desc.get("dim", 1))


def _read_back(out_dir: Path, keys: frozenset[str]) -> Iterator[tuple[StemId, np.ndarray]]:
    """Tokens of the given pairs from an artifact's verified shards (resume)."""
    for sample in iter_samples(out_dir):
        if sample["__key__"] not in keys:
            continue
        meta = decode_json(sample["json"])
        track, window = meta["track_id"], int(meta["window_index"])
        yield (track, window, meta["stem_a"]), decode_npy(sample["a_tokens.npy"])
        yield (track, window, meta["stem_b"]), decode_npy(sample["b_tokens.npy"])


def read_tokens(path: str | Path, *, split: str | None = None) -> Iterator[dict[str, Any]]:
    """Stream a tokens artifact: ``{"key", "split", "a_tokens", "b_tokens", "meta"}`` per pair.

    Raises:
        MgdataError: The artifact is missing or incomplete.
    """
    read_artifact_info(path)
    for sample in iter_samples(path, split=split):
        yield {"key": sample["__key__"], "split": sample["__split__"], "meta": decode_json(sample["json"]),
               "a_tokens": decode_npy(sample["a_tokens.npy"]), "b_tokens": decode_npy(sample["b_tokens.npy"])}


__all__ = ["CODEBOOK_FILE", "TokensResult", "build_tokens", "read_tokens"]
