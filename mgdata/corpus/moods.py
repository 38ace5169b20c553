"""The documented mood rule of the chorale corpus: mode x tempo -> MTG-Jamendo mood tags.

Rule (``fast`` means ``tempo_bpm >= fast_tempo_bpm``, a params value)::

    mode   tempo  mood tags                 arousal/valence quadrant (relabel 'paper1')
    major  fast   happy, uplifting          activated_pleasant
    major  slow   calm, relaxing            deactivated_pleasant
    minor  fast   dark, dramatic            activated_unpleasant
    minor  slow   sad, melancholic          deactivated_unpleasant

Why: major mode and fast tempo are the two best-established musical cues of
positive valence and high arousal (Gabrielsson & Lindstrom, 2010); crossing
them gives the four arousal/valence quadrants. All eight tags are
MTG-Jamendo mood/theme tag names, so the emotion relabelling maps the corpus
with the same mapping as the real MTG-Jamendo data.
"""

from __future__ import annotations

from typing import Literal

Mode = Literal["major", "minor"]

MOOD_RULE: dict[tuple[str, str], tuple[str, str]] = {
    ("major", "fast"): ("happy", "uplifting"),
    ("major", "slow"): ("calm", "relaxing"),
    ("minor", "fast"): ("dark", "dramatic"),
    ("minor", "slow"): ("sad", "melancholic"),
}


def tempo_class(tempo_bpm: float, fast_tempo_bpm: float) -> str:
    """``"fast"`` if ``tempo_bpm >= fast_tempo_bpm`` else ``"slow"``."""
    return "fast" if tempo_bpm >= fast_tempo_bpm else "slow"


def mood_tags(mode: str, tempo_bpm: float, fast_tempo_bpm: float) -> list[str]:
    """Mood tags of a track by the documented rule.

    Args:
        mode: ``"major"`` or ``"minor"`` (music21's key analysis).
        tempo_bpm: The track's rendering tempo.
        fast_tempo_bpm: Threshold from params (``corpus.fast_tempo_bpm``).

    Returns:
        Two MTG-Jamendo mood/theme tag names.

    Raises:
        ValueError: ``mode`` is neither major nor minor.
    """
    if mode not in ("major", "minor"):
        raise ValueError(f"mode must be 'major' or 'minor', got {mode!r}")
    return list(MOOD_RULE[(mode, tempo_class(tempo_bpm, fast_tempo_bpm))])


def track_tags(style: str, mode: str, tempo_bpm: float, fast_tempo_bpm: float) -> list[str]:
    """All tags of a track: the style tag first, then the mood tags."""
    return [style, *mood_tags(mode, tempo_bpm, fast_tempo_bpm)]
