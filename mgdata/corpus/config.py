"""Params section ``corpus``: which music21 scores to render, and how.

See the ``corpus`` section of ``params.yaml`` for the documented defaults and the larger variant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mgdata.config import check

# General-MIDI programs (0-based) that sound plausible on sustained polyphonic
# lines in TimGM6mb: keyboards, organ, strings, choir, brass, winds.
DEFAULT_PROGRAMS = [0, 6, 19, 40, 41, 42, 48, 52, 56, 57, 60, 68, 70, 71, 73]
DEFAULT_EXTENSIONS = [".mxl", ".xml", ".musicxml", ".krn"]
DEFAULT_COMPOSERS = ["bach", "monteverdi", "palestrina", "trecento", "haydn", "mozart"]


@dataclass(frozen=True)
class CorpusConfig:
    """Section ``corpus`` of params.yaml (the offline chorale corpus).

    Attributes:
        seed: Seeds score selection, tempo and instrument draws, and the split.
        composers: music21 corpus composer/repertoire folders to draw from
            (``bach``, ``monteverdi``, ``palestrina``, ``trecento``, ``haydn``,
            ``mozart``, ``beethoven`` ...); sampled round-robin.
        score_ids: Explicit corpus score ids (``"bach/bwv66.6"``); when given,
            they replace ``composers`` and no replacement is drawn for a bad one.
        extensions: Score file types to consider (``.rntxt`` analyses and
            ``.abc`` tune books are excluded by default: not multi-part scores).
        n_tracks: Tracks to render (bad scores are replaced by the next draw).
        max_duration_s: Renderings are cut here (release tail included).
        sample_rate: Output sample rate of mix and stems, Hz.
        slow_tempo_bpm: ``[min, max]`` tempo (quarter notes per minute) of low-arousal ("slow") tracks.
        fast_tempo_bpm: ``[min, max]`` tempo of high-arousal ("fast") tracks; must lie above the slow range.
        slow_velocity: ``[min, max]`` MIDI velocity (drawn per track, every note) of slow tracks.
        fast_velocity: ``[min, max]`` MIDI velocity of fast tracks; must lie above the slow range.
        programs: GM program numbers (0-127) drawn per track, distinct per part when possible.
        release_tail_s: Audio kept after the last note-off (the release rings out).
        peak_dbfs: If the mix peaks above this, stems and mix are scaled by one common gain.
        silence_db: A mix whose RMS is below this is skipped as silent.
        min_parts: Scores with fewer non-empty parts in the rendered window are skipped.
        soundfont: Path of a GM SoundFont (.sf2/.sf3); empty = TimGM6mb.sf2 from pretty_midi.
        fractions: Track-level split shares, in cut order (see :mod:`mgdata.splits`).
        split_seed: Seed of the stable split hash (separate from ``seed`` so the split can be chosen
            without changing the rendered world).
        split_file: Optional CSV ``track_id,split`` whose rows override the hash (path; empty = none).
        fail_on_bad_score: Raise instead of skipping a bad score.
    """

    seed: int = 0
    composers: list[str] = field(default_factory=lambda: list(DEFAULT_COMPOSERS))
    score_ids: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=lambda: list(DEFAULT_EXTENSIONS))
    n_tracks: int = 240
    max_duration_s: float = 30.0
    sample_rate: int = 22050
    slow_tempo_bpm: tuple[float, float] = (60.0, 84.0)
    fast_tempo_bpm: tuple[float, float] = (116.0, 140.0)
    slow_velocity: tuple[int, int] = (60, 70)
    fast_velocity: tuple[int, int] = (100, 110)
    programs: list[int] = field(default_factory=lambda: list(DEFAULT_PROGRAMS))
    release_tail_s: float = 1.0
    peak_dbfs: float = -1.0
    silence_db: float = -60.0
    min_parts: int = 2
    soundfont: str = ""
    fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.7, "validation": 0.1, "test": 0.2})
    split_seed: int = 1914
    split_file: str = ""
    fail_on_bad_score: bool = False

    def __post_init__(self):
        check(
            len(self.composers) > 0 or len(self.score_ids) > 0,
            "composers",
            "expected at least one composer (or a non-empty score_ids list)",
        )
        check(len(set(self.composers)) == len(self.composers), "composers", "expected no duplicates")
        check(
            all(c and "/" not in c for c in self.composers),
            "composers",
            "expected music21 corpus folder names such as 'bach' (no slashes)",
        )
        check(
            all("/" in s for s in self.score_ids),
            "score_ids",
            "expected corpus score ids like 'bach/bwv66.6' (composer/file)",
        )
        check(
            all(e.startswith(".") for e in self.extensions) and len(self.extensions) > 0,
            "extensions",
            "expected a non-empty list of file suffixes starting with '.'",
        )
        check(self.n_tracks >= 1, "n_tracks", "expected an integer >= 1")
        check(0.5 <= self.max_duration_s <= 3600, "max_duration_s", "expected seconds in [0.5, 3600]")
        check(8000 <= self.sample_rate <= 96000, "sample_rate", "expected Hz in [8000, 96000]")
        for key in ("slow_tempo_bpm", "fast_tempo_bpm"):
            lo, hi = getattr(self, key)
            check(20.0 <= lo <= hi <= 400.0, key, "expected [min, max] with 20 <= min <= max <= 400")
        check(
            self.slow_tempo_bpm[1] < self.fast_tempo_bpm[0],
            "fast_tempo_bpm",
            f"expected a range above slow_tempo_bpm {list(self.slow_tempo_bpm)} (the arousal classes must not overlap)",
        )
        for key in ("slow_velocity", "fast_velocity"):
            lo, hi = getattr(self, key)
            check(1 <= lo <= hi <= 127, key, "expected [min, max] MIDI velocities with 1 <= min <= max <= 127")
        check(
            self.slow_velocity[1] < self.fast_velocity[0],
            "fast_velocity",
            f"expected a range above slow_velocity {list(self.slow_velocity)} (loudness must follow arousal)",
        )
        check(len(self.programs) > 0, "programs", "expected at least one GM program")
        check(all(0 <= p <= 127 for p in self.programs), "programs", "expected GM program numbers in 0..127")
        check(0.0 <= self.release_tail_s <= 10.0, "release_tail_s", "expected seconds in [0, 10]")
        check(-40.0 <= self.peak_dbfs <= 0.0, "peak_dbfs", "expected dBFS in [-40, 0]")
        check(-120.0 <= self.silence_db <= 0.0, "silence_db", "expected dBFS in [-120, 0]")
        check(self.min_parts >= 2, "min_parts", "expected an integer >= 2 (a mix needs at least two stems)")
        check(
            len(self.fractions) > 0
            and all(f >= 0 and math.isfinite(f) for f in self.fractions.values())
            and sum(self.fractions.values()) > 0,
            "fractions",
            "expected non-negative shares with a positive sum",
        )
        check(
            all(name.replace("_", "").isalnum() and name.islower() for name in self.fractions),
            "fractions",
            "expected split names matching [a-z0-9_]+",
        )
