"""The ``compose`` generator: new multi-part pieces per class, composed offline and rendered like the corpus.

Unlike ``resynth`` (a near-copy of one training clip), ``compose`` writes new music: a
symbolic model (:mod:`mgdata.generate.compose_model`) trained on the parsed scores of
the corpus manifest's train split composes a piece for the requested class, and the
corpus renderer (:class:`~mgdata.corpus.render.SoundFontRenderer`) plays it with the
corpus's own arousal rule: tempo and velocity drawn from the slow/fast ranges, General
MIDI programs drawn per piece.

It runs in the builder's existing **text mode**: a request carries only its class
label. The label may be a quadrant (``activated_pleasant``: mode x arousal by the
designed rule of :mod:`mgdata.corpus.moods`), a mood tag of that rule (``happy``) or a
style (``bach``); what the label leaves open is drawn from the seed (style in
proportion to the training pieces of that mode, mode from the style's pieces, arousal
50/50 as in the corpus). :meth:`ComposeGenerator.prompt_for` writes the resolved
conditioning as the request's "prompt" (``style=bach mode=minor arousal=fast``), so the
builder records it in every sample's provenance and ``regenerate`` replays it.

Determinism: the output is a pure function of the training data (fingerprinted in
:meth:`~ComposeGenerator.describe`), the config and the request seed and prompt:
``default_rng([seed, 1])`` drives the composition, ``default_rng([seed, 2])`` the key,
tempo, velocity and programs, and the renderer is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

import mgdata
from mgdata.config import to_dict
from mgdata.corpus.moods import FAST_SHARE, MOOD_RULE
from mgdata.corpus.render import SoundFontRenderer, notes_to_seconds, renderer_version, soundfont_sha256
from mgdata.corpus.scores import ParsedScore
from mgdata.corpus.worker import draw_programs
from mgdata.errors import InputError
from mgdata.generate.base import GenRequest
from mgdata.generate.compose_model import (
    ComposeModel,
    PitchRules,
    TrainingPiece,
    compose_piece,
    load_training,
    music21_version,
    read_scores,
    train_model,
    training_rows,
)
from mgdata.generate.config import ComposeConfig
from mgdata.labels.fields import quadrant_of_tags
from mgdata.store import fingerprint

ALGORITHM_VERSION = "markov-voices/1"


@dataclass(frozen=True)
class Conditioning:
    """The class a piece is composed for."""

    style: str
    mode: str
    arousal: str

    def to_prompt(self) -> str:
        """``"style=bach mode=minor arousal=fast"`` (recorded as the sample's prompt)."""
        return f"style={self.style} mode={self.mode} arousal={self.arousal}"

    @classmethod
    def from_prompt(cls, prompt: str, key: str) -> Conditioning:
        """Inverse of :meth:`to_prompt`.

        Raises:
            InputError: The prompt lacks one of the three fields (names the sample key).
        """
        fields = dict(tok.split("=", 1) for tok in prompt.split() if "=" in tok)
        try:
            return cls(fields["style"], fields["mode"], fields["arousal"])
        except KeyError as exc:
            raise InputError(key, f"compose prompt {prompt!r} lacks {exc.args[0]}=") from None


@dataclass(frozen=True)
class ComposedClip:
    """A composed piece, how it was rendered and the audio."""

    piece: ParsedScore
    conditioning: Conditioning
    tempo_bpm: float
    velocity: int
    programs: tuple[int, ...]
    audio: np.ndarray


def label_rule() -> dict[str, tuple[str | None, str | None]]:
    """Quadrant or mood tag -> ``(mode, arousal)`` by the corpus's designed mood rule."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for (mode, arousal), tags in MOOD_RULE.items():
        quadrant = quadrant_of_tags(list(tags))
        if quadrant is not None:
            out[quadrant] = (mode, arousal)
        for tag in tags:
            out[tag] = (mode, arousal)
    return out


def _draw_counted(rng: np.random.Generator, counts: dict[str, int]) -> str:
    keys = sorted(counts)
    w = np.array([counts[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


class ComposeGenerator:
    """The ``compose`` generator (mode ``"text"``): composes and renders a new piece per request.

    Args:
        cfg: The ``generate.compose`` section (defaults when ``None``).
        training: Training pieces given in code (tests); ``None`` reads the ``cfg.split``
            rows of ``cfg.manifest`` and parses their scores (cached under ``cfg.cache_dir``).
    """

    name = "compose"
    mode = "text"

    def __init__(self, cfg: ComposeConfig | None = None, training: list[TrainingPiece] | None = None):
        self.cfg = cfg if cfg is not None else ComposeConfig()
        self.sample_rate = self.cfg.sample_rate
        self._training = training
        if training is not None:
            self.rows = sorted(
                (
                    {"track_id": p.score.track_id, "score_id": p.score.score_id, "style": p.style, "mode": p.score.mode}
                    for p in training
                ),
                key=lambda r: r["track_id"],
            )
        else:
            try:
                self.rows = training_rows(self.cfg.manifest, self.cfg.split)
            except FileNotFoundError:
                raise InputError(self.cfg.manifest, "corpus manifest not found (generate.compose.manifest)") from None
        if not self.rows:
            raise InputError(self.cfg.manifest, f"no {self.cfg.split!r} rows to train on (generate.compose.split)")

    def __getstate__(self):
        # The renderer wraps a C SoundFont handle: rebuilt lazily after unpickling.
        state = dict(self.__dict__)
        state.pop("renderer", None)
        return state

    @cached_property
    def training_fingerprint(self) -> str:
        """sha256 of the training rows (track, score, style, mode) and the music21 version that parses them."""
        return fingerprint("compose-training", music21_version(), self.cfg.split, self.rows)

    @cached_property
    def model(self) -> ComposeModel:
        """The model, trained on first use (parsing the training scores dominates)."""
        pieces = self._training
        if pieces is None:
            pieces = load_training(self.rows, self.cfg.cache_dir or None, read_scores(self.cfg.scores))
        return train_model(pieces, self.cfg.max_voices)

    @cached_property
    def renderer(self) -> SoundFontRenderer:
        """The corpus renderer at this generator's sample rate."""
        r = SoundFontRenderer(self.cfg.soundfont or None, self.sample_rate)
        r.check_programs(self.cfg.programs, "generate.compose.programs")
        return r

    def describe(self) -> dict:
        """Provenance: algorithm version, training fingerprint, renderer, library versions, settings."""
        return {
            "generator": self.name,
            "model": "mgdata.generate.compose",
            "revision": ALGORITHM_VERSION,
            "model_hash": self.training_fingerprint,
            "training": {
                "manifest": None if self._training is not None else self.cfg.manifest,
                "split": self.cfg.split,
                "n_tracks": len(self.rows),
                "fingerprint": self.training_fingerprint,
            },
            "mgdata_version": mgdata.__version__,
            "music21_version": music21_version(),
            "numpy_version": np.__version__,
            "renderer": renderer_version(),
            "soundfont": self.renderer.name,
            "soundfont_sha256": soundfont_sha256(self.renderer.path),
            "mode": self.mode,
            "sample_rate": self.sample_rate,
            "settings": to_dict(self.cfg),
        }

    def conditioning(self, request: GenRequest) -> Conditioning:
        """The request's class with what its label leaves open drawn from its seed.

        Raises:
            InputError: The label is neither a quadrant, a mood tag of the corpus rule nor a
                training style (names the sample key).
        """
        classes: dict[tuple[str, str], int] = {}
        for r in self.rows:
            classes[(r["style"], r["mode"])] = classes.get((r["style"], r["mode"]), 0) + 1
        styles = {s for s, _ in classes}
        rng = np.random.default_rng([request.seed, 0])
        mode, arousal = label_rule().get(request.label, (None, None))
        style = request.label if request.label in styles else None
        if mode is None and style is None:
            raise InputError(
                request.key,
                f"compose cannot condition on label {request.label!r}: expected a quadrant, a mood tag "
                f"({sorted(label_rule())}) or a training style ({sorted(styles)})",
            )
        if style is None:
            by_style = {s: n for (s, m), n in classes.items() if m == mode}
            if not by_style:
                raise InputError(request.key, f"no {mode} training piece for label {request.label!r}")
            style = _draw_counted(rng, by_style)
        if mode is None:
            mode = _draw_counted(rng, {m: n for (s, m), n in classes.items() if s == style})
        if arousal is None:
            arousal = "fast" if rng.random() < FAST_SHARE else "slow"
        return Conditioning(style, mode, arousal)

    def labels_for(self, request: GenRequest) -> dict[str, Any]:
        """The label fields of the composed clip: its style, its mood tags by the corpus rule and their quadrant
        (what the piece was composed for, so every classify task can use it, not only the budget's column)."""
        cond = (
            self.conditioning(request) if not request.prompt else Conditioning.from_prompt(request.prompt, request.key)
        )
        tags = list(MOOD_RULE[(cond.mode, cond.arousal)])
        return {"style": cond.style, "mood": tags, "quadrant": quadrant_of_tags(tags)}

    def prompt_for(self, request: GenRequest) -> str:
        """The resolved conditioning as text (the builder records it as the sample's prompt)."""
        return request.prompt or self.conditioning(request).to_prompt()

    def compose(self, cond: Conditioning, seed: int, duration_s: float) -> ComposedClip:
        """Compose and render one clip of ``duration_s`` seconds for ``cond``."""
        cfg = self.cfg
        if cond.style not in self.model.textures or ("*", cond.mode) not in self.model.chord_start:
            raise InputError(
                cond.to_prompt(), "no training piece of this style or mode (was the training set changed?)"
            )
        rng = np.random.default_rng([seed, 2])
        transpose = int(rng.integers(-5, 7))  # tonic drawn uniformly over the 12 keys, register kept
        lo, hi = cfg.fast_tempo_bpm if cond.arousal == "fast" else cfg.slow_tempo_bpm
        tempo = round(float(rng.uniform(lo, hi)), 1) if hi > lo else float(lo)
        vlo, vhi = cfg.fast_velocity if cond.arousal == "fast" else cfg.slow_velocity
        velocity = int(rng.integers(vlo, vhi + 1))
        n_beats = math.ceil(duration_s * tempo / 60.0) + 1
        rules = PitchRules(cfg.nonchord_weight, cfg.passing_weight)
        piece = compose_piece(
            self.model,
            cond.style,
            cond.mode,
            n_beats,
            transpose,
            np.random.default_rng([seed, 1]),
            rules,
            cfg.max_voices,
        )
        programs = tuple(draw_programs(rng, cfg.programs, len(piece.parts)))
        n = int(round(duration_s * self.sample_rate))
        parts = [notes_to_seconds(p.notes, tempo) for p in piece.parts]
        mix = self.renderer.render_track(parts, programs, n, velocity=velocity, peak_dbfs=cfg.peak_dbfs).mix
        return ComposedClip(piece, cond, tempo, velocity, programs, mix.astype(np.float32))

    def generate(self, requests: list[GenRequest]) -> list[np.ndarray]:
        """Compose each request's clip (its prompt's conditioning, else its label's) with its seed.

        Raises:
            InputError: Bad duration, or a label/prompt compose cannot condition on (names the key).
        """
        out = []
        for req in requests:
            if not req.duration_s > 0:
                raise InputError(req.key, f"duration_s must be > 0, got {req.duration_s}")
            cond = Conditioning.from_prompt(req.prompt, req.key) if req.prompt else self.conditioning(req)
            out.append(self.compose(cond, req.seed, req.duration_s).audio)
        return out


__all__ = ["ALGORITHM_VERSION", "ComposeGenerator", "ComposedClip", "Conditioning", "label_rule"]
