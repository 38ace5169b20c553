"""Novelty of a symbolic piece against a training set: is a generated clip a near-copy?

A piece becomes the set of n-grams of its voices' ``(melodic interval, duration)`` tokens
(interval in semitones from the previous note of the same part, clipped to two octaves;
duration in sixteenths, capped at a whole note), so the measure ignores transposition,
instrumentation and tempo, which the renderer changes anyway. The similarity of a
query to the training set is the largest share of its n-grams found in one training
piece (``max_i |Q ∩ T_i| / |Q|``): 1.0 for a verbatim excerpt of a training piece.

A fixed number means little by itself (chorales share cadence formulas), so
:func:`novelty_ratio` divides by the mean similarity of *real held-out pieces*
(test-split excerpts of the same length) to the same training set: about 1 means
"as close to the training set as unseen real music is", far above 1 means copying.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from mgdata.corpus.scores import ParsedScore, PartNotes

_MAX_IV = 24
_MAX_DUR = 16


def tokens(part: PartNotes) -> list[tuple[int, int]]:
    """``(interval to previous note, duration in sixteenths)`` of a part's notes (first interval 0).

    Notes starting together in one part (chords) keep only their highest pitch.
    """
    top: dict[float, tuple[float, int]] = {}
    for on, dur, p in part.notes:
        if on not in top or p > top[on][1]:
            top[on] = (dur, p)
    out, prev = [], None
    for on in sorted(top):
        dur, p = top[on]
        iv = 0 if prev is None else int(np.clip(p - prev, -_MAX_IV, _MAX_IV))
        out.append((iv, int(min(_MAX_DUR, max(1, round(dur * 4))))))
        prev = p
    return out


def ngrams(score: ParsedScore, n: int) -> set[tuple]:
    """The set of token n-grams over every part, each part from its second note.

    The first note has no interval (it is not a unison), so it starts no n-gram; that way
    every n-gram of an excerpt is also an n-gram of its source.
    """
    out: set[tuple] = set()
    for part in score.parts:
        t = tokens(part)[1:]
        out.update(tuple(t[i : i + n]) for i in range(len(t) - n + 1))
    return out


class NoveltyIndex:
    """Inverted n-gram index of training pieces for :meth:`similarity`.

    Args:
        pieces: The training pieces.
        n: n-gram length in notes.
    """

    def __init__(self, pieces: Iterable[ParsedScore], n: int = 4):
        self.n = n
        self.index: dict[tuple, list[int]] = {}
        self.ids: list[str] = []
        for i, piece in enumerate(pieces):
            self.ids.append(piece.track_id)
            for g in ngrams(piece, n):
                self.index.setdefault(g, []).append(i)

    def similarity(self, query: ParsedScore) -> tuple[float, str | None]:
        """Largest share of the query's n-grams found in one training piece, and that piece's track id.

        A query with no n-gram (fewer than ``n + 1`` notes in every part) has similarity NaN:
        it is neither new nor copied, and scoring it 0 would flatter short clips of long notes.
        """
        grams = ngrams(query, self.n)
        if not grams or not self.ids:
            return float("nan"), None
        hits = np.zeros(len(self.ids))
        for g in grams:
            for i in self.index.get(g, ()):
                hits[i] += 1
        best = int(np.argmax(hits))
        return float(hits[best] / len(grams)), (self.ids[best] if hits[best] > 0 else None)


def excerpt(score: ParsedScore, start_q: float, length_q: float) -> ParsedScore:
    """The notes of ``score`` starting in ``[start_q, start_q + length_q)``, shifted to 0.

    Durations are kept whole (not cut at the window's end), so an excerpt's n-grams are the
    source's n-grams: a verbatim excerpt has similarity 1.
    """
    end = start_q + length_q
    parts = []
    for p in score.parts:
        notes = tuple((on - start_q, d, pitch) for on, d, pitch in p.notes if start_q <= on < end)
        if notes:
            parts.append(PartNotes(p.name, notes))
    return ParsedScore(score.score_id, score.track_id, score.composer, score.title, score.key, score.mode, tuple(parts))


def novelty_ratio(similarity: float, reference: Sequence[float]) -> float:
    """``similarity`` over the mean similarity of real held-out pieces (NaNs ignored; ``inf`` if that mean is 0).

    The mean, not the median: most short held-out excerpts share no n-gram at all, so the
    median is often 0 and the ratio would be undefined.
    """
    ref = np.asarray(reference, dtype=np.float64)
    ref = ref[np.isfinite(ref)]
    mean = float(ref.mean()) if len(ref) else 0.0
    return similarity / mean if mean > 0 else float("inf")


__all__ = ["NoveltyIndex", "excerpt", "ngrams", "novelty_ratio", "tokens"]
