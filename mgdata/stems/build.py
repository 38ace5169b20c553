"""Builder of the stems artifact (``data/stems``): every stem stored once per window, plus a pair index.

Plan -> run -> summarise:

* **plan** (parent): upstream description, track splits, fingerprint, provenance;
* **run**: one task per track on the executor (:mod:`mgdata.exec`), in the order
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
  number of workers;
* **summarise**: counts into the result and the stage report, and the pair index
  ``pairs.parquet`` (ordered pairs, both directions) as an artifact side file.

Sample ``{track_id}_w{window:03d}_s{stem:02d}``: members ``flac`` + ``json``
(:class:`~mgdata.stems.records.StemWindowRecord`). With ``stems.materialize_pairs``
the self-contained pair shards of earlier versions (``a.flac``, ``b.flac``,
``json``) are also written to the sub-artifact ``<out_dir>/pairs``.

Splits are by track: the source's split when ``stems.keep_source_split`` and the
track has one (the corpus), else :func:`mgdata.splits.assign_splits` over all
track ids with ``stems.split_fractions`` and ``stems.seed``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mgdata.audio import encode_flac, rms_db
from mgdata.config import ShardConfig
from mgdata.errors import MgdataError
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.sources.multitrack import MultitrackTrack
from mgdata.splits import assign_splits
from mgdata.stems.config import StemsConfig
from mgdata.stems.pairs import is_excluded, normalise_stem_name, ordered_pairs
from mgdata.stems.records import (
    PairRecord,
    StemWindowRecord,
    TrackLabels,
    pair_key,
    pairs_table_bytes,
    stem_window_key,
)
from mgdata.stems.windows import cut_window, plan_windows
from mgdata.store import ArtifactWriter, Sample, encode_json, fingerprint

if TYPE_CHECKING:
    from mgdata.exec import ExecConfig

BUILDER = "stems"
FORMAT_VERSION = "stems/2"
MEMBERS = ("flac", "json")
PAIR_MEMBERS = ("a.flac", "b.flac", "json")
PAIRS_FILE = "pairs.parquet"
PAIRS_SUBDIR = "pairs"
# Headroom left when a track peaking above full scale is scaled down.
PEAK_TARGET = 0.99
# Chroma frame hop of the near-duplicate test (s): 10 frames/s is plenty to compare two parts' pitch classes.
DUP_HOP_S = 0.1


@dataclass
class StemsResult:
    """What :func:`build_stems` produced.

    Attributes:
        out_dir: Artifact directory, or ``None`` when built in memory.
        fingerprint: Content fingerprint (params + shards + upstream).
        tracks_in: Tracks received from the source (after its own skips).
        tracks_used: Tracks that gave at least one window.
        windows: Windows planned over the used tracks.
        stem_windows: Stem-window samples (stored once each).
        windows_per_split: Split -> windows.
        stem_windows_per_split: Split -> stem-window samples.
        pairs_per_split: Split -> ordered pairs in the index.
        tracks_per_split: Split -> tracks used.
        silent_stem_windows: (stem, window) slots dropped as silent.
        silent_by_stem: Normalised stem type -> windows where it was silent.
        excluded_stems: Normalised stem type -> tracks where it was excluded.
        pairs_near_duplicate: Ordered pairs dropped as near-duplicates (both directions count).
        stem_windows_unpaired: Non-silent stem-windows left without a partner (not stored).
        tracks_too_short: Tracks shorter than one window.
        tracks_bad_audio: Tracks with non-finite samples.
        tracks_rescaled: Tracks scaled down because a stem exceeded full scale.
        samples: The stem-window samples, only when ``out_dir`` is ``None``.
        pairs: The pair index rows (in write order).
        summary: The writer's ``artifact.json`` content, when written.
    """

    out_dir: Path | None
    fingerprint: str
    tracks_in: int = 0
    tracks_used: int = 0
    windows: int = 0
    stem_windows: int = 0
    windows_per_split: dict[str, int] = field(default_factory=dict)
    stem_windows_per_split: dict[str, int] = field(default_factory=dict)
    pairs_per_split: dict[str, int] = field(default_factory=dict)
    tracks_per_split: dict[str, int] = field(default_factory=dict)
    silent_stem_windows: int = 0
    silent_by_stem: dict[str, int] = field(default_factory=dict)
    excluded_stems: dict[str, int] = field(default_factory=dict)
    pairs_near_duplicate: int = 0
    stem_windows_unpaired: int = 0
    tracks_too_short: int = 0
    tracks_bad_audio: int = 0
    tracks_rescaled: int = 0
    samples: list[Sample] = field(default_factory=list, repr=False)
    pairs: list[PairRecord] = field(default_factory=list, repr=False)
    summary: dict[str, Any] | None = None

    _COUNTS = (
        "tracks_in",
        "tracks_used",
        "windows",
        "stem_windows",
        "silent_stem_windows",
        "pairs_near_duplicate",
        "stem_windows_unpaired",
        "tracks_too_short",
        "tracks_bad_audio",
        "tracks_rescaled",
    )
    _MAPS = (
        "windows_per_split",
        "stem_windows_per_split",
        "pairs_per_split",
        "tracks_per_split",
        "silent_by_stem",
        "excluded_stems",
    )

    @property
    def n_pairs(self) -> int:
        """Total ordered pairs over all splits."""
        return sum(self.pairs_per_split.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (no samples, no pair rows)."""
        return {
            "out_dir": str(self.out_dir) if self.out_dir else None,
            "fingerprint": self.fingerprint,
            "pairs": self.n_pairs,
            **{k: getattr(self, k) for k in self._COUNTS},
            **{k: dict(sorted(getattr(self, k).items())) for k in self._MAPS},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StemsResult:
        """Inverse of :meth:`to_dict` (samples, pair rows and summary are not restored)."""
        return cls(
            out_dir=Path(data["out_dir"]) if data.get("out_dir") else None,
            fingerprint=data["fingerprint"],
            **{k: data[k] for k in (*cls._COUNTS, *cls._MAPS) if k in data},
        )


@dataclass
class _TrackTask:
    """One track's work item (picklable)."""

    track: MultitrackTrack
    split: str
    labels: TrackLabels
    cfg: StemsConfig
    sample_prov: dict[str, Any]


@dataclass
class _TrackOut:
    """What a worker returns for one track."""

    track_id: str
    split: str
    skip_reason: str | None = None
    skip_counter: str | None = None
    windows: int = 0
    rescaled: bool = False
    excluded: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    near_duplicate: int = 0
    unpaired: int = 0
    windows_without_pairs: int = 0
    stem_windows: list[tuple[StemWindowRecord, bytes]] = field(default_factory=list)
    pairs: list[PairRecord] = field(default_factory=list)


# --------------------------------------------------------------------------- pure helpers


@functools.lru_cache(maxsize=8)
def _dup_encoder(sample_rate: int):
    # Imported here: the token encoders pull in librosa/scipy.
    from mgdata.tokens.frames import StftChromaEncoder

    n_fft = 4096 if sample_rate > 12000 else 2048
    n_oct = 7 if 32.70319566257483 * 2**7 < sample_rate / 2 else 6
    return StftChromaEncoder(
        sample_rate=sample_rate,
        hop_length=max(1, int(round(DUP_HOP_S * sample_rate))),
        n_fft=n_fft,
        n_octaves=n_oct,
        silence_db=-60.0,
        gate_length=n_fft,
    )


def chroma_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean frame-wise Pearson correlation of two chroma sequences over frames where both sound.

    Args:
        a: ``[n, 12]`` chroma frames (silent frames all zero).
        b: ``[n, 12]`` chroma frames of the other stem, same frame times.

    Returns:
        The mean correlation over frames where both vectors vary (a silent or flat
        frame has none); ``nan`` when there is no such frame.
    """
    n = min(len(a), len(b))
    a = np.asarray(a[:n], dtype=np.float64)
    b = np.asarray(b[:n], dtype=np.float64)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ok = (na > 1e-9) & (nb > 1e-9)
    if not ok.any():
        return float("nan")
    r = (a[ok] * b[ok]).sum(axis=1) / (na[ok] * nb[ok])
    return float(r.mean())


def _excluded(name: str, instrument: str, exclude: Sequence[str]) -> bool:
    return is_excluded(name, exclude) or is_excluded(instrument, exclude)


def _cut_track(task: _TrackTask) -> _TrackOut:
    """Windows, silence, pairs and FLAC of one track (runs in a worker; deterministic)."""
    cfg, track = task.cfg, task.track
    out = _TrackOut(track.track_id, task.split)
    for name, x in track.stems.items():
        if not np.all(np.isfinite(x)):
            out.skip_reason = f"bad audio: stem {name!r} has NaN or inf samples"
            out.skip_counter = "tracks_bad_audio"
            return out
    track = track.resampled(cfg.sample_rate)
    sr = track.sample_rate
    windows = plan_windows(
        track.n_samples, sr, window_s=cfg.window_s, overlap_s=cfg.overlap_s, keep_partial=cfg.keep_partial
    )
    if not windows:
        out.skip_reason = f"shorter than one window: {track.duration_s:.3f} s < {cfg.window_s} s"
        out.skip_counter = "tracks_too_short"
        return out
    order = list(track.stems)
    kept = []
    for name in order:
        if _excluded(name, track.instruments[name], cfg.exclude_stems):
            out.excluded.append(normalise_stem_name(name))
        else:
            kept.append(name)
    if len(kept) < 2:
        out.skip_reason = f"too few stems to pair: {len(kept)} left after excluding unpitched/excluded types"
        out.skip_counter = "tracks_too_few_stems"
        return out
    peak = max(float(np.max(np.abs(track.stems[n]))) for n in kept)
    gain = PEAK_TARGET / peak if peak > 1.0 else 1.0
    out.rescaled = gain != 1.0
    out.windows = len(windows)
    enc = _dup_encoder(sr) if cfg.duplicate_corr < 1.0 else None
    labels = task.labels.to_dict()
    for w in windows:
        segments: dict[str, np.ndarray] = {}
        for name in kept:
            seg = cut_window(track.stems[name], w)
            if gain != 1.0:
                seg = (seg * np.float32(gain)).astype(np.float32)
            # Silence is judged on real audio only, not on the zero padding.
            if rms_db(seg[: w.valid]) < cfg.silence_db:
                out.silent.append(normalise_stem_name(name))
                continue
            segments[name] = seg
        active = list(segments)
        dup: set[frozenset[str]] = set()
        if enc is not None and len(active) >= 2:
            chroma = {n: enc.frames(segments[n][: w.valid]) for n in active}
            for i, a in enumerate(active):
                for b in active[i + 1 :]:
                    r = chroma_correlation(chroma[a], chroma[b])
                    if r == r and r > cfg.duplicate_corr:
                        dup.add(frozenset((a, b)))
        pairs = [(a, b) for a, b in ordered_pairs(active) if frozenset((a, b)) not in dup]
        out.near_duplicate += 2 * len(dup)
        if not pairs:
            out.windows_without_pairs += 1
        used = {n for p in pairs for n in p}
        out.unpaired += len(active) - len(used)
        keys: dict[str, str] = {}
        for name in active:
            if name not in used:
                continue
            s_idx = order.index(name)
            key = stem_window_key(track.track_id, w.index, s_idx)
            keys[name] = key
            rec = StemWindowRecord(
                key=key,
                track_id=track.track_id,
                window_index=w.index,
                start_s=w.start_s(sr),
                length_s=w.length_s(sr),
                stem_index=s_idx,
                stem=name,
                instrument=track.instruments[name],
                split=task.split,
                quadrant=labels["quadrant"],
                mood=labels["mood"],
                style=labels["style"],
                source=track.source,
                sample_rate=sr,
                provenance={**task.sample_prov, "licence": track.licence},
            )
            out.stem_windows.append((rec, encode_flac(segments[name], sr)))
        for a, b in pairs:
            out.pairs.append(
                PairRecord(
                    pair_key=pair_key(keys[a], keys[b], track.track_id, w.index, order.index(a), order.index(b)),
                    a_key=keys[a],
                    b_key=keys[b],
                    track_id=track.track_id,
                    window_index=w.index,
                    stem_a=a,
                    stem_b=b,
                    split=task.split,
                )
            )
    return out


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
    if labels is not None and track.track_id in labels:
        return labels[track.track_id]
    found = TrackLabels.from_dict(track.meta)
    if found.style is None and track.meta.get("genre"):
        found = TrackLabels(found.quadrant, found.mood, str(track.meta["genre"]))
    return found


def _config_summary(cfg: StemsConfig) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- builder


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
    progress: bool = False,
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
    # ---- plan
    report = report if report is not None else StageReport(BUILDER)
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
    sample_prov = prov.sample_dict()
    result = StemsResult(out_dir=Path(out_dir) if out_dir is not None else None, fingerprint=fp)
    seen: set[str] = set()

    def tasks() -> Iterator[_TrackTask]:
        for track in tracks:
            if track.track_id in seen:
                raise MgdataError(f"{track.track_id}: track id yielded twice by the source")
            seen.add(track.track_id)
            if cfg.keep_source_split and track.split:
                split = track.split
            elif track.track_id in split_map:
                split = split_map[track.track_id]
            else:
                raise MgdataError(f"{track.track_id}: track id missing from the track_ids given to build_stems")
            yield _TrackTask(track, split, _track_labels(track, labels), cfg, sample_prov)

    # ---- run
    from mgdata.exec import executor_for, get_executor

    counters = {"excluded": Counter(), "silent": Counter()}
    with get_executor(executor_for(executor)) as ex:
        outputs = ex.imap(_cut_track, tasks(), desc="stems", progress=progress)
        if out_dir is None:
            for out in outputs:
                _collect(out, None, None, result, report, counters)
        else:
            out_dir = Path(out_dir)
            extra = {"stems": _config_summary(cfg), "format_version": FORMAT_VERSION}
            if not cfg.materialize_pairs and (out_dir / PAIRS_SUBDIR).is_dir():
                shutil.rmtree(out_dir / PAIRS_SUBDIR)  # stale pair shards of an earlier materialize_pairs run
            with contextlib.ExitStack() as stack:
                # Entered first, closed last: artifact.json of data/stems is the final commit.
                writer = stack.enter_context(
                    ArtifactWriter(out_dir, fingerprint=fp, provenance=prov, shards=shards, extra_info=extra)
                )
                if writer.done_keys:
                    report.run("resumed_samples", len(writer.done_keys))
                pair_writer = None
                if cfg.materialize_pairs:
                    pair_writer = stack.enter_context(
                        ArtifactWriter(
                            out_dir / PAIRS_SUBDIR, fingerprint=fp, provenance=prov, shards=shards, extra_info=extra
                        )
                    )
                for out in outputs:
                    _collect(out, writer, pair_writer, result, report, counters)
                writer.add_file(PAIRS_FILE, pairs_table_bytes(result.pairs))
            result.summary = writer.summary

    # ---- summarise
    result.excluded_stems = dict(counters["excluded"])
    result.silent_by_stem = dict(counters["silent"])
    for name in StemsResult._COUNTS:
        report.set(name, getattr(result, name))
    report.set("pairs", result.n_pairs)
    for name in StemsResult._MAPS:
        report.set(name, dict(sorted(getattr(result, name).items())))
    for split, n in sorted(result.pairs_per_split.items()):
        report.set(f"pairs_{split}", n)
    for split, n in sorted(result.stem_windows_per_split.items()):
        report.set(f"stem_windows_{split}", n)
    return result


def _collect(
    out: _TrackOut,
    writer: ArtifactWriter | None,
    pair_writer: ArtifactWriter | None,
    result: StemsResult,
    report: StageReport,
    counters: dict[str, Counter],
) -> None:
    """Fold one track's output into the result and write its samples (parent process, input order)."""
    result.tracks_in += 1
    counters["excluded"].update(out.excluded)
    if out.skip_reason is not None:
        report.skip(out.track_id, out.skip_reason)
        if out.skip_counter in ("tracks_too_short", "tracks_bad_audio"):
            setattr(result, out.skip_counter, getattr(result, out.skip_counter) + 1)
        else:
            report.count(out.skip_counter or "tracks_skipped")
        return
    split = out.split
    result.tracks_used += 1
    result.tracks_rescaled += int(out.rescaled)
    result.tracks_per_split[split] = result.tracks_per_split.get(split, 0) + 1
    result.windows += out.windows
    result.windows_per_split[split] = result.windows_per_split.get(split, 0) + out.windows
    result.silent_stem_windows += len(out.silent)
    counters["silent"].update(out.silent)
    result.pairs_near_duplicate += out.near_duplicate
    result.stem_windows_unpaired += out.unpaired
    if out.windows_without_pairs:
        report.count("windows_without_pairs", out.windows_without_pairs)
    result.stem_windows += len(out.stem_windows)
    result.stem_windows_per_split[split] = result.stem_windows_per_split.get(split, 0) + len(out.stem_windows)
    result.pairs_per_split[split] = result.pairs_per_split.get(split, 0) + len(out.pairs)
    result.pairs.extend(out.pairs)
    done = writer.done_keys if writer is not None else frozenset()
    for rec, flac in out.stem_windows:
        sample = Sample(
            rec.key, {"flac": flac, "json": encode_json(rec.to_dict())}, seconds=rec.length_s, labels=(rec.stem,)
        )
        if writer is None:
            result.samples.append(sample)
        elif rec.key not in done:
            writer.write(split, sample)
    if pair_writer is not None:
        by_key = {rec.key: (rec, flac) for rec, flac in out.stem_windows}
        for pair in out.pairs:
            if pair.pair_key not in pair_writer.done_keys:
                pair_writer.write(split, _pair_sample(pair, by_key[pair.a_key], by_key[pair.b_key]))


def build_stems_stage(
    cfg: StemsConfig,
    shards: ShardConfig,
    *,
    corpus_stems_dir: str | Path = "data/corpus/stems",
    out_dir: str | Path | None = "data/stems",
    manifest: str | Path | None = None,
    report: StageReport | None = None,
    executor: ExecConfig | None = None,
    progress: bool = True,
) -> StemsResult:
    """Build the stems artifact from the source selected by ``stems.source``.

    ``"corpus"`` streams ``corpus_stems_dir`` (its ``artifact.json`` provenance is
    the upstream); ``"moisesdb"`` streams ``stems.moisesdb_root``. Bad tracks are
    skipped and listed in ``report`` unless ``stems.fail_on_error``.

    Labels (corpus): from ``manifest`` when given, else from
    ``<corpus_stems_dir>/../manifest.parquet`` when it exists, else from the
    stem jsons; MoisesDB tracks carry only ``style`` (their genre).

    Args:
        cfg: Section ``stems``.
        shards: Section ``shards``.
        corpus_stems_dir: The corpus stems artifact (used when source is corpus).
        out_dir: Output artifact directory (``None``: in memory).
        manifest: Corpus ``manifest.parquet`` with the label columns.
        report: Stage report (a new one if ``None``).
        executor: Section ``executor`` (``None``: serial).
        progress: Show progress bars.

    Returns:
        The :class:`StemsResult`.
    """
    # Imported here: the readers pull in their own dependencies only when used.
    from mgdata.sources.moisesdb import iter_moisesdb_tracks, list_moisesdb_tracks, moisesdb_source_info
    from mgdata.sources.multitrack import corpus_source_info, iter_corpus_tracks, list_corpus_track_ids
    from mgdata.stems.records import labels_from_manifest

    report = report if report is not None else StageReport(BUILDER)
    labels = None
    if cfg.source == "moisesdb":
        upstream = moisesdb_source_info(cfg.moisesdb_root, max_tracks=cfg.max_tracks)
        track_ids = [p.name for p in list_moisesdb_tracks(cfg.moisesdb_root, max_tracks=cfg.max_tracks)]
        tracks = iter_moisesdb_tracks(
            cfg.moisesdb_root,
            sample_rate=cfg.sample_rate,
            length_tolerance_s=cfg.length_tolerance_s,
            report=report,
            fail_on_error=cfg.fail_on_error,
            max_tracks=cfg.max_tracks,
        )
    else:
        upstream = corpus_source_info(corpus_stems_dir)
        track_ids = list_corpus_track_ids(corpus_stems_dir, max_tracks=cfg.max_tracks)
        manifest_path = Path(manifest) if manifest is not None else Path(corpus_stems_dir).parent / "manifest.parquet"
        if manifest is not None or manifest_path.exists():
            labels = labels_from_manifest(manifest_path)
        tracks = iter_corpus_tracks(
            corpus_stems_dir,
            sample_rate=cfg.sample_rate,
            length_tolerance_s=cfg.length_tolerance_s,
            report=report,
            fail_on_error=cfg.fail_on_error,
            max_tracks=cfg.max_tracks,
        )
    report.set("source", cfg.source)  # strings and dicts go to the stage report, not the metrics
    report.set("upstream", {k: upstream.get(k) for k in ("source", "source_version", "licence", "fingerprint", "path")})
    return build_stems(
        tracks,
        out_dir,
        cfg=cfg,
        shards=shards,
        report=report,
        track_ids=track_ids,
        upstream=upstream,
        labels=labels,
        executor=executor,
        progress=progress,
    )


__all__ = [
    "MEMBERS",
    "PAIRS_FILE",
    "PAIRS_SUBDIR",
    "PAIR_MEMBERS",
    "StemsResult",
    "build_stems",
    "build_stems_stage",
    "chroma_correlation",
]
