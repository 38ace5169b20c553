"""Build the chorale corpus: music21 scores -> rendered stems + mix shards + manifest.

Two passes, both deterministic:

1. *Plan* (the slow part: music21 parsing). Score ids are drawn in a seeded
   order (:func:`~mgdata.corpus.scores.selection_order`) and parsed until
   ``n_tracks`` usable scores are found; a bad score (parse failure, a
   collection, fewer than ``min_parts`` parts with notes in the rendered
   window, no key) is skipped, counted in the report, and replaced by the next
   draw. Each kept score gets its tempo and GM programs from an RNG seeded by
   ``(seed, track_id)``, so a track's rendering does not depend on which other
   tracks were drawn. Splits are then assigned over the planned track ids.
2. *Render and write*, in ``track_id`` order: every part becomes a mono stem,
   the mix is their sum (one common anti-clipping gain), and samples go to two
   artifacts through :class:`~mgdata.store.ArtifactWriter` (``mix/`` and
   ``stems/``), then ``manifest.parquet``. A rerun after a crash renders only
   the tracks whose samples are not in verified shards (``done_keys``). A track
   that renders silent is skipped and counted.

Layout and fields: README.md, "Artifact formats".
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from mgdata.audio import encode_flac, rms_db
from mgdata.config import ShardConfig
from mgdata.corpus.config import CorpusConfig
from mgdata.corpus.moods import mood_tags
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
    stable_int,
    list_candidates,
    parse_score,
    selection_order,
    track_id_of,
)
from mgdata.errors import InputError
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.splits import assign_splits
from mgdata.store import ArtifactWriter, Sample, encode_json, fingerprint

log = logging.getLogger("mgdata.corpus")

BUILDER = "corpus"
SOURCE = "music21-corpus"
FORMAT_VERSION = "corpus/1"  # bump when the rendering or layout changes, to rebuild old artifacts
MUSIC21_LICENCE = (
    "music21 corpus encodings, distributed with music21 (software BSD-3-Clause): per music21/corpus/license.txt "
    "each piece is out of copyright in the US or licensed for use, some encodings may restrict commercial use "
    "(see the licence in each file); the Bach chorales and other pre-1900 compositions are public domain"
)
LICENCE = f"{MUSIC21_LICENCE}; {SOUNDFONT_LICENCE}"

MANIFEST_SCHEMA = {
    "track_id": pl.String, "score_id": pl.String, "composer": pl.String, "style": pl.String,
    "title": pl.String, "split": pl.String, "tags": pl.List(pl.String), "mood_tags": pl.List(pl.String),
    "key": pl.String, "mode": pl.String, "tempo_bpm": pl.Float64, "duration_s": pl.Float64,
    "sample_rate": pl.Int64, "parts": pl.List(pl.String), "instruments": pl.List(pl.String), "n_stems": pl.Int64,
}


@dataclass(frozen=True)
class TrackPlan:
    """Everything needed to render one track and describe it, before any audio exists.

    Attributes:
        score: The parsed score (all its parts with notes).
        tempo_bpm: Drawn rendering tempo (quarter notes per minute).
        stems: Part names rendered as stems (parts with notes in the window), score order.
        programs: GM program per stem.
        notes_s: Per stem, ``(onset_s, offset_s, pitch)`` at ``tempo_bpm`` inside the window.
        n_samples: Rendered length (``max_duration_s`` or the last note-off plus the release tail).
        sample_rate: Hz.
    """

    score: ParsedScore
    tempo_bpm: float
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
    """One row of ``manifest.parquet`` (and the fields of the mix ``json``, without provenance)."""

    track_id: str
    score_id: str
    composer: str
    style: str
    title: str
    split: str
    tags: list[str]
    mood_tags: list[str]
    key: str
    mode: str
    tempo_bpm: float
    duration_s: float
    sample_rate: int
    parts: list[str]
    instruments: list[str]
    programs: list[int]

    def __post_init__(self):
        if not (len(self.parts) == len(self.instruments) == len(self.programs) >= 2):
            raise ValueError(f"{self.track_id}: parts, instruments and programs must have the same length >= 2")
        if self.mode not in ("major", "minor"):
            raise ValueError(f"{self.track_id}: mode must be major or minor")

    @property
    def n_stems(self) -> int:
        return len(self.parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrackRecord":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    def manifest_row(self) -> dict[str, Any]:
        row = {k: v for k, v in self.to_dict().items() if k in MANIFEST_SCHEMA}
        row["n_stems"] = self.n_stems
        return row


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
    """Draw tempo and instruments for a parsed score and cut it to the rendering window.

    Raises:
        BadScore: Fewer than ``cfg.min_parts`` parts have notes in the window.
    """
    rng = np.random.default_rng([cfg.seed, stable_int(score.track_id)])
    lo, hi = cfg.tempo_bpm
    tempo = round(float(rng.uniform(lo, hi)), 1) if hi > lo else float(lo)
    max_s = cfg.max_duration_s
    stems, notes_s = [], []
    for part in score.parts:
        notes = tuple(n for n in notes_to_seconds(part.notes, tempo) if n[0] < max_s)
        if notes:
            stems.append(part.name)
            notes_s.append(notes)
    if len(stems) < cfg.min_parts:
        raise BadScore(score.score_id, "too_few_parts",
                       f"{len(stems)} part(s) with notes in the first {max_s:g} s, need {cfg.min_parts}")
    end_s = max(off for notes in notes_s for _, off, _ in notes)
    sr = cfg.sample_rate
    n_samples = min(int(round(max_s * sr)), int(round((end_s + cfg.release_tail_s) * sr)))
    programs = draw_programs(rng, cfg.programs, len(stems))
    return TrackPlan(score=score, tempo_bpm=tempo, stems=tuple(stems), programs=tuple(programs),
                     notes_s=tuple(notes_s), n_samples=n_samples, sample_rate=sr)


def _candidate_ids(cfg: CorpusConfig) -> tuple[list[str], bool]:
    """Score ids in draw order, and whether bad ones are replaced by later draws."""
    if cfg.score_ids:
        return list(dict.fromkeys(cfg.score_ids)), False
    return selection_order(list_candidates(cfg.composers, cfg.extensions), cfg.seed), True


def plan_corpus(cfg: CorpusConfig, report: StageReport, *, progress: bool = True) -> list[TrackPlan]:
    """Parse and plan up to ``cfg.n_tracks`` tracks; bad scores are skipped and counted.

    Returns:
        Plans sorted by track id.

    Raises:
        InputError: A bad score when ``cfg.fail_on_bad_score`` is set.
        ParamsError: A composer with no scores in music21's corpus.
    """
    ids, refill = _candidate_ids(cfg)
    target = cfg.n_tracks if refill else min(cfg.n_tracks, len(ids))
    plans: dict[str, TrackPlan] = {}
    considered = 0
    bar = tqdm(total=target, desc="corpus: parse scores", unit="score", disable=not progress)
    for sid in ids:
        if len(plans) >= target:
            break
        considered += 1
        try:
            tid = track_id_of(sid)
            if tid in plans:
                raise BadScore(sid, "duplicate", f"same track id {tid!r} as {plans[tid].score.score_id}")
            score = parse_score(sid, min_parts=cfg.min_parts)
            plan = plan_track(score, cfg)
        except BadScore as exc:
            if cfg.fail_on_bad_score:
                raise
            report.skip(exc.where, exc.message)
            continue
        plans[plan.track_id] = plan
        bar.update(1)
    bar.close()
    report.set("scores_considered", considered)
    if len(plans) < cfg.n_tracks:
        log.warning("corpus: %d of %d requested tracks (%d candidate scores)", len(plans), cfg.n_tracks, len(ids))
    return [plans[k] for k in sorted(plans)]


# --------------------------------------------------------------------------- records and samples


def track_record(plan: TrackPlan, split: str, cfg: CorpusConfig) -> TrackRecord:
    """The metadata of a planned track (no audio needed)."""
    s = plan.score
    moods = mood_tags(s.mode, plan.tempo_bpm, cfg.fast_tempo_bpm)
    style = s.composer
    return TrackRecord(
        track_id=s.track_id, score_id=s.score_id, composer=s.composer, style=style, title=s.title,
        split=split, tags=[style, *moods], mood_tags=moods, key=s.key, mode=s.mode,
        tempo_bpm=plan.tempo_bpm, duration_s=round(plan.duration_s, 6), sample_rate=plan.sample_rate,
        parts=list(plan.stems), instruments=[gm_instrument_name(p) for p in plan.programs],
        programs=list(plan.programs),
    )


def _samples(record: TrackRecord, audio: RenderedTrack, prov: dict[str, Any]) -> tuple[Sample, list[Sample]]:
    sr = audio.sample_rate
    mix_meta = {**record.to_dict(), "provenance": prov}
    mix = Sample(record.track_id, {"flac": encode_flac(audio.mix, sr), "json": encode_json(mix_meta)},
                 seconds=record.duration_s, labels=tuple(record.tags))
    stems = []
    for i, (name, instrument, program) in enumerate(zip(record.parts, record.instruments, record.programs)):
        meta = {
            "track_id": record.track_id, "stem_index": i, "stem": name, "instrument": instrument,
            "program": program, "split": record.split, "sample_rate": sr, "duration_s": record.duration_s,
            "provenance": prov,
        }
        stems.append(Sample(f"{record.track_id}_s{i:02d}",
                            {"flac": encode_flac(audio.stems[i], sr), "json": encode_json(meta)},
                            seconds=record.duration_s))
    return mix, stems


def _metrics(report: StageReport, tracks: list[TrackRecord]) -> None:
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


# --------------------------------------------------------------------------- build


def corpus_fingerprint(cfg: CorpusConfig, shards: ShardConfig, renderer: SoundFontRenderer) -> str:
    """Hash of everything the corpus content depends on (params, music21, renderer, SoundFont bytes)."""
    import music21

    exclude = {"fail_on_bad_score"}  # changes whether the stage stops, not what it writes
    params = {k: v for k, v in asdict(cfg).items() if k not in exclude}
    return fingerprint(FORMAT_VERSION, params, shards, music21.__version__, renderer_version(),
                       soundfont_sha256(renderer.path))


def build_corpus(
    out_dir: str | Path | None = None,
    *,
    cfg: CorpusConfig,
    shards: ShardConfig,
    report: StageReport | None = None,
    progress: bool = True,
) -> CorpusResult:
    """Render the chorale corpus.

    Args:
        out_dir: Writes ``mix/``, ``stems/`` and ``manifest.parquet`` here; ``None``
            renders in memory (returned in ``CorpusResult.audio``; keep it small).
        cfg: Section ``corpus``.
        shards: Section ``shards``.
        report: Stage report to fill (a new one if ``None``).
        progress: Show tqdm progress bars.

    Returns:
        The tracks, the report and (in memory) the audio.

    Raises:
        DependencyError: tinysoundfont or the SoundFont is missing (message says how to install).
        ParamsError: A composer unknown to music21's corpus or a program missing in the SoundFont.
        InputError: A bad score when ``cfg.fail_on_bad_score`` is set.
    """
    report = report or StageReport("corpus")
    t0 = time.perf_counter()
    # Renderer first: a missing SoundFont fails before the slow parsing.
    renderer = SoundFontRenderer(cfg.soundfont or None, cfg.sample_rate)
    renderer.check_programs(cfg.programs)
    plans = plan_corpus(cfg, report, progress=progress)
    t_plan = time.perf_counter() - t0
    splits = assign_splits([p.track_id for p in plans], fractions=cfg.fractions, seed=cfg.seed)

    import music21

    fp = corpus_fingerprint(cfg, shards, renderer)
    prov = Provenance(
        builder=BUILDER, source=SOURCE, source_version=str(music21.__version__), licence=LICENCE,
        seed=cfg.seed, params_hash=fp,
        extra={"renderer": renderer_version(), "soundfont": renderer.name,
               "soundfont_sha256": soundfont_sha256(renderer.path)},
    )
    sample_prov = {**prov.sample_dict(), "renderer": renderer_version(), "soundfont": renderer.name}

    tracks: list[TrackRecord] = []
    audio: dict[str, RenderedTrack] | None = {} if out_dir is None else None
    audio_s = 0.0
    t_render = 0.0
    resumed = 0
    mix_w = stems_w = None
    with contextlib.ExitStack() as stack:
        if out_dir is not None:
            out_dir = Path(out_dir)
            mix_w = stack.enter_context(
                ArtifactWriter(out_dir / "mix", fingerprint=fp, provenance=prov, shards=shards))
            stems_w = stack.enter_context(
                ArtifactWriter(out_dir / "stems", fingerprint=fp, provenance=prov, shards=shards))
        for plan in tqdm(plans, desc="corpus: render", unit="track", disable=not progress):
            record = track_record(plan, splits[plan.track_id], cfg)
            stem_keys = [f"{record.track_id}_s{i:02d}" for i in range(record.n_stems)]
            if mix_w is not None and record.track_id in mix_w.done_keys and all(
                k in stems_w.done_keys for k in stem_keys
            ):
                tracks.append(record)  # resumed: its samples are in verified shards
                resumed += 1
                continue
            t1 = time.perf_counter()
            rendered = renderer.render_track(plan.notes_s, plan.programs, plan.n_samples,
                                             velocity=cfg.velocity, peak_dbfs=cfg.peak_dbfs)
            t_render += time.perf_counter() - t1
            level = rms_db(rendered.mix)
            if level < cfg.silence_db:
                exc = InputError(plan.score.score_id, f"silent: mix RMS {level:.1f} dBFS < {cfg.silence_db:g}")
                if cfg.fail_on_bad_score:
                    raise exc
                report.skip(plan.score.score_id, exc.message)
                continue
            audio_s += rendered.duration_s
            if rendered.gain < 1.0:
                report.run("tracks_gain_reduced")  # known only for tracks rendered in this run
            tracks.append(record)
            if audio is not None:
                audio[record.track_id] = rendered
                continue
            prov_t = {**sample_prov, "score_id": record.score_id, "render_gain": round(rendered.gain, 6)}
            mix, stems = _samples(record, rendered, prov_t)
            if mix.key not in mix_w.done_keys:
                mix_w.write(record.split, mix)
            for s in stems:
                if s.key not in stems_w.done_keys:
                    stems_w.write(record.split, s)
    # Leaving the ExitStack closed both writers (artifact.json written).
    mix_info = mix_w.summary if mix_w is not None else None
    stems_info = stems_w.summary if stems_w is not None else None
    result = CorpusResult(tracks=tracks, report=report, out_dir=out_dir, mix_info=mix_info,
                          stems_info=stems_info, audio=audio, resumed_tracks=resumed)
    if out_dir is not None:
        tmp = out_dir / "manifest.parquet.tmp"
        result.manifest().write_parquet(tmp)
        os.replace(tmp, out_dir / "manifest.parquet")
    _metrics(report, tracks)
    report.run("tracks_resumed", resumed)
    # Timings go to the log, not the metrics: metrics must be deterministic (bench/ measures speed).
    log.info("corpus: plan %.1f s, render %.1f s (%.0fx real time), total %.1f s", t_plan, t_render,
             audio_s / t_render if t_render > 0 else 0.0, time.perf_counter() - t0)
    return result
