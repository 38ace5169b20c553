"""The symbolic model behind the ``compose`` generator: training data, per-class statistics, composition.

Training data are the :class:`~mgdata.corpus.scores.ParsedScore` of one split of the corpus
manifest (the train split by default), parsed once and cached as JSON per music21 version
(:func:`load_training`). Every score is transposed so its tonic is pitch class 0, and its
parts are reduced to at most ``max_voices`` voices with a role (``top``, ``inner``,
``bass``) on a sixteenth-note grid.

The model (:class:`ComposeModel`) is a set of count tables, no learnt weights:

* **harmony** per ``(style, mode)``: a first-order Markov chain over the tonic-relative
  pitch-class set sounding on each beat (quarter note), with the first beats' sets as
  the start distribution; the pitch-class histogram of the pool weights non-chord notes;
* **rhythm** per ``(style, role)``: a first-order Markov chain over one-beat patterns of
  the four sixteenth steps (rest / onset / hold);
* **melody** per ``(style, role)``: the histogram of melodic intervals (clipped to an
  octave) and the voice's register (5th-95th percentile of its tonic-relative pitches);
* **texture** per style: how many voices the pieces have.

Composition (:func:`compose_piece`) samples a chord per beat and a rhythm per voice, then
picks each onset's pitch top voice first: chord tones on the beat, scale tones (weighted
by the pool's histogram) off the beat, times the interval probability from the previous
note, inside the voice's register and below the voice above (no crossing). Why this and
not bar recombination or a high-order chain: every pitch is a fresh draw from one-step
statistics, so no training phrase is reproduced beyond what the style's common formulas
share (measured by :mod:`mgdata.generate.novelty`), while chord vocabulary and scale keep
the mode and the style's rhythm and texture.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mgdata.corpus.scores import ParsedScore, PartNotes, parse_score, track_id_of

#: Version of the cached parse format (bump when ParsedScore's dict changes).
CACHE_VERSION = "parsed/1"
#: Grid steps per quarter note (sixteenths).
STEPS = 4
REST, ONSET, HOLD = 0, 1, 2
_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_MAX_INTERVAL = 12


@dataclass(frozen=True)
class TrainingPiece:
    """A parsed training score and its style label (mode comes from the score)."""

    score: ParsedScore
    style: str


def music21_version() -> str:
    """music21's version (parsing depends on it; part of the cache key and the fingerprint)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("music21")
    except PackageNotFoundError:
        return "unknown"


def training_rows(manifest: str | Path, split: str) -> list[dict[str, str]]:
    """``track_id, score_id, style, mode`` of the manifest's ``split`` rows, sorted by track id."""
    import polars as pl

    df = pl.read_parquet(manifest, columns=["track_id", "score_id", "style", "mode", "split"])
    df = df.filter(pl.col("split") == split).sort("track_id")
    return [
        {"track_id": t, "score_id": s, "style": st, "mode": m}
        for t, s, st, m in df.select("track_id", "score_id", "style", "mode").iter_rows()
    ]


def load_parsed(score_id: str, cache_dir: str | Path | None) -> ParsedScore:
    """Parse a corpus score, through a JSON cache keyed by music21 version and track id.

    Why a cache: parsing with music21 is the whole cost of training (seconds per
    quartet movement); the cache is written atomically (temp file + rename) so two
    processes can share it.
    """
    if cache_dir is None:
        return parse_score(score_id)
    path = Path(cache_dir) / f"music21-{music21_version()}" / f"{track_id_of(score_id)}.json"
    if path.is_file():
        data = json.loads(path.read_text())
        if data.get("version") == CACHE_VERSION and data.get("score_id") == score_id:
            return ParsedScore.from_dict(data["score"])
    score = parse_score(score_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"version": CACHE_VERSION, "score_id": score_id, "score": score.to_dict()}))
    tmp.replace(path)
    return score


def read_scores(path: str | Path | None) -> dict[str, ParsedScore]:
    """Track id -> parsed score from a corpus ``scores.json.gz`` (empty when ``path`` is empty or absent)."""
    if not path or not Path(path).is_file():
        return {}
    import gzip

    return {t: ParsedScore.from_dict(d) for t, d in json.loads(gzip.decompress(Path(path).read_bytes())).items()}


def load_training(
    rows: list[dict[str, str]], cache_dir: str | Path | None, scores: dict[str, ParsedScore] | None = None
) -> list[TrainingPiece]:
    """The parsed training pieces of :func:`training_rows`: from the corpus's ``scores`` when it holds the track
    (the notes it rendered), else parsed (through the cache)."""
    scores = scores or {}
    return [TrainingPiece(scores.get(r["track_id"]) or load_parsed(r["score_id"], cache_dir), r["style"]) for r in rows]


def tonic_pc(key: str) -> int:
    """Pitch class of a key name's tonic: ``"F# minor"`` -> 6, ``"Bb major"`` -> 10."""
    name = key.split()[0]
    pc = _NAMES[name[0].upper()]
    for ch in name[1:]:
        pc += 1 if ch == "#" else -1 if ch in "b-" else 0
    return pc % 12


def _shift_to_c(score: ParsedScore) -> int:
    # Transpose by the smallest move (-6..5) that puts the tonic on C, keeping the register.
    t = tonic_pc(score.key)
    return -t if t <= 6 else 12 - t


def _voices(score: ParsedScore, max_voices: int) -> list[PartNotes]:
    """Parts ordered high to low by mean pitch; at most ``max_voices``, always the top and bass."""
    parts = sorted(score.parts, key=lambda p: -np.mean([n[2] for n in p.notes]))
    if len(parts) <= max_voices:
        return parts
    idx = np.unique(np.round(np.linspace(0, len(parts) - 1, max_voices)).astype(int))
    return [parts[i] for i in idx]


def role_of(index: int, n: int) -> str:
    """``top`` (first), ``bass`` (last) or ``inner``."""
    return "top" if index == 0 else "bass" if index == n - 1 else "inner"


def _grid(notes: tuple[tuple[float, float, int], ...], shift: int, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Per sixteenth step: state (rest/onset/hold) and sounding pitch (-1 when resting)."""
    state = np.full(n_steps, REST, dtype=np.int8)
    pitch = np.full(n_steps, -1, dtype=np.int16)
    for on, dur, p in notes:
        a = int(round(on * STEPS))
        b = max(a + 1, int(round((on + dur) * STEPS)))
        if a >= n_steps:
            continue
        state[a] = ONSET
        state[a + 1 : b] = HOLD
        pitch[a:b] = p + shift
    return state, pitch


@dataclass
class ComposeModel:
    """Count tables of the model (see the module docstring); built by :func:`train_model`."""

    chord_start: dict[tuple[str, str], Counter] = field(default_factory=dict)
    chord_next: dict[tuple[str, str], dict[tuple, Counter]] = field(default_factory=dict)
    pc_hist: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    rhythm_start: dict[tuple[str, str], Counter] = field(default_factory=dict)
    rhythm_next: dict[tuple[str, str], dict[tuple, Counter]] = field(default_factory=dict)
    intervals: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    registers: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    textures: dict[str, Counter] = field(default_factory=dict)
    classes: Counter = field(default_factory=Counter)

    def harmony_pool(self, style: str, mode: str) -> tuple[str, str]:
        """The ``(style, mode)`` harmony pool, or ``("*", mode)`` (all styles) when that one is empty."""
        return (style, mode) if (style, mode) in self.chord_start else ("*", mode)


def _add_harmony(model: ComposeModel, keys: list[tuple[str, str]], pitches: list[np.ndarray]) -> None:
    n_beats = min(len(p) for p in pitches) // STEPS
    prev = None
    for b in range(n_beats):
        sounding = sorted({int(p[b * STEPS]) % 12 for p in pitches if p[b * STEPS] >= 0})
        if not sounding:
            prev = None
            continue
        chord = tuple(sounding)
        for k in keys:
            if prev is None:
                model.chord_start.setdefault(k, Counter())[chord] += 1
            else:
                model.chord_next.setdefault(k, {}).setdefault(prev, Counter())[chord] += 1
        prev = chord
    for k in keys:
        hist = model.pc_hist.setdefault(k, np.zeros(12))
        for p in pitches:
            hist += np.bincount(p[p >= 0] % 12, minlength=12)


def _add_voice(model: ComposeModel, key: tuple[str, str], state: np.ndarray, pitch: np.ndarray) -> None:
    beats = [tuple(int(s) for s in state[i : i + STEPS]) for i in range(0, len(state) - STEPS + 1, STEPS)]
    if beats:
        model.rhythm_start.setdefault(key, Counter())[beats[0]] += 1
    nxt = model.rhythm_next.setdefault(key, {})
    for a, b in zip(beats, beats[1:]):
        nxt.setdefault(a, Counter())[b] += 1
    onsets = pitch[state == ONSET].astype(int)
    steps = np.clip(np.diff(onsets), -_MAX_INTERVAL, _MAX_INTERVAL) + _MAX_INTERVAL
    hist = model.intervals.setdefault(key, np.zeros(2 * _MAX_INTERVAL + 1))
    hist += np.bincount(steps, minlength=2 * _MAX_INTERVAL + 1)
    model.registers.setdefault(key, []).extend(pitch[pitch >= 0].tolist())


def train_model(pieces: list[TrainingPiece], max_voices: int) -> ComposeModel:
    """Count the model's tables over the training pieces (order-independent sums)."""
    model = ComposeModel()
    for piece in pieces:
        score, style = piece.score, piece.style
        shift = _shift_to_c(score)
        voices = _voices(score, max_voices)
        n_steps = int(np.ceil(score.end_q * STEPS))
        grids = [_grid(v.notes, shift, n_steps) for v in voices]
        model.classes[(style, score.mode)] += 1
        model.textures.setdefault(style, Counter())[len(voices)] += 1
        # Harmony from every part (inner parts complete the chord), not only the kept voices.
        every = [_grid(p.notes, shift, n_steps)[1] for p in score.parts]
        _add_harmony(model, [(style, score.mode), ("*", score.mode)], every)
        for i, (state, pitch) in enumerate(grids):
            _add_voice(model, (style, role_of(i, len(grids))), state, pitch)
    # Registers become [low, high] (5th-95th percentile): outliers would stretch a voice's range.
    model.registers = {
        k: [int(np.percentile(v, 5)), int(np.percentile(v, 95))] for k, v in sorted(model.registers.items()) if v
    }
    return model


def _draw(rng: np.random.Generator, counter: Counter):
    """One key of ``counter`` with probability proportional to its count (keys in sorted order)."""
    keys = sorted(counter)
    w = np.array([counter[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


def _chords(model: ComposeModel, pool: tuple[str, str], n_beats: int, rng: np.random.Generator) -> list[tuple]:
    start, nxt = model.chord_start[pool], model.chord_next.get(pool, {})
    out = [_draw(rng, start)]
    while len(out) < n_beats:
        # A chord only seen at a piece's end has no successor: restart from the openings.
        out.append(_draw(rng, nxt.get(out[-1]) or start))
    return out


def _rhythm(model: ComposeModel, key: tuple[str, str], n_beats: int, rng: np.random.Generator) -> np.ndarray:
    start, nxt = model.rhythm_start[key], model.rhythm_next.get(key, {})
    beats = [_draw(rng, start)]
    while len(beats) < n_beats:
        beats.append(_draw(rng, nxt.get(beats[-1]) or start))
    state = np.array([s for b in beats for s in b], dtype=np.int8)
    if not (state != REST).any():
        # A voice drawn silent throughout would drop out of the texture: one held note instead.
        state[:] = HOLD
    # A hold right after a rest (a beat pattern drawn after a rest) is a new note.
    for i in range(len(state)):
        if state[i] == HOLD and (i == 0 or state[i - 1] == REST):
            state[i] = ONSET
    return state


@dataclass(frozen=True)
class PitchRules:
    """How pitches are weighted: chord tones on the beat, other scale tones off it."""

    nonchord_weight: float
    passing_weight: float


def _pick_pitch(
    rng: np.random.Generator,
    cands: np.ndarray,
    prev: int | None,
    chord: tuple,
    pc_w: np.ndarray,
    iv: np.ndarray,
    strong: bool,
    rules: PitchRules,
) -> int:
    in_chord = np.isin(cands % 12, chord)
    off = rules.nonchord_weight if strong else rules.passing_weight
    w = np.where(in_chord, 1.0, off * pc_w[cands % 12])
    if prev is not None:
        w = w * iv[np.clip(cands - prev, -_MAX_INTERVAL, _MAX_INTERVAL) + _MAX_INTERVAL]
    else:  # first note: prefer the middle of the register
        w = w * np.exp(-0.5 * ((cands - cands.mean()) / max(1.0, cands.std())) ** 2)
    if not w.sum() > 0:
        w = np.ones(len(cands))
    return int(cands[int(rng.choice(len(cands), p=w / w.sum()))])


def _voice_notes(
    model: ComposeModel,
    style: str,
    pool: tuple[str, str],
    role: str,
    chords: list[tuple],
    above: np.ndarray | None,
    rng: np.random.Generator,
    rules: PitchRules,
) -> tuple[list[tuple[float, float, int]], np.ndarray]:
    """One voice's notes (tonic C) and its sounding pitch per step (to keep the next voice below)."""
    key = (style, role)
    n_steps = len(chords) * STEPS
    state = _rhythm(model, key, len(chords), rng)
    lo, hi = model.registers[key]
    iv = model.intervals[key] + 0.5  # add-half smoothing: every interval up to an octave stays possible
    pc_w = model.pc_hist[pool] / model.pc_hist[pool].sum()
    sounding = np.full(n_steps, -1, dtype=np.int16)
    notes: list[tuple[float, float, int]] = []
    prev = None
    for i in np.flatnonzero(state == ONSET).tolist():
        j = i + 1
        while j < n_steps and state[j] == HOLD:
            j += 1
        cands = np.arange(lo, hi + 1)
        if above is not None and above[i] >= 0:
            below = cands[cands < above[i]]
            cands = below if len(below) else cands
        p = _pick_pitch(rng, cands, prev, chords[i // STEPS], pc_w, iv, i % STEPS == 0, rules)
        notes.append((i / STEPS, (j - i) / STEPS, p))
        sounding[i:j] = p
        prev = p
    return notes, sounding


def compose_piece(
    model: ComposeModel,
    style: str,
    mode: str,
    n_beats: int,
    transpose: int,
    rng: np.random.Generator,
    rules: PitchRules,
    max_voices: int,
) -> ParsedScore:
    """A new piece of ``n_beats`` quarter notes for ``(style, mode)``, tonic moved up by ``transpose``.

    Returns:
        A :class:`ParsedScore` (``score_id`` ``"compose/<style>-<mode>"``) whose parts run top to bottom.
    """
    pool = model.harmony_pool(style, mode)
    n_voices = min(max_voices, int(_draw(rng, model.textures[style])))
    chords = _chords(model, pool, n_beats, rng)
    parts, above = [], None
    for v in range(n_voices):
        role = role_of(v, n_voices)
        notes, sounding = _voice_notes(model, style, pool, role, chords, above, rng, rules)
        if notes:
            parts.append(PartNotes(f"{role}{v}", tuple((on, d, p + transpose) for on, d, p in notes)))
        above = np.where(sounding >= 0, sounding, above if above is not None else -1)
    tonic = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"][transpose % 12]
    sid = f"compose/{style}-{mode}"
    return ParsedScore(sid, track_id_of(sid), style, sid, f"{tonic} {mode}", mode, tuple(parts))


__all__ = [
    "CACHE_VERSION",
    "ComposeModel",
    "PitchRules",
    "TrainingPiece",
    "compose_piece",
    "load_parsed",
    "load_training",
    "music21_version",
    "role_of",
    "tonic_pc",
    "train_model",
    "training_rows",
]
