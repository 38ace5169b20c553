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

:func:`build_corpus` is :func:`_plan` -> :func:`_run` -> :func:`_summarise`; the records live
in :mod:`mgdata.corpus.records`, the parse and render tasks in :mod:`mgdata.corpus.worker`
(their public names are re-exported here), the stage glue in :mod:`mgdata.corpus.stage`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mgdata.config import ShardConfig
from mgdata.corpus.config import CorpusConfig
from mgdata.corpus.records import (
    MANIFEST_SCHEMA,
    CorpusResult,
    StemRecord,
    TrackPlan,
    TrackRecord,
    manifest_bytes,
    scores_bytes,
    stem_key,
    track_record,
    track_samples,
)
from mgdata.corpus.render import SOUNDFONT_LICENCE, RenderedTrack, SoundFontRenderer, renderer_version, soundfont_sha256
from mgdata.corpus.scores import BadScore, list_candidates, parse_score, selection_order, track_id_of
from mgdata.corpus.worker import RenderSpec, draw_programs, plan_batch, plan_track, render_batch
from mgdata.errors import InputError
from mgdata.exec import ExecConfig, chunked, executor_for, get_executor
from mgdata.provenance import Provenance
from mgdata.report import StageReport
from mgdata.splits import read_split_file, stable_split
from mgdata.store import ArtifactWriter, fingerprint
from mgdata.store.files import write_atomic

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

# --------------------------------------------------------------------------- build


@dataclass
class _Plan:
    """The planned corpus: tracks, their records, fingerprint and provenance, before any audio exists."""

    renderer: SoundFontRenderer
    plans: list[TrackPlan]  # sorted by track id
    records: dict[str, TrackRecord]
    skips: list[dict[str, str]]  # for report.json; the run appends silent tracks
    fingerprint: str
    provenance: Provenance
    sample_prov: dict[str, Any]
    seconds: float


@dataclass
class _Rendered:
    """What the run kept and wrote."""

    tracks: list[TrackRecord] = field(default_factory=list)
    audio: dict[str, RenderedTrack] | None = None  # in-memory builds only
    resumed: set[str] = field(default_factory=set)  # tracks whose samples were in verified shards
    manifest: bytes = b""
    mix_info: dict[str, Any] | None = None
    stems_info: dict[str, Any] | None = None
    seconds: float = 0.0


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
            ``manifest.parquet`` here; ``None`` renders in memory (returned in ``CorpusResult.audio``;
            keep it small).
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
    out_dir = Path(out_dir) if out_dir is not None else None
    plan = _plan(cfg, shards, report, executor, progress)
    done = _run(plan, cfg, out_dir, shards, report, executor, progress)
    result = _summarise(done, out_dir, report)
    # Timings go to the log, not the metrics: metrics must be deterministic (bench/ measures speed).
    total = time.perf_counter() - t0
    log.info("corpus: plan %.1f s, render+write %.1f s, total %.1f s", plan.seconds, done.seconds, total)
    return result


def _plan(
    cfg: CorpusConfig, shards: ShardConfig, report: StageReport, executor: ExecConfig | None, progress: bool
) -> _Plan:
    """Check renderer and split file, plan the tracks (parse on the executor), describe them, fingerprint."""
    t0 = time.perf_counter()
    # Renderer and split file first: a missing SoundFont or a bad split file fails before the slow parsing.
    renderer = SoundFontRenderer(cfg.soundfont or None, cfg.sample_rate)
    renderer.check_programs(cfg.programs)
    overrides = split_overrides(cfg)
    skips: list[dict[str, str]] = []
    plans = plan_corpus(cfg, report, executor=executor, progress=progress, skips=skips)
    seconds = time.perf_counter() - t0
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
    return _Plan(renderer, plans, records, skips, fp, prov, sample_prov, seconds)


def _run(
    plan: _Plan,
    cfg: CorpusConfig,
    out_dir: Path | None,
    shards: ShardConfig,
    report: StageReport,
    executor: ExecConfig | None,
    progress: bool,
) -> _Rendered:
    """Render the tracks not already in verified shards on the executor; write them in track_id order."""
    t1 = time.perf_counter()
    done = _Rendered(audio={} if out_dir is None else None)
    spec = RenderSpec(str(plan.renderer.path), cfg.sample_rate, cfg.peak_dbfs, encode=out_dir is not None)
    writers: tuple[ArtifactWriter, ArtifactWriter] | None = None
    with contextlib.ExitStack() as stack:
        if out_dir is not None:
            kw = {"fingerprint": plan.fingerprint, "provenance": plan.provenance, "shards": shards}
            mix_w = stack.enter_context(ArtifactWriter(out_dir / "mix", **kw))
            stems_w = stack.enter_context(ArtifactWriter(out_dir / "stems", **kw))
            writers = (mix_w, stems_w)
            done.resumed = _resumed(plan, mix_w, stems_w)
        todo = [p for p in plan.plans if p.track_id not in done.resumed]
        ex = stack.enter_context(get_executor(executor_for(executor)))
        rendered_iter = _render_results(ex, spec, todo, progress)
        for track in plan.plans:  # track_id order: the writers see the same sequence for every backend
            record = plan.records[track.track_id]
            if record.track_id in done.resumed:
                done.tracks.append(record)
            else:
                _keep(track, record, next(rendered_iter)[1], plan, cfg, report, writers, done)
        if writers is not None:
            # Side files of the mix artifact, checksummed in its artifact.json before it is written.
            done.manifest = manifest_bytes(done.tracks)
            writers[0].add_file("manifest.parquet", done.manifest)
            writers[0].add_file("report.json", _side_report(plan.skips))
            writers[0].add_file("scores.json.gz", scores_bytes(plan.plans, done.tracks))
    # Leaving the ExitStack closed both writers (artifact.json written) and the executor.
    if writers is not None:
        done.mix_info, done.stems_info = writers[0].summary, writers[1].summary
    done.seconds = time.perf_counter() - t1
    return done


def _resumed(plan: _Plan, mix_w: ArtifactWriter, stems_w: ArtifactWriter) -> set[str]:
    """Tracks whose mix and every stem sample are already in verified shards (a rerun after a crash)."""
    resumed = set()
    for track in plan.plans:
        record = plan.records[track.track_id]
        if record.track_id in mix_w.done_keys and all(
            stem_key(record.track_id, i) in stems_w.done_keys for i in range(record.n_stems)
        ):
            resumed.add(record.track_id)
    return resumed


def _render_results(
    ex: Any, spec: RenderSpec, plans: list[TrackPlan], progress: bool
) -> Iterator[tuple[TrackPlan, dict[str, Any]]]:
    # Only what rendering needs crosses the process boundary (not the whole parsed score).
    jobs = [(p.track_id, p.notes_s, p.programs, p.n_samples, p.velocity) for p in plans]
    tasks = ((spec, batch) for batch in chunked(jobs, RENDER_BATCH))
    bar = tqdm(total=len(plans), desc="corpus: render", unit="track", disable=not progress)
    it = iter(plans)
    try:
        for batch_result in ex.imap(render_batch, tasks):
            for item in batch_result:
                plan = next(it)
                if item["track_id"] != plan.track_id:  # imap yields in input order; guard the invariant
                    raise RuntimeError(f"render results out of order: {item['track_id']} != {plan.track_id}")
                bar.update(1)
                yield plan, item
    finally:
        bar.close()


def _keep(
    track: TrackPlan,
    record: TrackRecord,
    rendered: dict[str, Any],
    plan: _Plan,
    cfg: CorpusConfig,
    report: StageReport,
    writers: tuple[ArtifactWriter, ArtifactWriter] | None,
    done: _Rendered,
) -> None:
    """One rendered track: skipped when silent, else kept in memory or written (samples not yet in shards)."""
    if rendered["level_db"] < cfg.silence_db:
        sid = track.score.score_id
        exc = InputError(sid, f"silent: mix RMS {rendered['level_db']:.1f} dBFS < {cfg.silence_db:g}")
        if cfg.fail_on_bad_score:
            raise exc
        report.skip(sid, exc.message)
        plan.skips.append({"item": sid, "reason": exc.message})
        return
    if rendered["gain"] < 1.0:
        report.run("tracks_gain_reduced")  # known only for tracks rendered in this run
    done.tracks.append(record)
    if done.audio is not None:
        done.audio[record.track_id] = rendered["audio"]
        return
    assert writers is not None  # on disk: encode=True rendered FLAC bytes for these writers
    mix_w, stems_w = writers
    prov_t = {**plan.sample_prov, "score_id": record.score_id, "render_gain": round(rendered["gain"], 6)}
    mix, stems = track_samples(record, rendered, prov_t)
    if mix.key not in mix_w.done_keys:
        mix_w.write(record.split, mix)
    for s in stems:
        if s.key not in stems_w.done_keys:
            stems_w.write(record.split, s)


def _summarise(done: _Rendered, out_dir: Path | None, report: StageReport) -> CorpusResult:
    """The result, the manifest at its well-known path, and the metrics (numbers only)."""
    result = CorpusResult(
        tracks=done.tracks,
        report=report,
        out_dir=out_dir,
        mix_info=done.mix_info,
        stems_info=done.stems_info,
        audio=done.audio,
        resumed_tracks=len(done.resumed),
    )
    if out_dir is not None:
        # The same bytes at the path tools outside the pipeline read (data/corpus/manifest.parquet).
        write_atomic(out_dir / "manifest.parquet", done.manifest)
    _metrics(report, done.tracks)
    report.run("tracks_resumed", len(done.resumed))
    return result


# --------------------------------------------------------------------------- plan


def _candidate_ids(cfg: CorpusConfig) -> tuple[list[str], bool]:
    """Score ids in draw order, and whether bad ones are replaced by later draws."""
    if cfg.score_ids:
        return list(dict.fromkeys(cfg.score_ids)), False
    return selection_order(list_candidates(cfg.composers, cfg.extensions), cfg.seed), True


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

    with get_executor(executor_for(executor)) as ex:
        while len(plans) < target and pos < len(ids):
            todo = ids[pos : pos + target - len(plans)]
            pos += len(todo)
            # This module's parse_score (not the worker's import), so a stand-in set here is what workers call.
            tasks = ((cfg, batch, parse_score) for batch in chunked(todo, PLAN_BATCH))
            for batch_result in ex.imap(plan_batch, tasks):
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


# --------------------------------------------------------------------------- summarise


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


def _side_report(skips: list[dict[str, str]]) -> bytes:
    """``report.json``: the strings the metrics must not hold (skipped items and their reasons)."""
    side = {
        "stage": BUILDER,
        "skipped": len(skips),
        "skipped_items": skips,
        "skipped_by_reason": dict(sorted(Counter(s["reason"].split(":")[0] for s in skips).items())),
    }
    return (json.dumps(side, indent=2, sort_keys=True) + "\n").encode()


__all__ = [
    "BUILDER",
    "FORMAT_VERSION",
    "LICENCE",
    "MANIFEST_SCHEMA",
    "PLAN_BATCH",
    "RENDER_BATCH",
    "SOURCE",
    "CorpusResult",
    "StemRecord",
    "TrackPlan",
    "TrackRecord",
    "build_corpus",
    "corpus_fingerprint",
    "draw_programs",
    "plan_corpus",
    "plan_records",
    "plan_track",
    "split_overrides",
    "stem_key",
    "track_record",
    "track_split",
]
