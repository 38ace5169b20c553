"""MTG-Jamendo audio as a source artifact in the corpus *mix* format.

:func:`build_jamendo_clips` reads one official split (``relabel.jamendo``:
``metadata_dir``, ``split_index``, ``subset``), decodes one clip per track with
:func:`mgdata.sources.jamendo.load_clip` (``clip_s`` at ``clip_position``, mono,
resampled to ``sample_rate``) and writes::

    out_dir/mix/               shards, key make_key("jamendo", track_id) (e.g. jamendo_track_0000948)
                               members flac (mono PCM_16 at cfg.sample_rate) + json
    out_dir/manifest.parquet   one row per written track (corpus-manifest columns where they apply)

so every stage that reads the corpus mix (``generate`` in primed/source mode,
``embed``) reads it the same way, and the manifest feeds ``relabel``
(:func:`mgdata.labels.relabel.read_manifest_tracks`: ``track_id``, ``split``,
``duration_s``, ``mood_tags``).

The ``json`` member holds ``track_id`` (the raw MTG-Jamendo id, so labels tables
keyed by it join), ``split``, ``tags`` (bare tag names, as in the corpus
manifest), ``tags_full`` (the prefixed tags of the TSV row), ``mood_tags`` (names
of the ``mood/theme`` tags), ``duration_s`` (the clip's length), ``sample_rate``,
``path``, ``artist_id``, ``album_id``, ``clip_start_s``, ``track_duration_s``
(from the metadata) and ``provenance``. ``Sample.labels`` are the mood tags.

Behaviour worth knowing:

* Order is deterministic: train, validation, test, each sorted by track id. No
  random numbers are drawn (seed 0).
* A track shorter than ``clip_s`` gives its whole length, unpadded (as
  :func:`~mgdata.sources.jamendo.clip_bounds` does); ``duration_s`` says how long
  the clip really is. The file's decoded length, not the TSV ``DURATION``,
  places the clip. A numeric ``clip_position`` at or after a track's end makes
  that track unreadable (skipped like a bad file).
* A missing or unreadable audio file (or one decoding to no samples) is skipped,
  logged and listed in the :class:`~mgdata.report.StageReport` with its path,
  unless ``cfg.fail_on_error`` is set (then the :class:`InputError` propagates).
* Resumable: tracks already in verified shards (``ArtifactWriter.done_keys``)
  are not decoded again; their manifest rows are read back from those shards.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from tqdm.auto import tqdm

from mgdata.audio import encode_flac
from mgdata.config import ShardConfig
from mgdata.errors import InputError, ParamsError
from mgdata.labels.relabel import JAMENDO_LICENCE
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.sources.jamendo import (
    MOODTHEME,
    SPLITS,
    JamendoConfig,
    JamendoTrack,
    audio_path,
    load_clip,
    read_split,
    require_audio_root,
    split_files,
    split_tag,
)
from mgdata.store import (
    ArtifactWriter,
    JsonRecord,
    Sample,
    fingerprint,
    iter_samples,
    make_key,
    sha256_file,
)
from mgdata.store.files import write_atomic

log = logging.getLogger("mgdata.jamendo")

BUILDER = "jamendo"
#: ``source`` of every sample's provenance block.
SAMPLE_SOURCE = "mtg-jamendo"
FORMAT_VERSION = "jamendo-clips/1"  # bump when the layout or decoding changes, to rebuild old artifacts
#: Params key prefix of the source section (for error messages).
PARAMS_KEY = "relabel.jamendo"

MANIFEST_SCHEMA = {
    "track_id": pl.String,
    "split": pl.String,
    "tags": pl.List(pl.String),
    "mood_tags": pl.List(pl.String),
    "duration_s": pl.Float64,
    "sample_rate": pl.Int64,
    "tags_full": pl.List(pl.String),
    "artist_id": pl.String,
    "album_id": pl.String,
    "path": pl.String,
    "clip_start_s": pl.Float64,
    "track_duration_s": pl.Float64,
}


@dataclass(frozen=True)
class JamendoClipRecord(JsonRecord):
    """The ``json`` of one clip sample (without its ``provenance`` envelope); its manifest row."""

    json_what = "jamendo clip"
    json_extras = frozenset({"provenance"})
    json_key_field = "track_id"

    track_id: str
    split: str
    tags: list[str]
    tags_full: list[str]
    mood_tags: list[str]
    duration_s: float
    sample_rate: int
    path: str
    artist_id: str
    album_id: str
    clip_start_s: float
    track_duration_s: float


@dataclass
class JamendoClipsResult:
    """What :func:`build_jamendo_clips` produced.

    Attributes:
        records: One metadata dict per written track (the ``json`` member
            without ``provenance``), in artifact order (split, then track id).
        report: The stage report (skips, counts).
        out_dir: Output directory, or ``None`` for an in-memory build.
        mix_info: ``artifact.json`` summary of ``mix/`` (``None`` in memory).
        samples: In-memory builds only: ``(split, Sample)`` per track (keep it small).
        resumed_tracks: Tracks whose samples were already in verified shards.
        skipped_tracks: Tracks skipped for a missing/unreadable audio file.
    """

    records: list[dict[str, Any]]
    report: StageReport
    out_dir: Path | None = None
    mix_info: dict[str, Any] | None = None
    samples: list[tuple[str, Sample]] | None = None
    resumed_tracks: int = 0
    skipped_tracks: int = 0
    per_split: dict[str, int] = field(default_factory=dict)

    def manifest(self) -> pl.DataFrame:
        """The manifest as a polars DataFrame (one row per written track)."""
        rows = [{k: r[k] for k in MANIFEST_SCHEMA} for r in self.records]
        return pl.DataFrame(rows, schema=MANIFEST_SCHEMA)


# --------------------------------------------------------------------------- helpers


def check_config(cfg: JamendoConfig) -> Path:
    """Fail before any work when the source is not configured; returns the audio root.

    Raises:
        ParamsError: ``relabel.jamendo.metadata_dir`` unset, or
            ``relabel.jamendo.audio_root`` unset / not a directory.
    """
    if cfg.metadata_dir is None or not str(cfg.metadata_dir).strip():
        raise ParamsError(
            f"{PARAMS_KEY}.metadata_dir",
            "is not set: point it at the MTG-Jamendo data/ directory (holding splits/split-N/"
            "autotagging_<subset>-{train,validation,test}.tsv) to build the jamendo clips",
        )
    return require_audio_root(cfg.audio_root, key=f"{PARAMS_KEY}.audio_root")


def split_files_version(cfg: JamendoConfig) -> tuple[str, dict[str, str]]:
    """sha256 of the three split files combined, and each file's own sha256 (by split)."""
    files = split_files(cfg.metadata_dir, split_index=cfg.split_index, subset=cfg.subset)
    per_file = {split: sha256_file(path) for split, path in files.items()}
    combined = hashlib.sha256()
    for split in SPLITS:
        combined.update(f"{files[split].name}\0{per_file[split]}\n".encode())
    return combined.hexdigest(), per_file


def _bare_tags(track: JamendoTrack) -> list[str]:
    return list(dict.fromkeys(track.tag_names))


def _mood_tags(track: JamendoTrack) -> list[str]:
    return list(dict.fromkeys(name for cat, name in map(split_tag, track.tags) if cat == MOODTHEME))


def track_key(track_id: str) -> str:
    """Sample key of a track (``jamendo_track_0000948``)."""
    return make_key("jamendo", track_id)


def _record(track: JamendoTrack, *, clip_start_s: float, duration_s: float, sample_rate: int) -> JamendoClipRecord:
    return JamendoClipRecord(
        track_id=track.track_id,
        split=track.split,
        tags=_bare_tags(track),
        tags_full=list(track.tags),
        mood_tags=_mood_tags(track),
        duration_s=round(float(duration_s), 6),
        sample_rate=int(sample_rate),
        path=track.path,
        artist_id=track.artist_id,
        album_id=track.album_id,
        clip_start_s=round(float(clip_start_s), 6),
        track_duration_s=track.duration_s,
    )


def _resumed_records(out_dir: Path, keys: frozenset[str]) -> dict[str, dict[str, Any]]:
    """Records (as dicts) of already written samples, read back from the verified shards."""
    out: dict[str, dict[str, Any]] = {}
    if not keys:
        return out
    for s in iter_samples(out_dir):
        if s["__key__"] in keys:
            out[s["__key__"]] = JamendoClipRecord.from_sample(s).to_dict()
    return out


def _metrics(report: StageReport, records: list[dict[str, Any]], n_tracks: int) -> None:
    per_split: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    moods: Counter[str] = Counter()
    for r in records:
        per_split[r["split"]] += 1
        seconds[r["split"]] += r["duration_s"]
        moods.update(r["mood_tags"])
    report.set("tracks_in_split_files", n_tracks)
    report.set("tracks", len(records))
    report.set("tracks_per_split", {s: per_split[s] for s in SPLITS if per_split[s]})
    report.set("seconds_per_split", {s: round(seconds[s], 3) for s in SPLITS if per_split[s]})
    report.set("hours", round(sum(seconds.values()) / 3600.0, 4))
    report.set("mood_tag_counts", dict(sorted(moods.items())))


# --------------------------------------------------------------------------- build


def build_jamendo_clips(
    out_dir: str | Path | None = None,
    *,
    cfg: JamendoConfig,
    shards: ShardConfig,
    report: StageReport | None = None,
    progress: bool = True,
) -> JamendoClipsResult:
    """Write MTG-Jamendo clips as a corpus-mix-format artifact plus a manifest.

    Args:
        out_dir: Writes ``mix/`` and ``manifest.parquet`` here; ``None`` builds in
            memory (samples returned in the result; keep it small).
        cfg: Section ``relabel.jamendo`` (``metadata_dir`` and ``audio_root`` required).
        shards: Section ``shards``.
        report: Stage report to fill (a new one if ``None``).
        progress: Show a tqdm bar.

    Returns:
        The written records, the report and the artifact summary.

    Raises:
        ParamsError: ``relabel.jamendo.metadata_dir`` or ``.audio_root`` unset
            (before any work).
        InputError: Split files missing or malformed (malformed rows are skipped
            and counted unless ``cfg.fail_on_error``), or, with
            ``cfg.fail_on_error``, a missing/unreadable audio file.
    """
    report = report or StageReport("jamendo")
    check_config(cfg)
    source_version, file_shas = split_files_version(cfg)
    tracks = read_split(
        cfg.metadata_dir, split_index=cfg.split_index, subset=cfg.subset, strict=cfg.fail_on_error, report=report
    )
    order = {s: i for i, s in enumerate(SPLITS)}
    tracks.sort(key=lambda t: (order[t.split], t.track_id))
    prov, fp = _provenance(cfg, shards, source_version, file_shas)
    out_dir = Path(out_dir) if out_dir is not None else None
    result = _write_clips(tracks, out_dir, cfg=cfg, shards=shards, prov=prov, fp=fp, report=report, progress=progress)
    records = result.records
    result.per_split = dict(Counter(r["split"] for r in records))
    if out_dir is not None:
        buf = io.BytesIO()
        result.manifest().write_parquet(buf, statistics=False)
        write_atomic(out_dir / "manifest.parquet", buf.getvalue())
    _metrics(report, records, len(tracks))
    report.run("tracks_resumed", result.resumed_tracks)
    report.set("tracks_skipped", result.skipped_tracks)
    log.info(
        "jamendo: %d clips written (%d resumed), %d skipped", len(records), result.resumed_tracks, result.skipped_tracks
    )
    return result


def _provenance(
    cfg: JamendoConfig, shards: ShardConfig, source_version: str, file_shas: dict[str, str]
) -> tuple[Provenance, str]:
    """The artifact's provenance and fingerprint (params, split files, decoder versions)."""
    import soundfile as sf
    import soxr

    params_hash = fingerprint(cfg, shards)
    decoder = {"libsndfile": sf.__libsndfile_version__, "soxr": soxr.__version__}
    fp = fingerprint(FORMAT_VERSION, params_hash, source_version, decoder)
    prov = Provenance(
        builder=BUILDER,
        source=f"mtg-jamendo autotagging_{cfg.subset} split-{cfg.split_index}",
        source_version=source_version,
        licence=JAMENDO_LICENCE,
        seed=0,
        params_hash=params_hash,
        extra={
            "split_files_sha256": file_shas,
            "decoder": decoder,
            "clip_s": cfg.clip_s,
            "clip_position": cfg.clip_position,
            "sample_rate": cfg.sample_rate,
        },
    )
    return prov, fp


def _write_clips(
    tracks: list[JamendoTrack],
    out_dir: Path | None,
    *,
    cfg: JamendoConfig,
    shards: ShardConfig,
    prov: Provenance,
    fp: str,
    report: StageReport,
    progress: bool,
) -> JamendoClipsResult:
    """Decode and write (or keep in memory) every track's clip, resuming the verified ones."""
    sample_prov = {**prov.sample_dict(), "source": SAMPLE_SOURCE, "dataset": prov.source}
    records: list[dict[str, Any]] = []
    samples: list[tuple[str, Sample]] | None = [] if out_dir is None else None
    resumed = skipped = 0
    writer: ArtifactWriter | None = None
    with contextlib.ExitStack() as stack:
        if out_dir is not None:
            writer = stack.enter_context(
                ArtifactWriter(out_dir / "mix", fingerprint=fp, provenance=prov, shards=shards)
            )
        done = _resumed_records(out_dir / "mix", writer.done_keys) if writer is not None else {}
        for track in tqdm(tracks, desc="jamendo: clips", unit="track", disable=not progress):
            key = track_key(track.track_id)
            if key in done:
                records.append(done[key])
                resumed += 1
                continue
            made = _clip_sample(track, key, cfg=cfg, sample_prov=sample_prov, report=report)
            if made is None:
                skipped += 1
                continue
            record, sample = made
            records.append(record.to_dict())
            if writer is not None:
                writer.write(track.split, sample)
            else:
                samples.append((track.split, sample))
    # Leaving the ExitStack closed the writer (artifact.json written).
    return JamendoClipsResult(
        records=records,
        report=report,
        out_dir=out_dir,
        mix_info=writer.summary if writer is not None else None,
        samples=samples,
        resumed_tracks=resumed,
        skipped_tracks=skipped,
    )


def _clip_sample(
    track: JamendoTrack, key: str, *, cfg: JamendoConfig, sample_prov: dict[str, Any], report: StageReport
) -> tuple[JamendoClipRecord, Sample] | None:
    """The record and sample of one track's clip, or ``None`` (skip reported) when its audio is unusable.

    Raises:
        InputError: The audio is missing/unreadable and ``cfg.fail_on_error`` is set.
    """
    try:
        clip = load_clip(
            track, cfg.audio_root, clip_s=cfg.clip_s, position=cfg.clip_position, sample_rate=cfg.sample_rate
        )
        if clip.audio.size == 0:
            raise InputError(str(audio_path(track, cfg.audio_root)), "audio decodes to no samples")
    except InputError as exc:
        if cfg.fail_on_error:
            raise
        report.skip(exc.where, exc.message)
        return None
    record = _record(track, clip_start_s=clip.offset_s, duration_s=clip.duration_s, sample_rate=clip.sample_rate)
    sample = Sample(
        key,
        {"flac": encode_flac(clip.audio, clip.sample_rate), "json": record.to_json(provenance=sample_prov)},
        seconds=clip.duration_s,
        labels=tuple(record.mood_tags),
    )
    return record, sample
