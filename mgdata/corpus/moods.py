"""The designed mood rule of the chorale corpus: mode x arousal class -> MTG-Jamendo mood tags.

This is a **designed, synthetic emotion world, not human annotation**. Each
track gets::

    arousal class  drawn per track: "fast" if unit_hash("mgdata-arousal/1", seed, track_id) < 0.5
    tempo          uniform in corpus.slow_tempo_bpm or corpus.fast_tempo_bpm by class (ranges do not overlap)
    velocity       uniform integer in corpus.slow_velocity or corpus.fast_velocity by class (dynamics)
    valence        the score's mode from music21's key analysis: major = pleasant, minor = unpleasant

    mode   class  mood tags                 quadrant (paper1 mapping, mgdata.labels)
    major  fast   happy, uplifting          activated_pleasant
    major  slow   calm, relaxing            deactivated_pleasant
    minor  fast   dark, dramatic            activated_unpleasant
    minor  slow   sad, melancholic          deactivated_unpleasant

Why: major mode and fast tempo are the two best-established musical cues of
positive valence and high arousal (Gabrielsson & Lindstrom, 2010), and loudness
goes with arousal; crossing them gives the four arousal/valence quadrants. The
tempo ranges are separated (a gap of ~30 bpm) and the velocity ranges too, so
arousal is audible to a plain spectral embedding (loudness and onset rate),
not only to a tempo estimator. The arousal class is drawn from ``(seed, track
id)`` with p = 0.5, independently of the score, so arousal is balanced and
independent of style and mode by construction. All eight tags are MTG-Jamendo
mood/theme tag names, so the relabel stage maps the corpus with the same
mapping as real MTG-Jamendo data.

Confounds a user must know:

* Valence is the analysed mode of the score, which is **not balanced per
  style**: a repertoire can be mostly major (or minor), and music21's
  major/minor key analysis of modal music (Palestrina, Trecento, Monteverdi) is
  an approximation, so in those styles "valence" partly means "which
  church mode"; a valence probe can profit from recognising the style.
* Tempo and velocity are rendering choices, not properties of the
  composition: "arousal" is what the renderer did, and a model can detect it
  from loudness/onset density alone.
* Everything is rendered with one GM SoundFont; instruments are drawn per track
  independently of the labels.
"""

from __future__ import annotations

from typing import Literal

from mgdata.labels.fields import quadrant_of_tags  # the rule's home is mgdata.labels; re-exported
from mgdata.splits import unit_hash

Mode = Literal["major", "minor"]
#: Salt of the arousal draw (independent of the split hash, which uses another salt).
AROUSAL_SALT = "mgdata-arousal/1"
#: Share of tracks in the "fast" (high-arousal) class.
FAST_SHARE = 0.5

MOOD_RULE: dict[tuple[str, str], tuple[str, str]] = {
    ("major", "fast"): ("happy", "uplifting"),
    ("major", "slow"): ("calm", "relaxing"),
    ("minor", "fast"): ("dark", "dramatic"),
    ("minor", "slow"): ("sad", "melancholic"),
}


def arousal_class(track_id: str, seed: int) -> str:
    """``"fast"`` (high arousal) or ``"slow"`` (low): a p = 0.5 draw from ``(seed, track_id)`` only."""
    return "fast" if unit_hash(AROUSAL_SALT, int(seed), str(track_id)) < FAST_SHARE else "slow"


def mood_tags(mode: str, tempo_class: str) -> list[str]:
    """Mood tags of a track by the designed rule.

    Args:
        mode: ``"major"`` or ``"minor"`` (music21's key analysis).
        tempo_class: ``"fast"`` or ``"slow"`` (the track's arousal class).

    Returns:
        Two MTG-Jamendo mood/theme tag names.

    Raises:
        ValueError: ``mode`` or ``tempo_class`` is not one of the two allowed values.
    """
    if mode not in ("major", "minor"):
        raise ValueError(f"mode must be 'major' or 'minor', got {mode!r}")
    if tempo_class not in ("fast", "slow"):
        raise ValueError(f"tempo_class must be 'fast' or 'slow', got {tempo_class!r}")
    return list(MOOD_RULE[(mode, tempo_class)])


def track_tags(style: str, mode: str, tempo_class: str) -> list[str]:
    """All tags of a track: the style tag first, then the mood tags."""
    return [style, *mood_tags(mode, tempo_class)]


__all__ = [
    "AROUSAL_SALT",
    "FAST_SHARE",
    "MOOD_RULE",
    "Mode",
    "arousal_class",
    "mood_tags",
    "quadrant_of_tags",
    "track_tags",
]
