"""Build token sequences per stem-window: encoder -> condenser -> k-means, one artifact per configuration.

Input: the stems artifact (``data/stems``: one ``flac`` + ``json`` sample per
(track, window, stem), and ``pairs.parquet``). Output
(``data/tokens/{encoder}-s{segment_s}-k{k}/``): one sample per stem-window, keyed
like it, with ``tokens.npy`` (int16, one token per ``segment_s``) and ``json``
(:class:`~mgdata.tokens.records.TokenRecord`), plus the side files ``codebook.npy``
(float32 ``[K, dim]``) and ``pairs.parquet`` (the stems pair index restricted to pairs
whose two stem-windows have tokens).

:func:`build_tokens` is plan -> run -> summarise, one function each:

* :func:`_plan`: check ``segment_s`` and ``k``, read ``artifact.json`` and the pair index
  of the stems artifact; fingerprint;
* :func:`_run`: one task per track on the executor (:mod:`mgdata.exec`), each stem encoded
  once per track (:mod:`mgdata.tokens.worker`). The segment vectors (12 floats per 0.5 s for
  chroma) of every split come back to the parent, which fits the codebook on the
  ``tokens.fit_split`` windows only (evaluation audio never shapes the alphabet), quantises
  all windows and writes them in input order with the one
  :class:`~mgdata.store.ArtifactWriter` (so the bytes never depend on the backend or the
  number of workers);
* :func:`_summarise`: token statistics over stem-windows (overall and per split) and the
  pair mutual information ``I(a_t; b_t)`` on the held-out pairs against pairs whose B
  comes from another track (:func:`~mgdata.tokens.metrics.held_out_pair_mi`), numbers only.

Encoder frames do not depend on ``segment_s`` or ``k``; the configurations of the
grid share them through the content-addressed frame cache
(``tokens.frames_cache``), keyed by the encoder and the FLAC bytes of the run.

Bad input: an undecodable stem-window, one whose flac rate differs from its json,
or a run with non-finite audio is skipped (``report.skip`` naming the key, reason
"bad stem audio"), a window shorter than one segment likewise ("too short"); with
``tokens.strict`` the first one raises. Input shards are read with checksum
verification.

Records and readers live in :mod:`mgdata.tokens.records` (re-exported here), the per-track
task in :mod:`mgdata.tokens.worker`, the stage glue in :mod:`mgdata.tokens.stage`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mgdata.config import ShardConfig
from mgdata.errors import InputError, MgdataError, ParamsError
from mgdata.exec import executor_for, get_executor
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.stems.records import PairRecord, StemWindowRecord, pairs_table_bytes, read_pairs
from mgdata.store import ArtifactWriter, Sample, fingerprint, iter_samples, read_artifact_info
from mgdata.tokens.config import TokensConfig, config_name
from mgdata.tokens.frames import encode_audio, make_encoder
from mgdata.tokens.metrics import held_out_pair_mi, pair_mutual_information, token_stats
from mgdata.tokens.records import (
    CODEBOOK_FILE,
    FORMAT_VERSION,
    MEMBERS,
    PAIRS_FILE,
    TokenRecord,
    TokensResult,
    read_token_pairs,
    read_tokens,
    tokens_npy,
)
from mgdata.tokens.vq import codebook_bytes, codebook_sha256, distinct_rows, encode, fit_codebook
from mgdata.tokens.worker import StemWindow, TrackTask, clean_reason, encode_track

if TYPE_CHECKING:
    from mgdata.exec import ExecConfig


@dataclass(frozen=True)
class _Plan:
    """What one configuration builds from, fixed before any audio is read."""

    stems_dir: Path
    name: str
    encoder: str
    segment_s: float
    k: int
    info: dict[str, Any]  # the stems artifact.json
    pairs_in: list[PairRecord]
    enc_desc: dict[str, Any]
    fingerprint: str


@dataclass
class _Run:
    """What the run produced: stem-windows in input order, their tokens, the codebook and counters."""

    records: list[StemWindow]  # flac dropped after encoding
    tokens: dict[str, np.ndarray]
    pairs: list[PairRecord]
    codebook: np.ndarray
    codebook_sha256: str
    dim: int
    train_keys: list[str]
    train_segments: int
    counts: dict[str, int]


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
    progress: bool = True,
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
    plan = _plan(Path(stems_dir), cfg, encoder or cfg.encoder, float(segment_s), int(k), shards, name)
    report = report if report is not None else StageReport("tokens")
    out_dir = Path(out_dir) if out_dir is not None else None
    run = _run(plan, cfg, out_dir, shards, report, executor, progress)
    return _summarise(plan, run, cfg, out_dir, report)


# --------------------------------------------------------------------------- plan


def _plan(
    stems_dir: Path, cfg: TokensConfig, encoder: str, segment_s: float, k: int, shards: ShardConfig, name: str | None
) -> _Plan:
    """Check the configuration, read the stems artifact's description and pair index, fingerprint."""
    if not segment_s >= cfg.hop_s:
        raise ParamsError("tokens.segment_s", f"expected >= hop_s ({cfg.hop_s} s), got {segment_s}")
    if not 2 <= k <= 32768:
        raise ParamsError("tokens.k", f"expected 2 <= k <= 32768 (int16 tokens), got {k}")
    info = read_artifact_info(stems_dir)
    pairs_in = read_pairs(stems_dir)
    enc_desc = make_encoder(cfg, encoder).describe()
    fp = fingerprint(FORMAT_VERSION, cfg.settings(), encoder, segment_s, k, shards, info["fingerprint"], enc_desc)
    return _Plan(
        stems_dir=stems_dir,
        name=name or config_name(encoder, segment_s, k),
        encoder=encoder,
        segment_s=segment_s,
        k=k,
        info=info,
        pairs_in=pairs_in,
        enc_desc=enc_desc,
        fingerprint=fp,
    )


# --------------------------------------------------------------------------- run


def _run(
    plan: _Plan,
    cfg: TokensConfig,
    out_dir: Path | None,
    shards: ShardConfig,
    report: StageReport,
    executor: ExecConfig | None,
    progress: bool,
) -> _Run:
    """Encode every stem-window (workers), fit the codebook, quantise, and write the artifact."""
    records, vectors, counts = _encode(plan, cfg, report, executor, progress)
    # Fit on the training split only, in a canonical order.
    train_keys = sorted(w.record.key for w in records if w.record.split == cfg.fit_split and w.record.key in vectors)
    dim = next((int(v.shape[1]) for v in vectors.values()), int(plan.enc_desc.get("dim", 1)))
    train = np.concatenate([vectors[key] for key in train_keys]) if train_keys else np.zeros((0, dim), np.float32)
    codebook = _fit(plan, cfg, train, len(train_keys))
    tokens = {w.record.key: encode(vectors[w.record.key], codebook) for w in records if w.record.key in vectors}
    run = _Run(
        records=records,
        tokens=tokens,
        pairs=[p for p in plan.pairs_in if p.a_key in tokens and p.b_key in tokens],
        codebook=codebook,
        codebook_sha256=codebook_sha256(codebook),
        dim=dim,
        train_keys=train_keys,
        train_segments=int(len(train)),
        counts=counts,
    )
    if out_dir is not None:
        _write(plan, run, cfg, out_dir, shards, report)
    return run


def _encode(
    plan: _Plan, cfg: TokensConfig, report: StageReport, executor: ExecConfig | None, progress: bool
) -> tuple[list[StemWindow], dict[str, np.ndarray], dict[str, int]]:
    """Segment vectors of every stem-window, one task per track; failures skipped (or raised when strict)."""
    records: list[StemWindow] = []  # input order, flac dropped after encoding
    vectors: dict[str, np.ndarray] = {}
    failures: dict[str, str] = {}
    counts = {"runs_encoded": 0, "runs_cached": 0}

    def tasks() -> Iterator[TrackTask]:
        for group in _read_windows(plan.stems_dir, report, cfg.strict):
            records.extend(StemWindow(w.record, w.shard_split, b"") for w in group)
            # This module's encode_audio (not the worker's import), so a wrapper set here sees the work.
            yield TrackTask(group[0].record.track_id, group, cfg, plan.encoder, plan.segment_s, encode_audio)

    with get_executor(executor_for(executor)) as ex:
        for out in ex.imap(encode_track, tasks(), desc=f"tokens {plan.name}", progress=progress):
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
    return records, vectors, counts


def _read_windows(stems_dir: Path, report: StageReport, strict: bool) -> Iterator[list[StemWindow]]:
    """Stem-windows of the stems artifact grouped by track (a track's windows are consecutive)."""
    group: list[StemWindow] = []
    finished: set[str] = set()
    for sample in iter_samples(stems_dir, verify=True):
        key = sample["__key__"]
        try:
            rec = _window_record(sample)
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
        group.append(StemWindow(rec, sample["__split__"], sample["flac"]))
    if group:
        yield group


def _window_record(sample: dict[str, Any]) -> StemWindowRecord:
    """The json of one stems sample, checked against its members and its shard's split."""
    key = sample["__key__"]
    if "json" not in sample or "flac" not in sample:
        raise InputError(key, "bad metadata: sample lacks its json or flac member")
    try:
        rec = StemWindowRecord.from_json(sample["json"], key)
    except ValueError as exc:
        raise InputError(key, f"bad metadata: unreadable json ({clean_reason(str(exc))})") from None
    if rec.split != sample["__split__"]:
        raise InputError(key, f"bad metadata: json split {rec.split!r} but shard split {sample['__split__']!r}")
    return rec


def _fit(plan: _Plan, cfg: TokensConfig, train: np.ndarray, n_train_windows: int) -> np.ndarray:
    """The k-means codebook of the training segments; too few of them is a ``tokens.k`` error naming the counts."""
    try:
        return fit_codebook(
            train, plan.k, seed=cfg.seed, batch_size=cfg.batch_size, max_iter=cfg.max_iter, n_init=cfg.n_init
        )
    except ParamsError as exc:
        if exc.key != "tokens.k":
            raise
        raise ParamsError(
            "tokens.k",
            f"k={plan.k} needs at least {plan.k} training segments, but the '{cfg.fit_split}' split of "
            f"{plan.stems_dir} has only {len(train)} segments of {plan.segment_s} s ({n_train_windows} stem-windows): "
            "use a smaller tokens.k or tokens.segment_s, or a larger corpus",
        ) from None


def _write(plan: _Plan, run: _Run, cfg: TokensConfig, out_dir: Path, shards: ShardConfig, report: StageReport) -> None:
    """Write the samples in input order, then ``codebook.npy`` and ``pairs.parquet`` as checksummed side files."""
    up_prov = plan.info.get("provenance", {})
    up_fp = str(plan.info["fingerprint"])
    prov = Provenance(
        builder="tokens",
        source=f"stems ({up_prov.get('source', str(plan.stems_dir))})",
        source_version=up_fp,
        licence=str(up_prov.get("licence") or "see upstream artifact"),
        seed=cfg.seed,
        params_hash=plan.fingerprint,
        extra={
            "config": plan.name,
            "encoder_name": plan.encoder,
            "segment_s": plan.segment_s,
            "k": plan.k,
            "encoder": plan.enc_desc,
            "codebook_sha256": run.codebook_sha256,
        },
    )
    sample_prov = prov.sample_dict() | {"upstream_fingerprint": up_fp}
    extra = {
        "tokens": {
            "config": plan.name,
            "encoder_name": plan.encoder,
            "segment_s": plan.segment_s,
            "k": plan.k,
            "dim": run.dim,
            "codebook": CODEBOOK_FILE,
            "codebook_sha256": run.codebook_sha256,
            "pairs": PAIRS_FILE,
            "encoder": plan.enc_desc,
        }
    }
    with ArtifactWriter(out_dir, fingerprint=plan.fingerprint, provenance=prov, shards=shards, extra_info=extra) as w:
        if w.done_keys:
            report.run("resumed_samples", len(w.done_keys))
        for win in run.records:
            rec = win.record
            if rec.key in run.tokens and rec.key not in w.done_keys:
                w.write(rec.split, _sample(plan, rec, run.tokens[rec.key], run.codebook_sha256, sample_prov))
        w.add_file(CODEBOOK_FILE, codebook_bytes(run.codebook))
        w.add_file(PAIRS_FILE, pairs_table_bytes(run.pairs))


def _sample(plan: _Plan, rec: StemWindowRecord, toks: np.ndarray, cb_sha: str, sample_prov: dict[str, Any]) -> Sample:
    """The token sample of one stem-window: its labels copied from the stem-window."""
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
        segment_s=plan.segment_s,
        k=plan.k,
        encoder=plan.encoder,
        codebook_sha256=cb_sha,
        n_tokens=int(len(toks)),
        provenance=sample_prov,
    )
    return Sample(
        rec.key,
        {"tokens.npy": tokens_npy(toks), "json": doc.to_json()},
        seconds=len(toks) * plan.segment_s,
        labels=(rec.stem,),
    )


# --------------------------------------------------------------------------- summarise


def _summarise(plan: _Plan, run: _Run, cfg: TokensConfig, out_dir: Path | None, report: StageReport) -> TokensResult:
    """Token statistics (overall and per split), counters and pair MI into the result and the stage report."""
    tokens, records, k = run.tokens, run.records, plan.k
    split_of = {w.record.key: w.record.split for w in records}
    kept = [w.record.key for w in records if w.record.key in tokens]
    stats = {"all": token_stats((tokens[key] for key in kept), k)}
    for split in sorted({split_of[key] for key in kept}):
        stats[split] = token_stats((tokens[key] for key in kept if split_of[key] == split), k)
    counts = run.counts
    counts.update(
        {
            "stem_windows_in": len(records),
            "stem_windows_written": len(tokens),
            "stem_windows_skipped": len(records) - len(tokens),
            "train_stem_windows": len(run.train_keys),
            "train_segments": run.train_segments,
            "codebook_distinct_centroids": distinct_rows(run.codebook),
            "pairs_in": len(plan.pairs_in),
            "pairs_kept": len(run.pairs),
        }
    )
    result = TokensResult(
        name=plan.name,
        encoder_name=plan.encoder,
        segment_s=plan.segment_s,
        k=k,
        codebook=run.codebook,
        codebook_sha256=run.codebook_sha256,
        encoder=plan.enc_desc,
        fingerprint=plan.fingerprint,
        stats=stats,
        counts=counts,
        pair_mi=held_out_pair_mi(run.pairs, tokens, k, cfg.fit_split),
        tokens=tokens,
        pairs=run.pairs,
        out_dir=out_dir,
    )
    # Encoded/cached runs depend on what ran before (the frame cache), not on the data: log only.
    for cname in ("runs_encoded", "runs_cached"):
        report.run(cname, counts[cname])
    for mname, value in result.metrics().items():
        if mname not in ("runs_encoded", "runs_cached"):
            report.set(mname, value)
    report.set("config", plan.name)
    report.set("encoder", plan.enc_desc)
    report.set("codebook_sha256", run.codebook_sha256)
    report.set("splits", {s: st.to_dict() for s, st in sorted(stats.items()) if s != "all"})
    return result


__all__ = [
    "CODEBOOK_FILE",
    "FORMAT_VERSION",
    "MEMBERS",
    "PAIRS_FILE",
    "TokenRecord",
    "TokensResult",
    "build_tokens",
    "pair_mutual_information",
    "read_token_pairs",
    "read_tokens",
]
