"""Build the chorale corpus: music21 scores -> rendered stems + mix shards + manifest.

plan -> run -> summarise, all deterministic and independent of the executor:

1. *Plan* (the slow part: music21 parsing). Score ids are drawn in a seeded
   order (:func:`~mgdata.corpus.scores.selection_order`) and parsed in
   fixed-size ordered batches on the executor; results come back in draw order
   and the first ``n_tracks`` usable scores are kept (a round parses exactly
   the candidates still needed, so no result depends on timing). A bad score
   (parse failure, a collection, fewer than ``min_parts`` pitched parts with
   notes in the rendered window, no key) is skipped, counted and replaced by the
   next draw; unpitched parts (percussion, timpani) are left out and counted.
   Each kept score gets its arousal class, tempo, velocity and GM programs from
   ``(seed, track_id)`` only (:mod:`~mgdata.corpus.moods`), and its split from
   ``(split_seed, track_id, fractions)`` only (:func:`mgdata.splits.stable_split`,
   or the split file), so nothing about a track depends on which other tracks
   were drawn: growing the corpus never moves a track to another split.
2. *Run*: tracks are rendered (and FLAC-encoded) in fixed batches on the
   executor; the ONE pair of :class:`~mgdata.store.ArtifactWriter` s in this
   process writes the samples in ``track_id`` order (``mix/`` and ``stems/``),
   so shards are byte-identical for serial, process and Ray backends. A rerun
   after a crash renders only the tracks whose samples are not in verified
   shards (``done_keys``). A track that renders silent is skipped and counted.
3. *Summarise*: ``manifest.parquet`` (one row per track) and ``report.json``
   (the skipped items and their reasons) as checksummed side files of ``mix/``
   (``ArtifactWriter.add_file``), the manifest also at ``<out_dir>/manifest.parquet``;
   and the metrics (numbers only: counts per split, quadrant and style, seconds, hours).

Layout and fields: README.md, "Artifact formats" and "The chorale corpus".
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from mgdata.audio import encode_flac, rms_db
from mgdata.config import ShardConfig
from mgdata.corpus.config import CorpusConfig
from mgdata.corpus.moods import arousal_class, mood_tags, quadrant_of_tags
from mgdata.corpus.render import (
    SOUNDFONT_LICENCE,
    RenderedTrack,
    SoundFontRenderer,
    gm_instrument_name,
    notes_to_seconds,
    renderer_version,
    soundfont_sha256,
)
from mgdata.corpus.scores import (
    BadScore,
    ParsedScore,
    list_candidates,
    parse_score,
    selection_order,
    stable_int,
    track_id_of,
)
from mgdata.errors import InputError
from mgdata.exec import ExecConfig, chunked, get_executor
from mgdata.labels import QUADRANTS
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.splits import read_split_file, stable_split
from mgdata.store import ArtifactWriter, Sample, encode_json, fingerprint

log = logging.getLogger("mgdata.corpus")

BUILDER = "corpus"
SOURCE = "music21-corpus"
FORMAT_VERSION = "corpus/2"  # bump when the rendering or layout changes, to rebuild old artifacts
MUSIC21_LICENCE = (
    "music21 corpus encodings, distributed with music21 (software BSD-3-Clause): per music21/corpus/license.txt "
    "each piece is out of copyright in the US or licensed for use, some encodings may restrict commercial use "
    "(see the licence in each file); the Bach chorales and other pre-1900 compositions are public domain"
)
LICENCE = f"{MUSIC21_LICENCE}; {SOUNDFONT_LICENCE}"
#: Scores per parse task and tracks per render task: shard-sized chunks fixed by count (never by timing).
PLAN_BATCH = 4
RENDER_BATCH = 4

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
class TrackRecord:
    """One track: ``to_dict()`` is the mix sample's ``json`` (without provenance); a subset is its manifest row.

    Label fields (CONTRACTS.md): ``quadrant`` (paper1 mapping of the mood tags, exactly as the relabel stage
    maps them), ``mood`` (the MTG-Jamendo mood tags, multi-label), ``style`` (the repertoire).
    """

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def manifest_row(self) -> dict[str, Any]:
        row = {k: v for k, v in self.to_dict().items() if k in MANIFEST_SCHEMA}
        row["n_stems"] = self.n_stems
        return row


@dataclass(frozen=True)
class StemRecord:
    """The ``json`` of one stem sample (without provenance); labels copied from its track."""

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StemRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})

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


# --------------------------------------------------------------------------- planning


def draw_programs(rng: np.random.Generator, pool: list[int], n: int) -> list[int]:
    """``n`` programs from ``pool``: distinct while the pool lasts, then repeats (seeded)."""
    pool = list(dict.fromkeys(pool))
    out: list[int] = []
    while len(out) < n:
        take = min(n - len(out), len(pool))
        out.extend(int(p) for p in rng.choice(pool, size=take, replace=False))
    return out


def plan_track(score: ParsedScore, cfg: CorpusConfig) -> TrackPlan:
    """Draw arousal class, tempo, velocity and instruments for a parsed score; cut it to the window.

    Every draw depends on ``(cfg.seed, track_id)`` only.

    Raises:
        BadScore: Fewer than ``cfg.min_parts`` parts have notes in the window.
    """
    tempo_class = arousal_class(score.track_id, cfg.seed)
    rng = np.random.default_rng([cfg.seed, stable_int(score.track_id)])
    lo, hi = cfg.fast_tempo_bpm if tempo_class == "fast" else cfg.slow_tempo_bpm
    tempo = round(float(rng.uniform(lo, hi)), 1) if hi > lo else float(lo)
    vlo, vhi = cfg.fast_velocity if tempo_class == "fast" else cfg.slow_velocity
    velocity = int(rng.integers(vlo, vhi + 1))
    max_s = cfg.max_duration_s
    stems, notes_s = [], []
    for part in score.parts:
        notes = tuple(n for n in notes_to_seconds(part.notes, tempo) if n[0] < max_s)
        if notes:
            stems.append(part.name)
            notes_s.append(notes)
    if len(stems) < cfg.min_parts:
        raise BadScore(
            score.score_id,
            "too_few_parts",
            f"{len(stems)} part(s) with notes in the first {max_s:g} s, need {cfg.min_parts}",
        )
    end_s = max(off for notes in notes_s for _, off, _ in notes)
    sr = cfg.sample_rate
    n_samples = min(int(round(max_s * sr)), int(round((end_s + cfg.release_tail_s) * sr)))
    programs = draw_programs(rng, cfg.programs, len(stems))
    return TrackPlan(
        score=score,
        tempo_class=tempo_class,
        tempo_bpm=tempo,
        velocity=velocity,
        stems=tuple(stems),
        programs=tuple(programs),
        notes_s=tuple(notes_s),
        n_samples=n_samples,
        sample_rate=sr,
    )


def _candidate_ids(cfg: CorpusConfig) -> tuple[list[str], bool]:
    """Score ids in draw order, and whether bad ones are replaced by later draws."""
    if cfg.score_ids:
        return list(dict.fromkeys(cfg.score_ids)), False
    return selection_order(list_candidates(cfg.composers, cfg.extensions), cfg.seed), True


def _plan_batch(task: tuple[CorpusConfig, list[str]]) -> list[TrackPlan | tuple[str, str, str]]:
    """Worker: parse and plan a batch of score ids; a bad score becomes ``(score_id, where, message)``."""
    cfg, score_ids = task
    out: list[TrackPlan | tuple[str, str, str]] = []
    for sid in score_ids:
        try:
            out.append(plan_track(parse_score(sid, min_parts=cfg.min_parts), cfg))
        except BadScore as exc:
            out.append((sid, exc.where, exc.message))
    return out


def plan_corpus(
    cfg: CorpusConfig,
    report: StageReport,
    *,
    executor: ExecConfig | None = None,
    progress: bool = True,
    skips: list[dict[str, str]] | None = None,
) -> list[TrackPlan]:
    """Parse and plan up to ``cfg.n_tracks`` tracks on the executor; bad scores are skipped and counted.

    Rounds: each round parses, in ``PLAN_BATCH``-sized ordered tasks, exactly the
    next ``target - kept`` candidates of the draw order, so the kept set is "the
    first ``n_tracks`` usable scores in draw order" whatever the backend.

    Args:
        cfg: Section ``corpus``.
        report: Receives ``scores_considered``, ``unpitched_parts_excluded`` and the skips.
        executor: Where parsing runs (``None``: serial, in this process).
        progress: Show a progress bar.
        skips: If given, every skip is also appended here as ``{"item", "reason"}`` (for ``report.json``).

    Returns:
        Plans sorted by track id.

    Raises:
        InputError: A bad score when ``cfg.fail_on_bad_score`` is set.
        ParamsError: A composer with no scores in music21's corpus.
    """
    ids, refill = _candidate_ids(cfg)
    target = cfg.n_tracks if refill else min(cfg.n_tracks, len(ids))
    plans: dict[str, TrackPlan] = {}
    pos = 0
    bar = tqdm(total=target, desc="corpus: parse scores", unit="score", disable=not progress)

    def skip(item: str, message: str) -> None:
        report.skip(item, message)
        if skips is not None:
            skips.append({"item": str(item), "reason": str(message)})

    with get_executor(executor or ExecConfig(backend="serial")) as ex:
        while len(plans) < target and pos < len(ids):
            todo = ids[pos : pos + target - len(plans)]
            pos += len(todo)
            tasks = ((cfg, batch) for batch in chunked(todo, PLAN_BATCH))
            for batch_result in ex.imap(_plan_batch, tasks):
                for item in batch_result:
                    sid = item.score.score_id if isinstance(item, TrackPlan) else item[0]
                    tid = item.track_id if isinstance(item, TrackPlan) else track_id_of(sid)
                    if tid in plans:
                        exc = BadScore(sid, "duplicate", f"same track id {tid!r} as {plans[tid].score.score_id}")
                    elif isinstance(item, TrackPlan):
                        plans[tid] = item
                        bar.update(1)
                        continue
                    else:
                        exc = InputError(item[1], item[2])
                    if cfg.fail_on_bad_score:
                        raise exc
                    skip(exc.where, exc.message)
    bar.close()
    report.set("scores_considered", pos)
    report.set("unpitched_parts_excluded", sum(len(p.score.excluded_parts) for p in plans.values()))
    if len(plans) < cfg.n_tracks:
        log.warning("corpus: %d of %d requested tracks (%d candidate scores)", len(plans), cfg.n_tracks, len(ids))
    return [plans[k] for k in sorted(plans)]


def split_overrides(cfg: CorpusConfig) -> dict[str, str]:
    """Rows of ``cfg.split_file`` (empty when none is set).

    Raises:
        InputError: The file is unreadable or malformed (names ``file:line``).
    """
    return read_split_file(cfg.split_file, cfg.fractions) if cfg.split_file else {}


def track_split(track_id: str, cfg: CorpusConfig, overrides: dict[str, str] | None = None) -> str:
    """The split of a track: the split file's row if it lists the track, else the stable hash."""
    if overrides and track_id in overrides:
        return overrides[track_id]
    return stable_split(track_id, seed=cfg.split_seed, fractions=cfg.fractions)


# --------------------------------------------------------------------------- records and samples


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


def plan_records(
    cfg: CorpusConfig,
    report: StageReport | None = None,
    *,
    executor: ExecConfig | None = None,
    progress: bool = False,
) -> tuple[list[TrackPlan], list[TrackRecord]]:
    """Plan the corpus and describe every track (labels, split) without rendering anything.

    Returns:
        ``(plans, records)``, both sorted by track id.
    """
    plans = plan_corpus(cfg, report or StageReport(BUILDER), executor=executor, progress=progress)
    overrides = split_overrides(cfg)
    return plans, [track_record(p, track_split(p.track_id, cfg, overrides)) for p in plans]


@dataclass(frozen=True)
class _RenderSpec:
    soundfont: str
    sample_rate: int
    peak_dbfs: float
    encode: bool  # FLAC bytes for the writer (on disk) or float arrays (in memory)


@lru_cache(maxsize=2)
def _renderer(soundfont: str, sample_rate: int) -> SoundFontRenderer:
    # One loaded SoundFont per worker process (it cannot be pickled; loading costs ~50 ms).
    return SoundFontRenderer(soundfont or None, sample_rate)


_RenderJob = tuple[str, tuple, tuple[int, ...], int, int]  # track_id, notes_s, programs, n_samples, velocity


def _render_batch(task: tuple[_RenderSpec, list[_RenderJob]]) -> list[dict[str, Any]]:
    """Worker: render (and FLAC-encode) a batch of planned tracks."""
    spec, jobs = task
    renderer = _renderer(spec.soundfont, spec.sample_rate)
    out = []
    for track_id, notes_s, programs, n_samples, velocity in jobs:
        rendered = renderer.render_track(notes_s, programs, n_samples, velocity=velocity, peak_dbfs=spec.peak_dbfs)
        item: dict[str, Any] = {
            "track_id": track_id,
            "level_db": rms_db(rendered.mix),
            "gain": rendered.gain,
            "duration_s": rendered.duration_s,
        }
        if spec.encode:
            item["mix_flac"] = encode_flac(rendered.mix, rendered.sample_rate)
            item["stem_flacs"] = [encode_flac(x, rendered.sample_rate) for x in rendered.stems]
        else:
            item["audio"] = rendered
        out.append(item)
    return out


def _samples(record: TrackRecord, rendered: dict[str, Any], prov: dict[str, Any]) -> tuple[Sample, list[Sample]]:
    mix_meta = {**record.to_dict(), "provenance": prov}
    mix = Sample(
        record.track_id,
        {"flac": rendered["mix_flac"], "json": encode_json(mix_meta)},
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
                {"flac": rendered["stem_flacs"][i], "json": encode_json({**meta.to_dict(), "provenance": prov})},
                seconds=record.duration_s,
            )
        )
    return mix, stems


def _nested_counts(tracks: Sequence[TrackRecord], outer: str, inner: str) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = {}
    for t in tracks:
        out.setdefault(str(getattr(t, outer)), Counter())[str(getattr(t, inner))] += 1
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def _metrics(report: StageReport, tracks: list[TrackRecord]) -> None:
    """Numbers only (counts, seconds, hours): strings and lists go to ``report.json``."""
    seconds: Counter[str] = Counter()
    per_split: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    for t in tracks:
        seconds[t.split] += t.duration_s
        per_split[t.split] += 1
        tags.update(t.tags)
    report.set("tracks", len(tracks))
    report.set("stems", sum(t.n_stems for t in tracks))
    report.set("tracks_per_split", dict(sorted(per_split.items())))
    report.set("seconds_per_split", {k: round(v, 3) for k, v in sorted(seconds.items())})
    report.set("hours", round(sum(seconds.values()) / 3600.0, 4))
    report.set("tag_counts", dict(sorted(tags.items())))
    report.set("mode_counts", dict(sorted(Counter(t.mode for t in tracks).items())))
    report.set("quadrant_counts", dict(sorted(Counter(str(t.quadrant) for t in tracks).items())))
    report.set("style_counts", dict(sorted(Counter(t.style for t in tracks).items())))
    report.set("split_quadrant_counts", _nested_counts(tracks, "split", "quadrant"))
    report.set("split_style_counts", _nested_counts(tracks, "split", "style"))
    report.set("quadrant_style_counts", _nested_counts(tracks, "quadrant", "style"))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- build


def corpus_fingerprint(cfg: CorpusConfig, shards: ShardConfig, renderer: SoundFontRenderer) -> str:
    """Hash of everything the corpus content depends on (params, split file, music21, renderer, SoundFont)."""
    import music21

    exclude = {"fail_on_bad_score"}  # changes whether the stage stops, not what it writes
    params = {k: v for k, v in asdict(cfg).items() if k not in exclude}
    # The split file's content, not its path, decides the splits.
    split_file = Path(cfg.split_file).read_bytes().decode("utf-8", "replace") if cfg.split_file else ""
    return fingerprint(
        FORMAT_VERSION,
        params,
        split_file,
        shards,
        music21.__version__,
        renderer_version(),
        soundfont_sha256(renderer.path),
    )


def _render_results(
    ex: Any, spec: _RenderSpec, plans: list[TrackPlan], progress: bool
) -> Iterator[tuple[TrackPlan, dict[str, Any]]]:
    # Only what rendering needs crosses the process boundary (not the whole parsed score).
    jobs = [(p.track_id, p.notes_s, p.programs, p.n_samples, p.velocity) for p in plans]
    tasks = ((spec, batch) for batch in chunked(jobs, RENDER_BATCH))
    bar = tqdm(total=len(plans), desc="corpus: render", unit="track", disable=not progress)
    it = iter(plans)
    try:
        for batch_result in ex.imap(_render_batch, tasks):
            for item in batch_result:
                plan = next(it)
                if item["track_id"] != plan.track_id:  # imap yields in input order; guard the invariant
                    raise RuntimeError(f"render results out of order: {item['track_id']} != {plan.track_id}")
                bar.update(1)
                yield plan, item
    finally:
        bar.close()


def build_corpus(
    out_dir: str | Path | None = None,
    *,
    cfg: CorpusConfig,
    shards: ShardConfig,
    report: StageReport | None = None,
    progress: bool = True,
    executor: ExecConfig | None = None,
) -> CorpusResult:
    """Render the chorale corpus.

    Args:
        out_dir: Writes ``mix/`` (with side files ``manifest.parquet``, ``report.json``), ``stems/`` and
            ``manifest.parquet`` here; ``None``
            renders in memory (returned in ``CorpusResult.audio``; keep it small).
        cfg: Section ``corpus``.
        shards: Section ``shards``.
        report: Stage report to fill (a new one if ``None``).
        progress: Show tqdm progress bars.
        executor: Where parsing and rendering run (section ``executor``; ``None``: serial in this
            process). Outputs are byte-identical for every backend, so it is not fingerprinted.

    Returns:
        The tracks, the report and (in memory) the audio.

    Raises:
        DependencyError: tinysoundfont or the SoundFont is missing (message says how to install).
        ParamsError: A composer unknown to music21's corpus or a program missing in the SoundFont.
        InputError: A bad score when ``cfg.fail_on_bad_score`` is set, or a malformed split file.
    """
    report = report or StageReport(BUILDER)
    t0 = time.perf_counter()
    # Renderer and split file first: a missing SoundFont or a bad split file fails before the slow parsing.
    renderer = SoundFontRenderer(cfg.soundfont or None, cfg.sample_rate)
    renderer.check_programs(cfg.programs)
    overrides = split_overrides(cfg)
    skips: list[dict[str, str]] = []
    plans = plan_corpus(cfg, report, executor=executor, progress=progress, skips=skips)
    t_plan = time.perf_counter() - t0
    records = {p.track_id: track_record(p, track_split(p.track_id, cfg, overrides)) for p in plans}
    report.set("split_file_tracks", sum(1 for t in records if t in overrides))

    import music21

    fp = corpus_fingerprint(cfg, shards, renderer)
    prov = Provenance(
        builder=BUILDER,
        source=SOURCE,
        source_version=str(music21.__version__),
        licence=LICENCE,
        seed=cfg.seed,
        params_hash=fp,
        extra={
            "renderer": renderer_version(),
            "soundfont": renderer.name,
            "soundfont_sha256": soundfont_sha256(renderer.path),
        },
    )
    sample_prov = {**prov.sample_dict(), "renderer": renderer_version(), "soundfont": renderer.name}
    spec = _RenderSpec(str(renderer.path), cfg.sample_rate, cfg.peak_dbfs, encode=out_dir is not None)

    tracks: list[TrackRecord] = []
    audio: dict[str, RenderedTrack] | None = {} if out_dir is None else None
    resumed: set[str] = set()
    t1 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        mix_w = stems_w = None
        if out_dir is not None:
            out_dir = Path(out_dir)
            mix_w = stack.enter_context(ArtifactWriter(out_dir / "mix", fingerprint=fp, provenance=prov, shards=shards))
            stems_w = stack.enter_context(
                ArtifactWriter(out_dir / "stems", fingerprint=fp, provenance=prov, shards=shards)
            )
            for plan in plans:
                record = records[plan.track_id]
                if record.track_id in mix_w.done_keys and all(
                    stem_key(record.track_id, i) in stems_w.done_keys for i in range(record.n_stems)
                ):
                    resumed.add(record.track_id)  # its samples are in verified shards
        todo = [p for p in plans if p.track_id not in resumed]
        ex = stack.enter_context(get_executor(executor or ExecConfig(backend="serial")))
        rendered_iter = _render_results(ex, spec, todo, progress)
        for plan in plans:  # track_id order: the writers see the same sequence for every backend
            record = records[plan.track_id]
            if record.track_id in resumed:
                tracks.append(record)
                continue
            _, rendered = next(rendered_iter)
            if rendered["level_db"] < cfg.silence_db:
                exc = InputError(
                    plan.score.score_id, f"silent: mix RMS {rendered['level_db']:.1f} dBFS < {cfg.silence_db:g}"
                )
                if cfg.fail_on_bad_score:
                    raise exc
                report.skip(plan.score.score_id, exc.message)
                skips.append({"item": plan.score.score_id, "reason": exc.message})
                continue
            if rendered["gain"] < 1.0:
                report.run("tracks_gain_reduced")  # known only for tracks rendered in this run
            tracks.append(record)
            if audio is not None:
                audio[record.track_id] = rendered["audio"]
                continue
            prov_t = {**sample_prov, "score_id": record.score_id, "render_gain": round(rendered["gain"], 6)}
            mix, stems = _samples(record, rendered, prov_t)
            if mix.key not in mix_w.done_keys:
                mix_w.write(record.split, mix)
            for s in stems:
                if s.key not in stems_w.done_keys:
                    stems_w.write(record.split, s)
        if mix_w is not None:
            # Side files of the mix artifact, checksummed in its artifact.json before it is written.
            manifest_bytes = _manifest_bytes(pl.DataFrame([t.manifest_row() for t in tracks], schema=MANIFEST_SCHEMA))
            mix_w.add_file("manifest.parquet", manifest_bytes)
            mix_w.add_file("report.json", _side_report(skips))
    # Leaving the ExitStack closed both writers (artifact.json written) and the executor.
    t_render = time.perf_counter() - t1
    mix_info = mix_w.summary if mix_w is not None else None
    stems_info = stems_w.summary if stems_w is not None else None
    result = CorpusResult(
        tracks=tracks,
        report=report,
        out_dir=out_dir,
        mix_info=mix_info,
        stems_info=stems_info,
        audio=audio,
        resumed_tracks=len(resumed),
    )
    if out_dir is not None:
        # The same bytes at the path tools outside the pipeline read (data/corpus/manifest.parquet).
        _write_atomic(out_dir / "manifest.parquet", manifest_bytes)
    _metrics(report, tracks)
    report.run("tracks_resumed", len(resumed))
    # Timings go to the log, not the metrics: metrics must be deterministic (bench/ measures speed).
    log.info("corpus: plan %.1f s, render+write %.1f s, total %.1f s", t_plan, t_render, time.perf_counter() - t0)
    return result


def _side_report(skips: list[dict[str, str]]) -> bytes:
    """``report.json``: the strings the metrics must not hold (skipped items and their reasons)."""
    side = {
        "stage": BUILDER,
        "skipped": len(skips),
        "skipped_items": skips,
        "skipped_by_reason": dict(sorted(Counter(s["reason"].split(":")[0] for s in skips).items())),
    }
    return (json.dumps(side, indent=2, sort_keys=True) + "\n").encode()


def _manifest_bytes(frame: pl.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()
