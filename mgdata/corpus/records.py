"""Typed records of the chorale corpus: the plan of a track, its mix and stem jsons, the build result.

:class:`TrackPlan` is everything known about a track before any audio exists;
:func:`track_record` turns it into its :class:`TrackRecord` (the mix sample's ``json``
and, a subset, its ``manifest.parquet`` row); :func:`track_samples` makes the mix and
stem samples of a rendered track. Layout and fields: README.md, "Artifact formats".
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from mgdata.corpus.moods import mood_tags, quadrant_of_tags
from mgdata.corpus.render import RenderedTrack, gm_instrument_name
from mgdata.corpus.scores import ParsedScore
from mgdata.labels import QUADRANTS
from mgdata.report import StageReport
from mgdata.store import JsonRecord, Sample

MANIFEST_SCHEMA = {
    "track_id": pl.String,
    "score_id": pl.String,
    "composer": pl.String,
    "style": pl.String,
    "title": pl.String,
    "split": pl.String,
    "quadrant": pl.String,
    "mood": pl.List(pl.String),
    "tags": pl.List(pl.String),
    "mood_tags": pl.List(pl.String),
    "key": pl.String,
    "mode": pl.String,
    "tempo_class": pl.String,
    "tempo_bpm": pl.Float64,
    "velocity": pl.Int64,
    "duration_s": pl.Float64,
    "sample_rate": pl.Int64,
    "parts": pl.List(pl.String),
    "instruments": pl.List(pl.String),
    "n_stems": pl.Int64,
    "unpitched_parts": pl.List(pl.String),
}


@dataclass(frozen=True)
class TrackPlan:
    """Everything needed to render one track and describe it, before any audio exists.

    Attributes:
        score: The parsed score (all its pitched parts with notes).
        tempo_class: Arousal class, ``"fast"`` or ``"slow"`` (drawn from seed and track id).
        tempo_bpm: Drawn rendering tempo (quarter notes per minute) inside the class's range.
        velocity: Drawn MIDI velocity of every note, inside the class's range.
        stems: Part names rendered as stems (parts with notes in the window), score order.
        programs: GM program per stem.
        notes_s: Per stem, ``(onset_s, offset_s, pitch)`` at ``tempo_bpm`` inside the window.
        n_samples: Rendered length (``max_duration_s`` or the last note-off plus the release tail).
        sample_rate: Hz.
    """

    score: ParsedScore
    tempo_class: str
    tempo_bpm: float
    velocity: int
    stems: tuple[str, ...]
    programs: tuple[int, ...]
    notes_s: tuple[tuple[tuple[float, float, int], ...], ...]
    n_samples: int
    sample_rate: int

    @property
    def track_id(self) -> str:
        return self.score.track_id

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate


@dataclass(frozen=True)
class TrackRecord(JsonRecord):
    """One track: ``to_dict()`` is the mix sample's ``json`` (without provenance); a subset is its manifest row.

    Label fields (CONTRACTS.md): ``quadrant`` (paper1 mapping of the mood tags, exactly as the relabel stage
    maps them), ``mood`` (the MTG-Jamendo mood tags, multi-label), ``style`` (the repertoire).
    The json carries ``provenance`` beside the fields (tolerated, dropped on read).
    """

    json_what = "track"
    json_optional = frozenset({"unpitched_parts"})
    json_extras = frozenset({"provenance"})
    json_key_field = "track_id"

    track_id: str
    score_id: str
    composer: str
    style: str
    title: str
    split: str
    quadrant: str | None
    mood: list[str]
    tags: list[str]
    mood_tags: list[str]
    key: str
    mode: str
    tempo_class: str
    tempo_bpm: float
    velocity: int
    duration_s: float
    sample_rate: int
    parts: list[str]
    instruments: list[str]
    programs: list[int]
    unpitched_parts: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not (len(self.parts) == len(self.instruments) == len(self.programs) >= 2):
            raise ValueError(f"{self.track_id}: parts, instruments and programs must have the same length >= 2")
        if self.mode not in ("major", "minor"):
            raise ValueError(f"{self.track_id}: mode must be major or minor")
        if self.quadrant is not None and self.quadrant not in QUADRANTS:
            raise ValueError(f"{self.track_id}: unknown quadrant {self.quadrant!r}")

    @property
    def n_stems(self) -> int:
        return len(self.parts)

    def manifest_row(self) -> dict[str, Any]:
        row = {k: v for k, v in self.to_dict().items() if k in MANIFEST_SCHEMA}
        row["n_stems"] = self.n_stems
        return row


@dataclass(frozen=True)
class StemRecord(JsonRecord):
    """The ``json`` of one stem sample (without provenance); labels copied from its track.

    The labels may be absent (null where the source has none, e.g. a corpus-layout test artifact).
    """

    json_what = "stem"
    json_optional = frozenset({"quadrant", "mood", "style"})
    json_extras = frozenset({"provenance"})
    json_key_field = "track_id"

    track_id: str
    stem_index: int
    stem: str
    instrument: str
    program: int
    split: str
    quadrant: str | None
    mood: list[str]
    style: str
    sample_rate: int
    duration_s: float

    @property
    def key(self) -> str:
        return stem_key(self.track_id, self.stem_index)


def stem_key(track_id: str, stem_index: int) -> str:
    """Sample key of a stem: ``{track_id}_s{index:02d}``."""
    return f"{track_id}_s{stem_index:02d}"


@dataclass
class CorpusResult:
    """What :func:`build_corpus` produced.

    Attributes:
        tracks: Records of the tracks in the corpus, sorted by track id.
        report: The stage report (also written by the stage script).
        out_dir: Output directory, or ``None`` for an in-memory build.
        mix_info: ``artifact.json`` summary of ``mix/`` (``None`` in memory).
        stems_info: ``artifact.json`` summary of ``stems/`` (``None`` in memory).
        audio: In-memory builds only: track id -> rendered stems and mix.
        resumed_tracks: Tracks whose samples were already in verified shards.
    """

    tracks: list[TrackRecord]
    report: StageReport
    out_dir: Path | None = None
    mix_info: dict[str, Any] | None = None
    stems_info: dict[str, Any] | None = None
    audio: dict[str, RenderedTrack] | None = None
    resumed_tracks: int = 0

    def manifest(self) -> pl.DataFrame:
        """The manifest as a polars DataFrame (one row per track)."""
        return pl.DataFrame([t.manifest_row() for t in self.tracks], schema=MANIFEST_SCHEMA)


def track_record(plan: TrackPlan, split: str) -> TrackRecord:
    """The metadata and labels of a planned track (no audio needed)."""
    s = plan.score
    moods = mood_tags(s.mode, plan.tempo_class)
    style = s.composer
    return TrackRecord(
        track_id=s.track_id,
        score_id=s.score_id,
        composer=s.composer,
        style=style,
        title=s.title,
        split=split,
        quadrant=quadrant_of_tags(moods),
        mood=list(moods),
        tags=[style, *moods],
        mood_tags=moods,
        key=s.key,
        mode=s.mode,
        tempo_class=plan.tempo_class,
        tempo_bpm=plan.tempo_bpm,
        velocity=plan.velocity,
        duration_s=round(plan.duration_s, 6),
        sample_rate=plan.sample_rate,
        parts=list(plan.stems),
        instruments=[gm_instrument_name(p) for p in plan.programs],
        programs=list(plan.programs),
        unpitched_parts=list(s.excluded_parts),
    )


def track_samples(record: TrackRecord, rendered: dict[str, Any], prov: dict[str, Any]) -> tuple[Sample, list[Sample]]:
    """The mix sample and the stem samples of a rendered track (FLAC bytes in ``rendered``)."""
    mix = Sample(
        record.track_id,
        {"flac": rendered["mix_flac"], "json": record.to_json(provenance=prov)},
        seconds=record.duration_s,
        labels=tuple(record.tags),
    )
    stems = []
    for i, (name, instrument, program) in enumerate(zip(record.parts, record.instruments, record.programs)):
        meta = StemRecord(
            track_id=record.track_id,
            stem_index=i,
            stem=name,
            instrument=instrument,
            program=program,
            split=record.split,
            quadrant=record.quadrant,
            mood=list(record.mood),
            style=record.style,
            sample_rate=record.sample_rate,
            duration_s=record.duration_s,
        )
        stems.append(
            Sample(
                meta.key,
                {"flac": rendered["stem_flacs"][i], "json": meta.to_json(provenance=prov)},
                seconds=record.duration_s,
            )
        )
    return mix, stems


def manifest_bytes(tracks: list[TrackRecord]) -> bytes:
    """``manifest.parquet``: one row per track, in the order given."""
    buf = io.BytesIO()
    pl.DataFrame([t.manifest_row() for t in tracks], schema=MANIFEST_SCHEMA).write_parquet(buf)
    return buf.getvalue()


def scores_bytes(plans: Sequence[TrackPlan], tracks: list[TrackRecord]) -> bytes:
    """``scores.json.gz``: the parsed score (every part's notes in quarter lengths, key, mode) of each kept track.

    The symbolic source of the audio, so consumers such as the ``compose`` generator learn from the same notes
    without parsing music21's corpus again (the corpus stage's main cost). gzip with mtime 0: same bytes per run.
    """
    import gzip
    import json

    kept = {t.track_id for t in tracks}
    data = {p.track_id: p.score.to_dict() for p in plans if p.track_id in kept}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


__all__ = [
    "MANIFEST_SCHEMA",
    "CorpusResult",
    "StemRecord",
    "TrackPlan",
    "TrackRecord",
    "manifest_bytes",
    "scores_bytes",
    "stem_key",
    "track_record",
    "track_samples",
]
