"""Build token sequences per stem-window: encoder -> condenser -> k-means, one artifact per configuration.

Input: the stems artifact (``data/stems``: one ``flac`` + ``json`` sample per
(track, window, stem), and ``pairs.parquet``). Output
(``data/tokens/{encoder}-s{segment_s}-k{k}/``): one sample per stem-window, keyed
like it, with ``tokens.npy`` (int16, one token per ``segment_s``) and ``json``
(:class:`TokenRecord`), plus the side files ``codebook.npy`` (float32 ``[K, dim]``)
and ``pairs.parquet`` (the stems pair index restricted to pairs whose two
stem-windows have tokens).

Plan -> run -> summarise:

* **plan**: read ``artifact.json`` and the pair index of the stems artifact;
  fingerprint and provenance;
* **run**: one task per track on the executor (:mod:`mgdata.exec`). **Each stem
  is encoded once per track**: the stem's consecutive windows are exact cuts of
  one signal (same samples, same FLAC quantisation), so the task stitches each run
  of overlapping/abutting windows back into the stem's signal, encodes it once
  (frames at the encoder's rate) and cuts every window's frames out of it in frame
  space (window start x frame rate), then averages them per segment. Compared with
  encoding each window alone this costs 1/1.5 of the audio at the default 15 s / 5 s
  overlap and gives frames near a window's edge their real context instead of
  zero padding. A run breaks where a stem-window is absent (silent, or unpaired).
  The segment vectors (12 floats per 0.5 s for chroma) of every split come back to
  the parent, which fits the codebook on the ``tokens.fit_split`` windows only
  (evaluation audio never shapes the alphabet), quantises all windows and writes
  them in input order with the one :class:`~mgdata.store.ArtifactWriter` (so the
  bytes never depend on the backend or the number of workers);
* **summarise**: token statistics over stem-windows (overall and per split) and the
  pair mutual information ``I(a_t; b_t)`` on the held-out pairs against pairs whose B
  comes from another track (does the alphabet still relate the parts?), numbers only.

Encoder frames do not depend on ``segment_s`` or ``k``; the configurations of the
grid share them through the content-addressed frame cache
(``tokens.frames_cache``), keyed by the encoder and the FLAC bytes of the run.

Bad input: an undecodable stem-window, one whose flac rate differs from its json,
or a run with non-finite audio is skipped (``report.skip`` naming the key, reason
"bad stem audio"), a window shorter than one segment likewise ("too short"); with
``tokens.strict`` the first one raises. Input shards are read with checksum
verification.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mgdata.audio import decode_audio
from mgdata.config import ShardConfig
from mgdata.errors import InputError, MgdataError, ParamsError
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.stems.records import PairRecord, StemWindowRecord, pairs_table_bytes, read_pairs
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
from mgdata.tokens.frames import FrameCache, encode_audio, make_encoder
from mgdata.tokens.metrics import TokenStats, token_stats
from mgdata.tokens.vq import codebook_bytes, codebook_sha256, distinct_rows, encode, fit_codebook

if TYPE_CHECKING:
    from mgdata.exec import ExecConfig

FORMAT_VERSION = "tokens/2"
CODEBOOK_FILE = "codebook.npy"
PAIRS_FILE = "pairs.parquet"
MEMBERS = ("json", "tokens.npy")


@dataclass(frozen=True)
class TokenRecord:
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

    def to_dict(self) -> dict[str, Any]:
        """The sample json."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(**{f: data.get(f) for f in cls.__dataclass_fields__})


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


# --------------------------------------------------------------------------- worker side


@dataclass
class _Window:
    """One stem-window as read from the stems artifact (picklable task item)."""

    record: StemWindowRecord
    shard_split: str
    flac: bytes


@dataclass
class _TrackTask:
    track_id: str
    windows: list[_Window]
    cfg: TokensConfig
    encoder_name: str
    segment_s: float


@dataclass
class _TrackOut:
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # key -> skip reason
    runs_encoded: int = 0
    runs_cached: int = 0


_ENCODERS: dict[str, Any] = {}


def _encoder(cfg: TokensConfig, name: str):
    """The encoder of a worker, built once per process and configuration (filterbanks, models)."""
    ident = json.dumps([name, cfg.settings()], sort_keys=True, default=str)
    if ident not in _ENCODERS:
        _ENCODERS[ident] = make_encoder(cfg, name)
    return _ENCODERS[ident]


def _clean(text: str) -> str:
    # Drop "<_io.BytesIO object at 0x...>" so skip reasons (and so the reports) stay deterministic.
    return re.sub(r"<[^>]* at 0x[0-9a-fA-F]+>", "audio bytes", text)


def _encode_track(task: _TrackTask) -> _TrackOut:
    """Segment vectors of every stem-window of one track (each stem encoded once per run of windows)."""
    cfg, out = task.cfg, _TrackOut()
    enc = _encoder(cfg, task.encoder_name)
    cache = FrameCache(cfg.frames_cache, enc.describe()) if cfg.frames_cache else None
    by_stem: dict[int, list[tuple[_Window, np.ndarray, int]]] = {}
    for w in task.windows:
        rec = w.record
        try:
            audio, sr = decode_audio(w.flac)
        except Exception as exc:  # noqa: BLE001 - libsndfile raises several types on bad bytes
            out.failures[rec.key] = f"bad stem audio: {rec.key}: undecodable audio ({_clean(str(exc))})"
            continue
        if sr != rec.sample_rate:
            out.failures[rec.key] = (
                f"bad stem audio: {rec.key}: sample rate mismatch: json declares "
                f"{rec.sample_rate} Hz, the flac is {sr} Hz"
            )
            continue
        start = int(round(rec.start_s * sr))
        by_stem.setdefault(rec.stem_index, []).append((w, audio, start))
    for stem_index in sorted(by_stem):
        items = sorted(by_stem[stem_index], key=lambda it: it[2])
        runs: list[list[tuple[_Window, np.ndarray, int]]] = []
        end = -1
        for it in items:
            if runs and it[2] <= end:
                runs[-1].append(it)
            else:
                runs.append([it])
            end = max(end, it[2] + len(it[1]))
        for run in runs:
            _encode_run(run, enc, cache, task.segment_s, cfg.keep_partial, out)
    return out


def _encode_run(run, enc, cache: FrameCache | None, segment_s: float, keep_partial: bool, out: _TrackOut) -> None:
    """Stitch one run of windows, encode it once and condense every window's frames."""
    sr = run[0][0].record.sample_rate
    run_start = run[0][2]
    n = max(start + len(audio) for _, audio, start in run) - run_start
    signal = np.zeros(n, dtype=np.float32)
    for _, audio, start in run:
        # Overlaps hold identical samples (exact cuts of one signal), so the order of writes does not matter.
        signal[start - run_start : start - run_start + len(audio)] = audio
    keys = [w.record.key for w, _, _ in run]
    where = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"
    frames = None
    if cache is not None:
        ident = b"".join(
            w.record.key.encode() + b"\0" + str(start).encode() + b"\0" + hashlib.sha256(w.flac).digest()
            for w, _, start in run
        )
        frames = cache.get(ident)
    if frames is None:
        try:
            frames = encode_audio(enc, signal, sr, where=where)
        except InputError as exc:
            for key in keys:
                out.failures[key] = f"bad stem audio: {exc.where}: {exc.message}"
            return
        out.runs_encoded += 1
        if cache is not None:
            cache.put(ident, frames)
    else:
        out.runs_cached += 1
    rate = enc.frame_rate
    for w, audio, start in run:
        rec = w.record
        f0 = int(round((start - run_start) / sr * rate))
        duration_s = len(audio) / sr
        f1 = f0 + int(np.ceil(duration_s * rate - 1e-9))
        try:
            vecs = condense(frames[f0:f1], rate, segment_s, keep_partial=keep_partial, duration_s=duration_s)
        except ValueError as exc:
            out.failures[rec.key] = f"bad stem audio: {rec.key}: bad encoder frames: {exc}"
            continue
        if len(vecs) == 0:
            out.failures[rec.key] = f"too short: {rec.key}: {duration_s:.3f} s < one segment of {segment_s} s"
            continue
        out.vectors[rec.key] = vecs


# --------------------------------------------------------------------------- parent side


def _read_windows(stems_dir: Path, report: StageReport, strict: bool) -> Iterator[list[_Window]]:
    """Stem-windows of the stems artifact grouped by track (a track's windows are consecutive)."""
    group: list[_Window] = []
    finished: set[str] = set()
    for sample in iter_samples(stems_dir, verify=True):
        key = sample["__key__"]
        try:
            if "json" not in sample or "flac" not in sample:
                raise InputError(key, "bad metadata: sample lacks its json or flac member")
            try:
                rec = StemWindowRecord.from_dict(decode_json(sample["json"]))
            except ValueError as exc:
                raise InputError(key, f"bad metadata: unreadable json ({_clean(str(exc))})") from None
            if rec.split != sample["__split__"]:
                raise InputError(key, f"bad metadata: json split {rec.split!r} but shard split {sample['__split__']!r}")
        except InputError as exc:
            if strict:
                raise
            report.skip(key, exc.message)
            report.count("stem_windows_bad_metadata")
            continue
        if group and group[0].record.track_id != rec.track_id:
            finished.add(group[0].record.track_id)
            yield group
            group = []
        if rec.track_id in finished:
            raise MgdataError(
                f"{stems_dir}: stem-windows of track {rec.track_id!r} are not consecutive "
                "(the stems artifact is not in builder order: rebuild it)"
            )
        group.append(_Window(rec, sample["__split__"], sample["flac"]))
    if group:
        yield group


def pair_mutual_information(pairs: list[tuple[np.ndarray, np.ndarray]], k: int) -> float:
    """Plug-in mutual information ``I(a_t; b_t)`` in bits over the aligned tokens of pairs.

    Args:
        pairs: ``(a_tokens, b_tokens)`` per pair (aligned in time; the shorter length is used).
        k: Alphabet size.

    Returns:
        The MI of the joint histogram of (a_t, b_t) over all pairs and times (0.0 without tokens).
    """
    joint = np.zeros((k, k), dtype=np.float64)
    for a, b in pairs:
        n = min(len(a), len(b))
        if n:
            np.add.at(joint, (np.asarray(a[:n], np.int64), np.asarray(b[:n], np.int64)), 1.0)
    total = joint.sum()
    if total == 0:
        return 0.0
    p = joint / total
    pa, pb = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log2(p[nz] / (pa @ pb)[nz])).sum())


def _pair_mi(pairs: list[PairRecord], tokens: dict[str, np.ndarray], k: int, fit_split: str) -> dict[str, float]:
    """MI of held-out pairs vs the same A tokens against a B of another track (rotated by half the list)."""
    held = [p for p in pairs if p.split != fit_split]
    if not held:
        return {"mi_bits": 0.0, "mi_shuffled_bits": 0.0, "mi_pairs": 0}
    real = [(tokens[p.a_key], tokens[p.b_key]) for p in held]
    shift = len(held) // 2
    shuffled = []
    for i, p in enumerate(held):
        # First partner at least half the list away whose track differs (deterministic, no RNG).
        for j in range(len(held)):
            q = held[(i + shift + j) % len(held)]
            if q.track_id != p.track_id:
                shuffled.append((tokens[p.a_key], tokens[q.b_key]))
                break
    return {
        "mi_bits": pair_mutual_information(real, k),
        "mi_shuffled_bits": pair_mutual_information(shuffled, k),
        "mi_pairs": len(held),
    }


def build_tokens(
    stems_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    cfg: TokensConfig,
    encoder: str | None = None,
    segment_s: float,
    k: int,
    shards: ShardConfig,
    report: StageReport | None = None,
    name: str | None = None,
    executor: ExecConfig | None = None,
    progress: bool = False,
) -> TokensResult:
    """Tokenise every stem-window of the stems artifact for one (encoder, segment_s, k) configuration.

    Args:
        stems_dir: The stems artifact (``data/stems``).
        out_dir: Artifact directory to write (shards, ``codebook.npy``, ``pairs.parquet``,
            ``artifact.json``); ``None`` writes nothing and only returns results.
        cfg: Section ``tokens``.
        encoder: Encoder name (default: ``cfg.encoder``).
        segment_s: Segment length in seconds (one token per segment).
        k: Alphabet size.
        shards: Section ``shards``.
        report: Stage report to count into (a new one if ``None``).
        name: Configuration name (default ``config_name(encoder, segment_s, k)``).
        executor: Where the per-track encoding runs (``None``: serially in this process);
            never changes the output, so it is in no fingerprint.
        progress: Show a progress bar over tracks.

    Returns:
        A :class:`TokensResult`.

    Raises:
        ParamsError: (``tokens.k``) fewer training segments than ``k``, or a bad ``segment_s``/``k``/encoder.
        InputError: A bad input while ``cfg.strict`` is set.
        MgdataError: The input artifact is missing, incomplete or out of order.
    """
    # ---- plan
    stems_dir = Path(stems_dir)
    encoder = encoder or cfg.encoder
    segment_s, k = float(segment_s), int(k)
    if not segment_s >= cfg.hop_s:
        raise ParamsError("tokens.segment_s", f"expected >= hop_s ({cfg.hop_s} s), got {segment_s}")
    if not 2 <= k <= 32768:
        raise ParamsError("tokens.k", f"expected 2 <= k <= 32768 (int16 tokens), got {k}")
    name = name or config_name(encoder, segment_s, k)
    report = report if report is not None else StageReport("tokens")
    info = read_artifact_info(stems_dir)
    up_prov = info.get("provenance", {})
    pairs_in = read_pairs(stems_dir)
    enc_desc = make_encoder(cfg, encoder).describe()
    fp = fingerprint(FORMAT_VERSION, cfg.settings(), encoder, segment_s, k, shards, info["fingerprint"], enc_desc)

    # ---- run: encode every stem-window (workers), in input order
    from mgdata.exec import ExecConfig as _ExecConfig
    from mgdata.exec import get_executor

    records: list[_Window] = []  # input order, flac dropped after encoding
    vectors: dict[str, np.ndarray] = {}
    failures: dict[str, str] = {}
    counts = {"runs_encoded": 0, "runs_cached": 0}

    def tasks() -> Iterator[_TrackTask]:
        for group in _read_windows(stems_dir, report, cfg.strict):
            records.extend(_Window(w.record, w.shard_split, b"") for w in group)
            yield _TrackTask(group[0].record.track_id, group, cfg, encoder, segment_s)

    with get_executor(executor if executor is not None else _ExecConfig(backend="serial")) as ex:
        for out in ex.imap(_encode_track, tasks(), desc=f"tokens {name}", progress=progress):
            vectors.update(out.vectors)
            failures.update(out.failures)
            counts["runs_encoded"] += out.runs_encoded
            counts["runs_cached"] += out.runs_cached
    for w in records:
        reason = failures.get(w.record.key)
        if reason is not None:
            if cfg.strict:
                raise InputError(w.record.key, reason)
            report.skip(w.record.key, reason)

    # ---- fit on the training split only, in a canonical order
    train_keys = sorted(w.record.key for w in records if w.record.split == cfg.fit_split and w.record.key in vectors)
    dim = next((int(v.shape[1]) for v in vectors.values()), int(enc_desc.get("dim", 1)))
    train = np.concatenate([vectors[key] for key in train_keys]) if train_keys else np.zeros((0, dim), np.float32)
    try:
        codebook = fit_codebook(
            train, k, seed=cfg.seed, batch_size=cfg.batch_size, max_iter=cfg.max_iter, n_init=cfg.n_init
        )
    except ParamsError as exc:
        if exc.key != "tokens.k":
            raise
        raise ParamsError(
            "tokens.k",
            f"k={k} needs at least {k} training segments, but the '{cfg.fit_split}' split of {stems_dir} has only "
            f"{len(train)} segments of {segment_s} s ({len(train_keys)} stem-windows): use a smaller tokens.k or "
            "tokens.segment_s, or a larger corpus",
        ) from None
    cb_bytes = codebook_bytes(codebook)
    cb_sha = codebook_sha256(codebook)
    tokens = {w.record.key: encode(vectors[w.record.key], codebook) for w in records if w.record.key in vectors}
    pairs = [p for p in pairs_in if p.a_key in tokens and p.b_key in tokens]

    # ---- write
    prov = Provenance(
        builder="tokens",
        source=f"stems ({up_prov.get('source', str(stems_dir))})",
        source_version=str(info["fingerprint"]),
        licence=str(up_prov.get("licence") or "see upstream artifact"),
        seed=cfg.seed,
        params_hash=fp,
        extra={
            "config": name,
            "encoder_name": encoder,
            "segment_s": segment_s,
            "k": k,
            "encoder": enc_desc,
            "codebook_sha256": cb_sha,
        },
    )
    sample_prov = prov.sample_dict() | {"upstream_fingerprint": str(info["fingerprint"])}
    if out_dir is not None:
        out_dir = Path(out_dir)
        extra = {
            "tokens": {
                "config": name,
                "encoder_name": encoder,
                "segment_s": segment_s,
                "k": k,
                "dim": dim,
                "codebook": CODEBOOK_FILE,
                "codebook_sha256": cb_sha,
                "pairs": PAIRS_FILE,
                "encoder": enc_desc,
            }
        }
        with ArtifactWriter(out_dir, fingerprint=fp, provenance=prov, shards=shards, extra_info=extra) as writer:
            if writer.done_keys:
                report.run("resumed_samples", len(writer.done_keys))
            for w in records:
                rec = w.record
                if rec.key not in tokens or rec.key in writer.done_keys:
                    continue
                toks = tokens[rec.key]
                doc = TokenRecord(
                    key=rec.key,
                    track_id=rec.track_id,
                    window_index=rec.window_index,
                    stem_index=rec.stem_index,
                    stem=rec.stem,
                    split=rec.split,
                    quadrant=rec.quadrant,
                    mood=rec.mood,
                    style=rec.style,
                    segment_s=segment_s,
                    k=k,
                    encoder=encoder,
                    codebook_sha256=cb_sha,
                    n_tokens=int(len(toks)),
                    provenance=sample_prov,
                )
                writer.write(
                    rec.split,
                    Sample(
                        rec.key,
                        {"tokens.npy": _npy(toks), "json": encode_json(doc.to_dict())},
                        seconds=len(toks) * segment_s,
                        labels=(rec.stem,),
                    ),
                )
            writer.add_file(CODEBOOK_FILE, cb_bytes)
            writer.add_file(PAIRS_FILE, pairs_table_bytes(pairs))

    # ---- summarise
    split_of = {w.record.key: w.record.split for w in records}
    kept = [w.record.key for w in records if w.record.key in tokens]
    stats = {"all": token_stats((tokens[key] for key in kept), k)}
    for split in sorted({split_of[key] for key in kept}):
        stats[split] = token_stats((tokens[key] for key in kept if split_of[key] == split), k)
    counts.update(
        {
            "stem_windows_in": len(records),
            "stem_windows_written": len(tokens),
            "stem_windows_skipped": len(records) - len(tokens),
            "train_stem_windows": len(train_keys),
            "train_segments": int(len(train)),
            "codebook_distinct_centroids": distinct_rows(codebook),
            "pairs_in": len(pairs_in),
            "pairs_kept": len(pairs),
        }
    )
    result = TokensResult(
        name=name,
        encoder_name=encoder,
        segment_s=segment_s,
        k=k,
        codebook=codebook,
        codebook_sha256=cb_sha,
        encoder=enc_desc,
        fingerprint=fp,
        stats=stats,
        counts=counts,
        pair_mi=_pair_mi(pairs, tokens, k, cfg.fit_split),
        tokens=tokens,
        pairs=pairs,
        out_dir=out_dir,
    )
    # Encoded/cached runs depend on what ran before (the frame cache), not on the data: log only.
    for cname in ("runs_encoded", "runs_cached"):
        report.run(cname, counts[cname])
    for mname, value in result.metrics().items():
        if mname not in ("runs_encoded", "runs_cached"):
            report.set(mname, value)
    report.set("config", name)
    report.set("encoder", enc_desc)
    report.set("codebook_sha256", cb_sha)
    report.set("splits", {s: st.to_dict() for s, st in sorted(stats.items()) if s != "all"})
    return result


def _npy(tokens: np.ndarray) -> bytes:
    return encode_npy(np.asarray(tokens, dtype=np.int16))


def read_tokens(path: str | Path, *, split: str | None = None) -> Iterator[dict[str, Any]]:
    """Stream a tokens artifact: ``{"key", "split", "tokens", "meta"}`` per stem-window.

    Raises:
        MgdataError: The artifact is missing or incomplete.
    """
    read_artifact_info(path)
    for sample in iter_samples(path, split=split):
        yield {
            "key": sample["__key__"],
            "split": sample["__split__"],
            "meta": decode_json(sample["json"]),
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
    "PAIRS_FILE",
    "TokenRecord",
    "TokensResult",
    "build_tokens",
    "pair_mutual_information",
    "read_token_pairs",
    "read_tokens",
]
