"""Selecting and parsing scores of the corpus that ships inside the ``music21`` package.

A *score id* is a path relative to music21's corpus folder (``"bach/bwv66.6.mxl"``);
its first component is the composer/repertoire folder, which is also the
track's style tag. Parsing turns a score into plain note lists per part (onset
and duration in quarter notes, MIDI pitch) plus music21's key analysis, so the
rest of the pipeline never touches music21 objects.

Parsing is the slow part of the corpus stage (tens of ms per chorale, seconds for
a long quartet movement); scores are parsed with ``forceSource=True`` so music21
neither reads nor writes its pickle cache (no side effects outside the stage).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.errors import InputError, ParamsError

# Part names music21 gives when a file has none; replaced by "part{n}".
_GENERIC_PART_NAMES = {"", "musicxml part", "part", "none"}


class BadScore(InputError):
    """A score that cannot become a track; ``reason`` is a short code for the report.

    Reasons: ``parse_failed``, ``not_a_single_score``, ``too_few_parts``,
    ``no_notes``, ``no_key``.
    """

    def __init__(self, score_id: str, reason: str, detail: str):
        self.reason = reason
        super().__init__(score_id, f"{reason}: {detail}")


@dataclass(frozen=True)
class PartNotes:
    """The notes of one part.

    Attributes:
        name: Lowercase stem name (``"soprano"``, ``"violin_i"``, ``"part2"``), unique in its score.
        notes: ``(onset_q, duration_q, midi_pitch)`` triples in quarter notes, sorted.
    """

    name: str
    notes: tuple[tuple[float, float, int], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "notes": [list(n) for n in self.notes]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartNotes:
        return cls(data["name"], tuple((float(a), float(b), int(c)) for a, b, c in data["notes"]))


@dataclass(frozen=True)
class ParsedScore:
    """A score reduced to what rendering and tagging need.

    Attributes:
        score_id: Corpus-relative path (``"bach/bwv66.6.mxl"``).
        track_id: Sample key of the track (``"bach-bwv66-6"``).
        composer: Corpus composer/repertoire folder (``"bach"``).
        title: Title from the score's metadata (file stem if it has none).
        key: Analysed key, e.g. ``"F# minor"`` (flats written ``b``).
        mode: ``"major"`` or ``"minor"``.
        parts: Parts in score order (only pitched parts with at least one note).
        excluded_parts: Names of unpitched parts left out (percussion, timpani, GM channel 10), score order.
    """

    score_id: str
    track_id: str
    composer: str
    title: str
    key: str
    mode: str
    parts: tuple[PartNotes, ...] = field(default_factory=tuple)
    excluded_parts: tuple[str, ...] = ()

    def __post_init__(self):
        if self.mode not in ("major", "minor"):
            raise ValueError(f"{self.score_id}: mode must be major or minor, got {self.mode!r}")

    @property
    def end_q(self) -> float:
        """End of the last note, in quarter notes."""
        return max((on + dur for p in self.parts for on, dur, _ in p.notes), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score_id": self.score_id,
            "track_id": self.track_id,
            "composer": self.composer,
            "title": self.title,
            "key": self.key,
            "mode": self.mode,
            "parts": [p.to_dict() for p in self.parts],
            "excluded_parts": list(self.excluded_parts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParsedScore:
        return cls(
            **{
                **data,
                "parts": tuple(PartNotes.from_dict(p) for p in data["parts"]),
                "excluded_parts": tuple(data.get("excluded_parts", ())),
            }
        )


# --------------------------------------------------------------------------- ids


@lru_cache(maxsize=1)
def corpus_root() -> Path:
    """The folder of music21's bundled corpus (cached: listing calls it once per file)."""
    import music21.corpus

    return Path(music21.corpus.__file__).resolve().parent


def score_id_of(path: str | Path) -> str:
    """Corpus-relative POSIX path of a score file (its score id)."""
    path = Path(path)
    try:  # music21 lists absolute paths under its corpus folder: no filesystem call needed
        return path.relative_to(corpus_root()).as_posix()
    except ValueError:
        path = path.resolve()
    try:
        return path.relative_to(corpus_root()).as_posix()
    except ValueError:
        return path.as_posix()


def track_id_of(score_id: str) -> str:
    """Sample key of a score: ``"bach/bwv66.6.mxl"`` -> ``"bach-bwv66-6"``.

    The extension is dropped; dots, slashes and other characters become ``-``.
    """
    parts = score_id.split("/")
    stem = parts[-1]
    for suffix in (".mxl", ".musicxml", ".xml", ".krn", ".abc", ".mus", ".musx", ".rntxt", ".mid", ".midi"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    text = "-".join([*parts[:-1], stem]).lower()
    text = re.sub(r"[^a-z0-9_]+", "-", text).strip("-_")
    return text or "score-" + hashlib.sha256(score_id.encode()).hexdigest()[:8]


def composer_of(score_id: str) -> str:
    """The corpus folder (composer/repertoire) of a score id."""
    return score_id.split("/")[0].lower()


def list_candidates(composers: Sequence[str], extensions: Sequence[str]) -> dict[str, list[str]]:
    """All score ids per composer folder with an allowed extension, sorted.

    Raises:
        ParamsError: A composer has no score of those types in music21's corpus.
    """
    from music21 import corpus

    rank = {e.lower(): i for i, e in reversed(list(enumerate(extensions)))}
    out: dict[str, list[str]] = {}
    for name in composers:
        paths = corpus.getComposer(name)
        # One score per track id: the same piece in two encodings (bwv277.krn and
        # bwv277.mxl) keeps the one whose extension comes first in ``extensions``.
        best: dict[str, str] = {}
        for p in sorted(paths, key=lambda p: (rank.get(Path(p).suffix.lower(), len(rank)), str(p))):
            if Path(p).suffix.lower() in rank:
                sid = score_id_of(p)
                best.setdefault(track_id_of(sid), sid)
        ids = sorted(best.values())
        exts = sorted(rank)
        if not ids:
            raise ParamsError(
                "corpus.composers",
                f"music21's corpus has no {sorted(exts)} scores for {name!r} "
                "(try bach, monteverdi, palestrina, trecento, haydn, mozart, beethoven)",
            )
        out[name] = ids
    return out


def selection_order(candidates: dict[str, list[str]], seed: int) -> list[str]:
    """All candidates in the order they are drawn: seeded shuffle per composer, then round-robin.

    Round-robin keeps repertoires balanced (palestrina's 1318 masses would
    otherwise swamp a few dozen madrigals). Deterministic in ``seed`` and the
    candidate lists.
    """
    queues = []
    for name in sorted(candidates):
        ids = sorted(candidates[name])
        # Seeded by the composer's name only (not its position in the list), so adding a
        # repertoire leaves every other repertoire's draw order, hence its tracks, unchanged.
        rng = np.random.default_rng([seed, stable_int(name)])
        queues.append([ids[j] for j in rng.permutation(len(ids))])
    order: list[str] = []
    for k in range(max((len(q) for q in queues), default=0)):
        order.extend(q[k] for q in queues if k < len(q))
    seen: set[str] = set()
    return [s for s in order if not (s in seen or seen.add(s))]


def stable_int(text: str) -> int:
    """A process-independent 64-bit integer of a string (Python's hash() is salted)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


# --------------------------------------------------------------------------- parsing


def _part_name(part: Any, index: int) -> str:
    raw = (getattr(part, "partName", None) or "").strip()
    if raw.lower() in _GENERIC_PART_NAMES:
        return f"part{index + 1}"
    name = re.sub(r"[^a-z0-9]+", "_", raw.lower()).strip("_")
    return name or f"part{index + 1}"


def _unique(names: Iterable[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def is_unpitched_part(part: Any) -> bool:
    """Whether a music21 part is percussion to leave out of the stems.

    True for a part whose instrument is unpitched percussion or timpani, is on
    General-MIDI channel 10 (music21's 0-based ``midiChannel == 9``), or whose
    notes are all unpitched (``Unpitched``/``PercussionChord``). Why: a GM
    SoundFont renders such parts as drum kits or timpani rolls whose "pitch" is a
    drum map, and a stem of them is not a melodic line for stem pairing. Pitched
    percussion with a melodic line (glockenspiel, marimba...) is kept.
    """
    from music21 import instrument, note, percussion

    for inst in part.recurse().getElementsByClass(instrument.Instrument):
        if isinstance(inst, (instrument.UnpitchedPercussion, instrument.Timpani)):
            return True
        if getattr(inst, "midiChannel", None) == 9:
            return True
    notes = list(part.recurse().notes)
    return bool(notes) and all(isinstance(n, (note.Unpitched, percussion.PercussionChord)) for n in notes)


def _part_notes(part: Any) -> tuple[tuple[float, float, int], ...]:
    # Tied notes become one long note; chords give one note per pitch.
    notes = []
    # inPlace: stripTies would otherwise deep-copy the part (half the parse time).
    part.stripTies(inPlace=True)
    for el in part.flatten().notes:
        dur = float(el.quarterLength)
        if dur <= 0:  # grace notes have no duration of their own
            continue
        onset = float(el.offset)
        for p in getattr(el, "pitches", ()):
            midi = int(round(p.ps))
            if 0 <= midi <= 127:
                notes.append((onset, dur, midi))
    return tuple(sorted(set(notes)))


def parse_score(score_id: str, *, min_parts: int = 2) -> ParsedScore:
    """Parse one corpus score into note lists and analyse its key.

    Args:
        score_id: Corpus-relative id (``"bach/bwv66.6"`` or ``"bach/bwv66.6.mxl"``)
            or an absolute path to a score file.
        min_parts: Fewer parts with notes than this is a :class:`BadScore`.

    Returns:
        The parsed score.

    Raises:
        BadScore: The score cannot be parsed, is a collection (Opus), has too
            few parts with notes, or has no key; names the score id and reason.
    """
    from music21 import converter, corpus, stream

    try:
        path = Path(score_id) if Path(score_id).is_absolute() else Path(corpus.getWork(score_id))
        score = converter.parse(path, forceSource=True)
    except Exception as exc:  # noqa: BLE001 - music21 raises many types on bad input
        raise BadScore(score_id, "parse_failed", f"{type(exc).__name__}: {exc}"[:300]) from None
    sid = score_id_of(path)
    if isinstance(score, stream.Opus) or not isinstance(score, stream.Score):
        raise BadScore(sid, "not_a_single_score", f"music21 returned a {type(score).__name__}")
    # Key first: note extraction below modifies the score in place.
    try:
        k = score.analyze("key")
        mode = str(k.mode)
        tonic = k.tonic.name.replace("-", "b")
    except Exception as exc:  # noqa: BLE001
        raise BadScore(sid, "no_key", f"key analysis failed: {type(exc).__name__}: {exc}"[:300]) from None
    if mode not in ("major", "minor"):
        raise BadScore(sid, "no_key", f"key analysis gave mode {mode!r}")
    raw_parts = list(score.parts)
    names = _unique(_part_name(p, i) for i, p in enumerate(raw_parts))
    parts, excluded = [], []
    for name, part in zip(names, raw_parts):
        if is_unpitched_part(part):
            excluded.append(name)
            continue
        try:
            notes = _part_notes(part)
        except Exception as exc:  # noqa: BLE001
            raise BadScore(sid, "parse_failed", f"part {name}: {type(exc).__name__}: {exc}"[:300]) from None
        if notes:
            parts.append(PartNotes(name, notes))
    if not parts:
        raise BadScore(sid, "no_notes", "no pitched notes in any part")
    if len(parts) < min_parts:
        raise BadScore(sid, "too_few_parts", f"{len(parts)} part(s) with notes, need {min_parts}")
    md = score.metadata
    title = (md.bestTitle if md is not None else None) or Path(sid).name
    title = re.sub(r"\.(mxl|musicxml|xml|krn)$", "", str(title).strip())
    return ParsedScore(
        score_id=sid,
        track_id=track_id_of(sid),
        composer=composer_of(sid),
        title=title,
        key=f"{tonic} {mode}",
        mode=mode,
        parts=tuple(parts),
        excluded_parts=tuple(excluded),
    )
