"""Builder of the stems artifact (``data/stems``): every stem stored once per window, plus a pair index.

:func:`build_stems` is plan -> run -> summarise, one function each:

* :func:`_plan` (parent): upstream description, track splits, fingerprint, provenance;
* :func:`_run`: one task per track on the executor (:mod:`mgdata.exec`), in the order
  the source yields tracks: resample to ``stems.sample_rate``; reject non-finite
  audio ("bad audio", never "silent"); scale all stems by one gain if one peaks
  above full scale (PCM_16 FLAC must not clip; relative levels kept); plan windows
  (:func:`mgdata.stems.windows.plan_windows`); drop excluded stem types
  (``stems.exclude_stems``, matched on the stem and on its instrument: unpitched
  parts such as drums and timpani); per window drop stems quieter than
  ``stems.silence_db``; pair the rest in both orders, except near-duplicates (mean
  frame-wise chroma correlation above ``stems.duplicate_corr``: one part doubling
  another). A stem-window that takes part in at least one pair is encoded to FLAC.
  The one :class:`~mgdata.store.ArtifactWriter` stays in the parent and writes the
  task results in input order, so the bytes never depend on the backend or the
  number of workers; the pair index ``pairs.parquet`` (ordered pairs, both
  directions) is the artifact's side file;
* :func:`_summarise`: counts and per-stem maps into the result and the stage report.

Sample ``{track_id}_w{window:03d}_s{stem:02d}``: members ``flac`` + ``json``
(:class:`~mgdata.stems.records.StemWindowRecord`). With ``stems.materialize_pairs``
the self-contained pair shards of earlier versions (``a.flac``, ``b.flac``,
``json``) are also written to the sub-artifact ``<out_dir>/pairs``.

Splits are by track: the source's split when ``stems.keep_source_split`` and the
track has one (the corpus), else :func:`mgdata.splits.assign_splits` over all
track ids with ``stems.split_fractions`` and ``stems.seed``.

Records live in :mod:`mgdata.stems.records`, the per-track task in :mod:`mgdata.stems.worker`
(both re-exported here where public), the pipeline glue that opens a source
(:func:`~mgdata.stems.stage.build_stems_stage`) in :mod:`mgdata.stems.stage`.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgdata.config import ShardConfig
from mgdata.errors import MgdataError
from mgdata.exec import executor_for, get_executor
from mgdata.labels.fields import TrackLabels
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.sources.multitrack import MultitrackTrack
from mgdata.splits import assign_splits
from mgdata.stems.config import StemsConfig
from mgdata.stems.records import PairRecord, StemsResult, StemWindowRecord, pairs_table_bytes
from mgdata.stems.worker import DUP_HOP_S, PEAK_TARGET, TrackOut, TrackTask, chroma_correlation, cut_track
from mgdata.store import ArtifactWriter, Sample, encode_json, fingerprint

if TYPE_CHECKING:
    from mgdata.exec import ExecConfig

BUILDER = "stems"
FORMAT_VERSION = "stems/2"
MEMBERS = ("flac", "json")
PAIR_MEMBERS = ("a.flac", "b.flac", "json")
PAIRS_FILE = "pairs.parquet"
PAIRS_SUBDIR = "pairs"


@dataclass
class _Plan:
    """What the parent decides before any audio is cut."""

    fingerprint: str
    provenance: Provenance
    split_map: dict[str, str]
    tracks: Iterable[MultitrackTrack]


@dataclass
class _Counters:
    """Per-stem tallies folded from the tracks' outputs (become result maps at the end)."""

    excluded: Counter = field(default_factory=Counter)
    silent: Counter = field(default_factory=Counter)


def build_stems(
    tracks: Iterable[MultitrackTrack],
    out_dir: str | Path | None = None,
    *,
    cfg: StemsConfig,
    shards: ShardConfig,
    report: StageReport | None = None,
    track_ids: Sequence[str] | None = None,
    upstream: dict[str, Any] | None = None,
    labels: Mapping[str, TrackLabels] | None = None,
    executor: ExecConfig | None = None,
    progress: bool = True,
) -> StemsResult:
    """Cut tracks into stem-windows stored once and index their ordered pairs (see module docstring).

    Args:
        tracks: Multitrack tracks in a deterministic order (e.g. from
            :func:`mgdata.sources.multitrack.iter_corpus_tracks` or
            :func:`mgdata.sources.moisesdb.iter_moisesdb_tracks`). Streamed when
            ``track_ids`` and ``upstream`` are given; otherwise materialised.
        out_dir: Artifact directory; ``None`` returns the samples in memory.
        cfg: Section ``stems``.
        shards: Section ``shards``.
        report: Stage report to count into (a new one if ``None``).
        track_ids: All track ids the source will yield (seeded split assignment);
            default: the ids of ``tracks``.
        upstream: ``{"source", "source_version", "licence", "fingerprint", ...}`` of
            the input; default: derived from the tracks' content.
        labels: Track id -> labels; tracks not in it take the labels found in
            their own metadata (``track.meta``), else nulls.
        executor: Where the per-track work runs (``None``: serially in this
            process). Never changes the output, so it is in no fingerprint.
        progress: Show a progress bar over tracks.

    Returns:
        :class:`StemsResult`.

    Raises:
        MgdataError: A track's split cannot be determined, a track id repeats, or
            two samples share a key.
    """
    report = report if report is not None else StageReport(BUILDER)
    plan = _plan(tracks, cfg, shards, track_ids, upstream)
    result = StemsResult(out_dir=Path(out_dir) if out_dir is not None else None, fingerprint=plan.fingerprint)
    counters = _run(plan, _tasks(plan, cfg, labels), result, cfg, shards, report, executor, progress)
    _summarise(result, counters, report)
    return result


# --------------------------------------------------------------------------- plan


def _plan(
    tracks: Iterable[MultitrackTrack],
    cfg: StemsConfig,
    shards: ShardConfig,
    track_ids: Sequence[str] | None,
    upstream: dict[str, Any] | None,
) -> _Plan:
    """Upstream description, track splits, fingerprint and provenance (tracks materialised only if needed)."""
    if upstream is None or track_ids is None:
        tracks = list(tracks)
        upstream = upstream or _content_source_info(tracks)
        track_ids = track_ids if track_ids is not None else [t.track_id for t in tracks]
    split_map = assign_splits(track_ids, fractions=cfg.split_fractions, seed=cfg.seed) if track_ids else {}
    fp = fingerprint(FORMAT_VERSION, cfg, shards, upstream.get("fingerprint", ""))
    prov = Provenance(
        builder=BUILDER,
        source=str(upstream.get("source") or "unknown"),
        source_version=str(upstream.get("source_version") or "unspecified"),
        licence=str(upstream.get("licence") or "unknown"),
        seed=cfg.seed,
        params_hash=fp,
        extra={
            "upstream_fingerprint": upstream.get("fingerprint", ""),
            "upstream_path": upstream.get("path", ""),
            "upstream_provenance": upstream.get("provenance", {}),
        },
    )
    return _Plan(fingerprint=fp, provenance=prov, split_map=split_map, tracks=tracks)


def _tasks(plan: _Plan, cfg: StemsConfig, labels: Mapping[str, TrackLabels] | None) -> Iterator[TrackTask]:
    """One task per track in source order, with its split and labels (lazily: the source streams)."""
    sample_prov = plan.provenance.sample_dict()
    seen: set[str] = set()
    for track in plan.tracks:
        if track.track_id in seen:
            raise MgdataError(f"{track.track_id}: track id yielded twice by the source")
        seen.add(track.track_id)
        if cfg.keep_source_split and track.split:
            split = track.split
        elif track.track_id in plan.split_map:
            split = plan.split_map[track.track_id]
        else:
            raise MgdataError(f"{track.track_id}: track id missing from the track_ids given to build_stems")
        yield TrackTask(track, split, _track_labels(track, labels), cfg, sample_prov)


def _content_source_info(tracks: Sequence[MultitrackTrack]) -> dict[str, Any]:
    """Upstream description of in-memory tracks (fingerprint = hash of their audio + metadata)."""
    h = hashlib.sha256()
    for t in tracks:
        h.update(encode_json(t.to_dict()))
        for name, x in t.stems.items():
            h.update(name.encode() + b"\0" + x.tobytes())
    sources = sorted({t.source for t in tracks}) or ["in-memory"]
    licences = sorted({t.licence for t in tracks}) or ["unknown"]
    return {
        "source": "+".join(sources),
        "source_version": "in-memory",
        "licence": "; ".join(licences),
        "fingerprint": h.hexdigest(),
    }


def _track_labels(track: MultitrackTrack, labels: Mapping[str, TrackLabels] | None) -> TrackLabels:
    """The given labels of a track, else those in its own metadata (a MoisesDB genre is its style)."""
    if labels is not None and track.track_id in labels:
        return labels[track.track_id]
    found = TrackLabels.from_dict(track.meta, where=track.track_id)
    if found.style is None and track.meta.get("genre"):
        found = TrackLabels(found.quadrant, found.mood, str(track.meta["genre"]))
    return found


# --------------------------------------------------------------------------- run


def _run(
    plan: _Plan,
    tasks: Iterator[TrackTask],
    result: StemsResult,
    cfg: StemsConfig,
    shards: ShardConfig,
    report: StageReport,
    executor: ExecConfig | None,
    progress: bool,
) -> _Counters:
    """Cut every track on the executor and fold the outputs, in input order, into the result (and the artifact)."""
    counters = _Counters()
    with get_executor(executor_for(executor)) as ex:
        outputs = ex.imap(cut_track, tasks, desc="stems", progress=progress)
        if result.out_dir is None:
            for out in outputs:
                _collect(out, None, None, result, report, counters)
        else:
            _write(plan, outputs, result, cfg, shards, report, counters)
    return counters


def _write(
    plan: _Plan,
    outputs: Iterator[TrackOut],
    result: StemsResult,
    cfg: StemsConfig,
    shards: ShardConfig,
    report: StageReport,
    counters: _Counters,
) -> None:
    """Write the stem-window shards (and pair shards), then ``pairs.parquet``, into ``result.out_dir``."""
    out_dir = result.out_dir
    extra = {"stems": _config_summary(cfg), "format_version": FORMAT_VERSION}
    if not cfg.materialize_pairs and (out_dir / PAIRS_SUBDIR).is_dir():
        shutil.rmtree(out_dir / PAIRS_SUBDIR)  # stale pair shards of an earlier materialize_pairs run
    with contextlib.ExitStack() as stack:
        # Entered first, closed last: artifact.json of data/stems is the final commit.
        writer = stack.enter_context(
            ArtifactWriter(
                out_dir, fingerprint=plan.fingerprint, provenance=plan.provenance, shards=shards, extra_info=extra
            )
        )
        if writer.done_keys:
            report.run("resumed_samples", len(writer.done_keys))
        pair_writer = None
        if cfg.materialize_pairs:
            pair_writer = stack.enter_context(
                ArtifactWriter(
                    out_dir / PAIRS_SUBDIR,
                    fingerprint=plan.fingerprint,
                    provenance=plan.provenance,
                    shards=shards,
                    extra_info=extra,
                )
            )
        for out in outputs:
            _collect(out, writer, pair_writer, result, report, counters)
        writer.add_file(PAIRS_FILE, pairs_table_bytes(result.pairs))
    result.summary = writer.summary


def _collect(
    out: TrackOut,
    writer: ArtifactWriter | None,
    pair_writer: ArtifactWriter | None,
    result: StemsResult,
    report: StageReport,
    counters: _Counters,
) -> None:
    """Fold one track's output into the result and write its samples (parent process, input order)."""
    result.tracks_in += 1
    counters.excluded.update(out.excluded)
    if out.skip_reason is not None:
        report.skip(out.track_id, out.skip_reason)
        if out.skip_counter in ("tracks_too_short", "tracks_bad_audio"):
            setattr(result, out.skip_counter, getattr(result, out.skip_counter) + 1)
        else:
            report.count(out.skip_counter or "tracks_skipped")
        return
    _count(out, result, report, counters)
    done = writer.done_keys if writer is not None else frozenset()
    for rec, flac in out.stem_windows:
        sample = Sample(rec.key, {"flac": flac, "json": rec.to_json()}, seconds=rec.length_s, labels=(rec.stem,))
        if writer is None:
            result.samples.append(sample)
        elif rec.key not in done:
            writer.write(out.split, sample)
    if pair_writer is not None:
        by_key = {rec.key: (rec, flac) for rec, flac in out.stem_windows}
        for pair in out.pairs:
            if pair.pair_key not in pair_writer.done_keys:
                pair_writer.write(out.split, _pair_sample(pair, by_key[pair.a_key], by_key[pair.b_key]))


def _count(out: TrackOut, result: StemsResult, report: StageReport, counters: _Counters) -> None:
    """Add a used track's counts and pair rows to the result."""
    split = out.split
    result.tracks_used += 1
    result.tracks_rescaled += int(out.rescaled)
    result.tracks_per_split[split] = result.tracks_per_split.get(split, 0) + 1
    result.windows += out.windows
    result.windows_per_split[split] = result.windows_per_split.get(split, 0) + out.windows
    result.silent_stem_windows += len(out.silent)
    counters.silent.update(out.silent)
    result.pairs_near_duplicate += out.near_duplicate
    result.stem_windows_unpaired += out.unpaired
    if out.windows_without_pairs:
        report.count("windows_without_pairs", out.windows_without_pairs)
    result.stem_windows += len(out.stem_windows)
    result.stem_windows_per_split[split] = result.stem_windows_per_split.get(split, 0) + len(out.stem_windows)
    result.pairs_per_split[split] = result.pairs_per_split.get(split, 0) + len(out.pairs)
    result.pairs.extend(out.pairs)


def _config_summary(cfg: StemsConfig) -> dict[str, Any]:
    """The ``stems`` entry of ``artifact.json``: the settings a reader needs to interpret the windows."""
    return {
        "window_s": cfg.window_s,
        "overlap_s": cfg.overlap_s,
        "keep_partial": cfg.keep_partial,
        "sample_rate": cfg.sample_rate,
        "silence_db": cfg.silence_db,
        "exclude_stems": list(cfg.exclude_stems),
        "duplicate_corr": cfg.duplicate_corr,
        "pairs_file": PAIRS_FILE,
        "pairs_subartifact": PAIRS_SUBDIR if cfg.materialize_pairs else None,
    }


def _pair_sample(pair: PairRecord, a: tuple[StemWindowRecord, bytes], b: tuple[StemWindowRecord, bytes]) -> Sample:
    """A self-contained pair sample (``stems.materialize_pairs``): both FLACs and the pair's json."""
    ra, rb = a[0], b[0]
    meta = {
        **pair.to_dict(),
        "start_s": ra.start_s,
        "length_s": ra.length_s,
        "instrument_a": ra.instrument,
        "instrument_b": rb.instrument,
        "quadrant": ra.quadrant,
        "mood": ra.mood,
        "style": ra.style,
        "source": ra.source,
        "sample_rate": ra.sample_rate,
        "provenance": ra.provenance,
    }
    return Sample(
        pair.pair_key,
        {"a.flac": a[1], "b.flac": b[1], "json": encode_json(meta)},
        seconds=ra.length_s,
        labels=(f"{pair.stem_a}->{pair.stem_b}",),
    )


# --------------------------------------------------------------------------- summarise


def _summarise(result: StemsResult, counters: _Counters, report: StageReport) -> None:
    """Per-stem maps into the result; every count and map into the stage report."""
    result.excluded_stems = dict(counters.excluded)
    result.silent_by_stem = dict(counters.silent)
    for name in StemsResult._COUNTS:
        report.set(name, getattr(result, name))
    report.set("pairs", result.n_pairs)
    for name in StemsResult._MAPS:
        report.set(name, dict(sorted(getattr(result, name).items())))
    for split, n in sorted(result.pairs_per_split.items()):
        report.set(f"pairs_{split}", n)
    for split, n in sorted(result.stem_windows_per_split.items()):
        report.set(f"stem_windows_{split}", n)


def __getattr__(name: str) -> Any:
    # build_stems_stage (pipeline glue with the default paths) lives in mgdata.stems.stage; importing it
    # lazily keeps this module free of the pipeline package and of an import cycle.
    if name == "build_stems_stage":
        from mgdata.stems.stage import build_stems_stage

        return build_stems_stage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DUP_HOP_S",
    "MEMBERS",
    "PAIRS_FILE",
    "PAIRS_SUBDIR",
    "PAIR_MEMBERS",
    "PEAK_TARGET",
    "StemsResult",
    "build_stems",
    "chroma_correlation",
]
