"""The corpus workers: parse and plan a batch of scores, render a batch of planned tracks (run on the executor).

Both are module-level functions of picklable tasks, so the process and Ray backends can run
them; their results come back in input order and the parent writes them. Every draw of
:func:`plan_track` depends on ``(seed, track_id)`` only (:mod:`~mgdata.corpus.moods`), so a
track is planned the same whichever batch or worker it lands in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from mgdata.audio import encode_flac, rms_db
from mgdata.corpus.config import CorpusConfig
from mgdata.corpus.moods import arousal_class
from mgdata.corpus.records import TrackPlan
from mgdata.corpus.render import SoundFontRenderer, notes_to_seconds
from mgdata.corpus.scores import BadScore, ParsedScore, stable_int

#: A bad score as a plan task returns it: ``(score_id, where, message)``.
BadPlan = tuple[str, str, str]
#: What rendering needs of a plan (not the whole parsed score): track_id, notes_s, programs, n_samples, velocity.
RenderJob = tuple[str, tuple, tuple[int, ...], int, int]


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


def plan_batch(task: tuple[CorpusConfig, list[str], Callable[..., ParsedScore]]) -> list[TrackPlan | BadPlan]:
    """Parse and plan a batch of score ids; a bad score becomes ``(score_id, where, message)``.

    Args:
        task: ``(cfg, score_ids, parse)``; ``parse`` is the score parser
            (:func:`~mgdata.corpus.scores.parse_score`; module-level, so it pickles). The builder
            passes its own reference, so a stand-in installed on :mod:`mgdata.corpus.build` is
            what the workers call.
    """
    cfg, score_ids, parse = task
    out: list[TrackPlan | BadPlan] = []
    for sid in score_ids:
        try:
            out.append(plan_track(parse(sid, min_parts=cfg.min_parts), cfg))
        except BadScore as exc:
            out.append((sid, exc.where, exc.message))
    return out


@dataclass(frozen=True)
class RenderSpec:
    """How a render task renders: the SoundFont file, the rate, the peak level and the output form.

    Attributes:
        soundfont: SoundFont path.
        sample_rate: Hz.
        peak_dbfs: Peak level of the mix.
        encode: FLAC bytes for the writer (on disk) or float arrays (in memory).
    """

    soundfont: str
    sample_rate: int
    peak_dbfs: float
    encode: bool


@lru_cache(maxsize=2)
def _renderer(soundfont: str, sample_rate: int) -> SoundFontRenderer:
    # One loaded SoundFont per worker process (it cannot be pickled; loading costs ~50 ms).
    return SoundFontRenderer(soundfont or None, sample_rate)


def render_batch(task: tuple[RenderSpec, list[RenderJob]]) -> list[dict[str, Any]]:
    """Render (and FLAC-encode) a batch of planned tracks."""
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


__all__ = ["BadPlan", "RenderJob", "RenderSpec", "draw_programs", "plan_batch", "plan_track", "render_batch"]
