"""Builder of the stem-pairs artifact (``data/stems``) from any multitrack source.

For each track (in the order the source yields them, which is deterministic):

1. resample to ``stems.sample_rate`` if needed; if a stem peaks above full scale
   (summed MoisesDB stems can), scale *all* stems of the track by one factor so
   PCM_16 FLAC does not clip and the relative levels of A and B are kept;
2. plan windows (:func:`mgdata.stems.windows.plan_windows`); a track shorter than
   one window gives none and is skipped with that reason;
3. drop excluded stem types (``stems.exclude_stems``), then per window drop the
   stems whose RMS is below ``stems.silence_db`` (counted);
4. emit every ordered pair (A, B) of the remaining stems as one sample
   ``{track_id}_w{window:04d}_{stemA}_{stemB}`` with members ``a.flac``,
   ``b.flac`` and ``json`` (README.md, "Artifact formats").

Splits are by track: the source's split when ``stems.keep_source_split`` and the
track has one (the corpus), else :func:`mgdata.splits.assign_splits` over all
track ids with ``stems.split_fractions`` and ``stems.seed``. A track is in
exactly one split, so all its windows and pairs are too.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mgdata.audio import encode_flac, rms_db
from mgdata.config import ShardConfig
from mgdata.errors import MgdataError
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.sources.multitrack import MultitrackTrack
from mgdata.splits import assign_splits
from mgdata.stems.config import StemsConfig
from mgdata.stems.pairs import is_excluded, normalise_stem_name, ordered_pairs
from mgdata.stems.windows import cut_window, plan_windows
from mgdata.store import ArtifactWriter, Sample, encode_json, fingerprint, make_key

BUILDER = "stems"
MEMBERS = ("a.flac", "b.flac", "json")
# Headroom left when a track peaking above full scale is scaled down.
PEAK_TARGET = 0.99


@dataclass
class StemPairsResult:
    """What :func:`build_stem_pairs` produced.

    Attributes:
        out_dir: Artifact directory, or ``None`` when built in memory.
        fingerprint: Content fingerprint (params + shards + upstream).
        tracks_in: Tracks received from the source (after its own skips).
        tracks_used: Tracks that gave at least one window.
        windows: Windows planned over the used tracks.
        windows_per_split: Split -> windows.
        pairs_per_split: Split -> pairs (samples).
        tracks_per_split: Split -> tracks used.
        silent_stem_windows: (stem, window) slots dropped as silent.
        silent_by_stem: Normalised stem type -> windows where it was silent.
        excluded_stems: Normalised stem type -> tracks where it was excluded.
        tracks_too_short: Tracks shorter than one window.
        tracks_rescaled: Tracks scaled down because a stem exceeded full scale.
        samples: The samples, only when ``out_dir`` is ``None``.
        summary: The writer's ``artifact.json`` content, when written.
    """

    out_dir: Path | None
    fingerprint: str
    tracks_in: int = 0
    tracks_used: int = 0
    windows: int = 0
    windows_per_split: dict[str, int] = field(default_factory=dict)
    pairs_per_split: dict[str, int] = field(default_factory=dict)
    tracks_per_split: dict[str, int] = field(default_factory=dict)
    silent_stem_windows: int = 0
    silent_by_stem: dict[str, int] = field(default_factory=dict)
    excluded_stems: dict[str, int] = field(default_factory=dict)
    tracks_too_short: int = 0
    tracks_rescaled: int = 0
    samples: list[Sample] = field(default_factory=list)
    summary: dict[str, Any] | None = None

    @property
    def pairs(self) -> int:
        """Total pairs over all splits."""
        return sum(self.pairs_per_split.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (no samples)."""
        return {
            "out_dir": str(self.out_dir) if self.out_dir else None,
            "fingerprint": self.fingerprint,
            "tracks_in": self.tracks_in,
            "tracks_used": self.tracks_used,
            "windows": self.windows,
            "pairs": self.pairs,
            "windows_per_split": dict(sorted(self.windows_per_split.items())),
            "pairs_per_split": dict(sorted(self.pairs_per_split.items())),
            "tracks_per_split": dict(sorted(self.tracks_per_split.items())),
            "silent_stem_windows": self.silent_stem_windows,
            "silent_by_stem": dict(sorted(self.silent_by_stem.items())),
            "excluded_stems": dict(sorted(self.excluded_stems.items())),
            "tracks_too_short": self.tracks_too_short,
            "tracks_rescaled": self.tracks_rescaled,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StemPairsResult":
        """Inverse of :meth:`to_dict` (samples and summary are not restored)."""
        keys = {
            "tracks_in", "tracks_used", "windows", "windows_per_split", "pairs_per_split", "tracks_per_split",
            "silent_stem_windows", "silent_by_stem", "excluded_stems", "tracks_too_short", "tracks_rescaled",
        }
        return cls(
            out_dir=Path(data["out_dir"]) if data.get("out_dir") else None,
            fingerprint=data["fingerprint"],
            **{k: data[k] for k in keys if k in data},
        )


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


def _track_split(track: MultitrackTrack, split_map: dict[str, str], cfg: StemsConfig) -> str:
    if cfg.keep_source_split and track.split:
        return track.split
    if track.track_id not in split_map:
        raise MgdataError(f"{track.track_id}: track id missing from the track_ids given to build_stem_pairs")
    return split_map[track.track_id]


def build_stem_pairs(
    tracks: Iterable[MultitrackTrack],
    out_dir: str | Path | None = None,
    *,
    cfg: StemsConfig,
    shards: ShardConfig,
    report: StageReport | None = None,
    track_ids: Sequence[str] | None = None,
    upstream: dict[str, Any] | None = None,
    progress: bool = False,
) -> StemPairsResult:
    """Cut tracks into aligned windows and write every ordered stem pair (see module docstring).

    Args:
        tracks: Multitrack tracks, in a deterministic order (e.g. from
            :func:`mgdata.sources.multitrack.iter_corpus_tracks` or
            :func:`mgdata.sources.moisesdb.iter_moisesdb_tracks`). Streamed one at
            a time when ``track_ids`` and ``upstream`` are given; otherwise
            materialised.
        out_dir: Artifact directory; ``None`` returns the samples in memory.
        cfg: Section ``stems``.
        shards: Section ``shards``.
        report: Stage report to count into (a new one if ``None``).
        track_ids: All track ids the source will yield (for seeded split
            assignment); default: the ids of ``tracks``.
        upstream: ``{"source", "source_version", "licence", "fingerprint", ...}``
            of the input (e.g. :func:`mgdata.sources.multitrack.corpus_source_info`);
            default: derived from the tracks' content.
        progress: Show a tqdm bar over tracks.

    Returns:
        :class:`StemPairsResult` with counts (and the samples if ``out_dir`` is None).

    Raises:
        MgdataError: A track's split cannot be determined or two samples share a key.
    """
    report = report if report is not None else StageReport(BUILDER)
    if upstream is None or track_ids is None:
        tracks = list(tracks)
        upstream = upstream or _content_source_info(tracks)
        track_ids = track_ids if track_ids is not None else [t.track_id for t in tracks]
    split_map = assign_splits(track_ids, fractions=cfg.split_fractions, seed=cfg.seed) if track_ids else {}
    fp = fingerprint(BUILDER, cfg, shards, upstream.get("fingerprint", ""))
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
    result = StemPairsResult(out_dir=Path(out_dir) if out_dir is not None else None, fingerprint=fp)
    bar = tqdm(tracks, total=len(track_ids) or None, desc="stems", unit="track", disable=not progress)
    if out_dir is None:
        _run(bar, None, split_map, cfg, prov, report, result)
    else:
        with ArtifactWriter(out_dir, fingerprint=fp, provenance=prov, shards=shards,
                            extra_info={"stems": _config_summary(cfg)}) as writer:
            if writer.done_keys:
                report.run("resumed_samples", len(writer.done_keys))
            _run(bar, writer, split_map, cfg, prov, report, result)
        result.summary = writer.summary
    report.set("windows", result.windows)
    report.set("pairs", result.pairs)
    report.set("pairs_per_split", dict(sorted(result.pairs_per_split.items())))
    report.set("windows_per_split", dict(sorted(result.windows_per_split.items())))
    report.set("tracks_per_split", dict(sorted(result.tracks_per_split.items())))
    report.set("tracks_in", result.tracks_in)
    report.set("tracks_used", result.tracks_used)
    report.set("silent_stem_windows", result.silent_stem_windows)
    report.set("silent_by_stem", dict(sorted(result.silent_by_stem.items())))
    report.set("excluded_stems", dict(sorted(result.excluded_stems.items())))
    report.set("tracks_too_short", result.tracks_too_short)
    report.set("tracks_rescaled", result.tracks_rescaled)
    return result


def _config_summary(cfg: StemsConfig) -> dict[str, Any]:
    return {
        "window_s": cfg.window_s,
        "overlap_s": cfg.overlap_s,
        "keep_partial": cfg.keep_partial,
        "sample_rate": cfg.sample_rate,
        "silence_db": cfg.silence_db,
        "exclude_stems": list(cfg.exclude_stems),
    }


def _run(
    tracks: Iterable[MultitrackTrack],
    writer: ArtifactWriter | None,
    split_map: dict[str, str],
    cfg: StemsConfig,
    prov: Provenance,
    report: StageReport,
    result: StemPairsResult,
) -> None:
    done = writer.done_keys if writer is not None else frozenset()
    seen_ids: set[str] = set()
    excluded_counter: Counter[str] = Counter()
    silent_counter: Counter[str] = Counter()
    for track in tracks:
        result.tracks_in += 1
        if track.track_id in seen_ids:
            raise MgdataError(f"{track.track_id}: track id yielded twice by the source")
        seen_ids.add(track.track_id)
        split = _track_split(track, split_map, cfg)
        track = track.resampled(cfg.sample_rate)
        sr = track.sample_rate
        windows = plan_windows(track.n_samples, sr, window_s=cfg.window_s, overlap_s=cfg.overlap_s,
                               keep_partial=cfg.keep_partial)
        if not windows:
            result.tracks_too_short += 1
            report.skip(track.track_id, f"shorter than one window: {track.duration_s:.3f} s < {cfg.window_s} s")
            continue
        kept = []
        for name in track.stems:
            if is_excluded(name, cfg.exclude_stems):
                excluded_counter[normalise_stem_name(name)] += 1
            else:
                kept.append(name)
        if len(kept) < 2:
            report.skip(track.track_id, f"too few stems to pair: {kept} left after excluding {cfg.exclude_stems}")
            report.count("tracks_too_few_stems")
            continue
        peak = max(float(np.max(np.abs(track.stems[n]))) for n in kept)
        gain = PEAK_TARGET / peak if peak > 1.0 else 1.0
        if gain != 1.0:
            result.tracks_rescaled += 1
        result.tracks_used += 1
        result.tracks_per_split[split] = result.tracks_per_split.get(split, 0) + 1
        for w in windows:
            result.windows += 1
            result.windows_per_split[split] = result.windows_per_split.get(split, 0) + 1
            segments: dict[str, np.ndarray] = {}
            for name in kept:
                seg = cut_window(track.stems[name], w)
                if gain != 1.0:
                    seg = (seg * np.float32(gain)).astype(np.float32)
                # Silence is judged on real audio only, not on the zero padding.
                if rms_db(seg[: w.valid]) < cfg.silence_db:
                    result.silent_stem_windows += 1
                    silent_counter[normalise_stem_name(name)] += 1
                    continue
                segments[name] = seg
            pairs = ordered_pairs(list(segments))
            if not pairs:
                report.count("windows_without_pairs")
            flac: dict[str, bytes] = {}
            for a, b in pairs:
                key = make_key(track.track_id, f"w{w.index:04d}", a, b)
                result.pairs_per_split[split] = result.pairs_per_split.get(split, 0) + 1
                if key in done:
                    continue
                for name in (a, b):
                    if name not in flac:
                        flac[name] = encode_flac(segments[name], sr)
                meta = {
                    "pair_key": key,
                    "track_id": track.track_id,
                    "window_index": w.index,
                    "start_s": w.start_s(sr),
                    "length_s": w.length_s(sr),
                    "stem_a": a,
                    "stem_b": b,
                    "instrument_a": track.instruments[a],
                    "instrument_b": track.instruments[b],
                    "split": split,
                    "source": track.source,
                    "sample_rate": sr,
                    "provenance": {**prov.sample_dict(), "licence": track.licence},
                }
                sample = Sample(
                    key,
                    {"a.flac": flac[a], "b.flac": flac[b], "json": encode_json(meta)},
                    seconds=w.length_s(sr),
                    labels=(f"{a}->{b}",),
                )
                if writer is None:
                    result.samples.append(sample)
                else:
                    writer.write(split, sample)
    result.excluded_stems = dict(excluded_counter)
    result.silent_by_stem = dict(silent_counter)



def build_stems_stage(
    cfg: StemsConfig,
    shards: ShardConfig,
    *,
    corpus_stems_dir: str | Path = "data/corpus/stems",
    out_dir: str | Path | None = "data/stems",
    report: StageReport | None = None,
    progress: bool = True,
) -> StemPairsResult:
    """Build the stem-pairs artifact from the source selected by ``stems.source``.

    ``"corpus"`` streams ``corpus_stems_dir`` (its ``artifact.json`` provenance
    becomes the upstream); ``"moisesdb"`` streams ``stems.moisesdb_root``. Bad
    tracks are skipped and listed in ``report`` unless ``stems.fail_on_error``.

    Args:
        cfg: Section ``stems``.
        shards: Section ``shards``.
        corpus_stems_dir: The corpus stems artifact (used when source is corpus).
        out_dir: Output artifact directory (``None``: in memory).
        report: Stage report (a new one if ``None``).
        progress: Show progress bars.

    Returns:
        The :class:`StemPairsResult`.
    """
    # Imported here: the readers pull in their own dependencies only when used.
    from mgdata.sources.moisesdb import iter_moisesdb_tracks, list_moisesdb_tracks, moisesdb_source_info
    from mgdata.sources.multitrack import corpus_source_info, iter_corpus_tracks, list_corpus_track_ids

    report = report if report is not None else StageReport(BUILDER)
    if cfg.source == "moisesdb":
        upstream = moisesdb_source_info(cfg.moisesdb_root, max_tracks=cfg.max_tracks)
        track_ids = [p.name for p in list_moisesdb_tracks(cfg.moisesdb_root, max_tracks=cfg.max_tracks)]
        tracks = iter_moisesdb_tracks(
            cfg.moisesdb_root, sample_rate=cfg.sample_rate, length_tolerance_s=cfg.length_tolerance_s,
            report=report, fail_on_error=cfg.fail_on_error, max_tracks=cfg.max_tracks,
        )
    else:
        upstream = corpus_source_info(corpus_stems_dir)
        track_ids = list_corpus_track_ids(corpus_stems_dir, max_tracks=cfg.max_tracks)
        tracks = iter_corpus_tracks(
            corpus_stems_dir, sample_rate=cfg.sample_rate, length_tolerance_s=cfg.length_tolerance_s,
            report=report, fail_on_error=cfg.fail_on_error, max_tracks=cfg.max_tracks,
        )
    report.set("source", cfg.source)
    report.set("upstream", {k: upstream[k] for k in ("source", "source_version", "licence", "fingerprint", "path")})
    return build_stem_pairs(
        tracks, out_dir, cfg=cfg, shards=shards, report=report, track_ids=track_ids, upstream=upstream,
        progress=progress,
    )


__all__ = ["MEMBERS", "StemPairsResult", "build_stem_pairs", "build_stems_stage"]
