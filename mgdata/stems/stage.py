"""Stage ``stems``: multitrack tracks -> stem-windows stored once + the (A, B) pair index (``pairs.parquet``).

Pipeline glue only: the default paths of the pipeline, opening the source named by
``stems.source`` (corpus or MoisesDB) and its labels; the builder is
:func:`mgdata.stems.build.build_stems`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgdata.pipeline import StageContext, StageOutcome

if TYPE_CHECKING:
    from mgdata.config import ShardConfig
    from mgdata.exec import ExecConfig
    from mgdata.labels.fields import TrackLabels
    from mgdata.report import StageReport
    from mgdata.sources.multitrack import MultitrackTrack
    from mgdata.stems.config import StemsConfig
    from mgdata.stems.records import StemsResult


def run(ctx: StageContext) -> StageOutcome:
    """Build ``data/stems`` from the source ``stems.source`` names (corpus or MoisesDB)."""
    a = ctx.args
    cfg = ctx.section("stems")
    manifest = getattr(a, "manifest", None)
    result = build_stems_stage(
        cfg,
        ctx.shards,
        corpus_stems_dir=a.corpus_stems,
        out_dir=a.out_dir,
        manifest=manifest if manifest is not None and manifest.exists() else None,
        report=ctx.report,
        executor=ctx.executor,
        progress=ctx.progress,
    )
    return StageOutcome(
        summary=f"stems ({cfg.source}): {result.tracks_used}/{result.tracks_in} tracks, {result.windows} windows, "
        f"{result.stem_windows} stem-windows, pairs per split {dict(sorted(result.pairs_per_split.items()))}, "
        f"near-duplicate pairs dropped {result.pairs_near_duplicate}, silent stem-windows "
        f"{result.silent_stem_windows}, skipped {len(ctx.report.skipped)}",
        inputs=result.tracks_in,
        outputs=result.stem_windows,
    )


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
        The :class:`~mgdata.stems.records.StemsResult`.
    """
    from mgdata.report import StageReport
    from mgdata.stems.build import BUILDER, build_stems

    report = report if report is not None else StageReport(BUILDER)
    if cfg.source == "moisesdb":
        src = _open_moisesdb(cfg, report)
    else:
        src = _open_corpus(cfg, corpus_stems_dir, manifest, report)
    report.set("source", cfg.source)  # strings and dicts go to the stage report, not the metrics
    keys = ("source", "source_version", "licence", "fingerprint", "path")
    report.set("upstream", {k: src.upstream.get(k) for k in keys})
    return build_stems(
        src.tracks,
        out_dir,
        cfg=cfg,
        shards=shards,
        report=report,
        track_ids=src.track_ids,
        upstream=src.upstream,
        labels=src.labels,
        executor=executor,
        progress=progress,
    )


@dataclass
class _Source:
    """An opened source: its tracks (streamed), all their ids, its upstream description and labels."""

    tracks: Iterable[MultitrackTrack]
    track_ids: list[str]
    upstream: dict[str, Any]
    labels: Mapping[str, TrackLabels] | None


def _open_moisesdb(cfg: StemsConfig, report: StageReport) -> _Source:
    """Tracks (streamed), all track ids and the upstream description of ``stems.moisesdb_root``; no labels."""
    # Imported here: the readers pull in their own dependencies only when used.
    from mgdata.sources.moisesdb import iter_moisesdb_tracks, list_moisesdb_tracks, moisesdb_source_info

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
    return _Source(tracks, track_ids, upstream, None)


def _open_corpus(cfg: StemsConfig, stems_dir: str | Path, manifest: str | Path | None, report: StageReport) -> _Source:
    """Tracks (streamed), all track ids, the upstream description and the manifest labels of a corpus."""
    from mgdata.sources.multitrack import corpus_source_info, iter_corpus_tracks, list_corpus_track_ids
    from mgdata.stems.records import labels_from_manifest

    upstream = corpus_source_info(stems_dir)
    track_ids = list_corpus_track_ids(stems_dir, max_tracks=cfg.max_tracks)
    manifest_path = Path(manifest) if manifest is not None else Path(stems_dir).parent / "manifest.parquet"
    labels = labels_from_manifest(manifest_path) if manifest is not None or manifest_path.exists() else None
    tracks = iter_corpus_tracks(
        stems_dir,
        sample_rate=cfg.sample_rate,
        length_tolerance_s=cfg.length_tolerance_s,
        report=report,
        fail_on_error=cfg.fail_on_error,
        max_tracks=cfg.max_tracks,
    )
    return _Source(tracks, track_ids, upstream, labels)


__all__ = ["build_stems_stage", "run"]
