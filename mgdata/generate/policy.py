"""The per-class generation budget and the seeded draw of sources / primes.

Pure functions (no I/O) so the arithmetic is easy to test and to audit.

**Budget.** ``budget_s = fraction x train_seconds`` where ``train_seconds`` is the
total duration of the eligible (labelled) training-split tracks. It is split
equally across the classes that have at least one training clip
(``class_budget_s = budget_s / n_classes``) and each class gets
``samples_per_class = floor(class_budget_s / sample_s)`` samples of exactly
``sample_s`` seconds (a 1e-9 tolerance absorbs float noise such as
``0.05 * 240 / 4 = 2.9999999``). Consequently every class gets *the same*
number of seconds (``samples_per_class x sample_s``, so equal within one sample
length) and the total is below the budget by less than one sample per class:
``budget_s - n_classes x sample_s < total_s <= budget_s``.

**Empty classes.** A class that appears in the labels but has no training clip
(no labelled training track, or every track shorter than one clip) is excluded
before the split, with a reason the builder reports as a warning.

**Draw.** Sources (resynth) and primes (primed MusicGen) are clips of
``clip_s`` seconds on a non-overlapping grid (offsets ``0, clip_s, 2 clip_s...``)
of the training tracks of the class. Each class draws its clips without
replacement from a permutation seeded by ``(seed, label)``, so adding or
removing a class does not change the draws of the others. Text mode draws no
clips: only the per-class counts are used.

**Shortage** (a class needs more clips than it has), chosen by ``on_shortage``:

- ``"error"``: raise :class:`~mgdata.errors.ParamsError` naming the class and
  the counts.
- ``"reuse"``: after all clips of the class are used once, draw again in
  rounds ``r = 1, 2, ...`` from a grid shifted by ``frac(r x 0.618...) x clip_s``
  (a different offset, so reused clips are not identical; a track too short for
  the shifted grid falls back to the unshifted one), each round a new seeded
  permutation without replacement within the round. Reused clips are marked
  with their ``reuse_round`` and counted by the builder.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from mgdata.errors import ParamsError
from mgdata.store import make_key

# Golden-ratio conjugate: successive reuse rounds get well-spread grid shifts.
_PHI = 0.6180339887498949
# Tolerance for floor(class_budget / sample_s) against float round-off.
_FLOOR_EPS = 1e-9


def derive_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed derived from the params seed and any JSON-able parts (e.g. a key).

    Stable across runs and platforms (sha256), and 31 bits so that ``seed + retries``
    is still a valid seed for numpy and torch.
    """
    blob = json.dumps([seed, *parts], sort_keys=True, separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class TrackInfo:
    """An eligible track: labelled, with its split and duration."""

    track_id: str
    label: str
    split: str
    duration_s: float

    def __post_init__(self):
        if not self.track_id or not self.label:
            raise ValueError(f"track_id and label must be non-empty, got {self.track_id!r}, {self.label!r}")
        if not self.duration_s >= 0:
            raise ValueError(f"{self.track_id}: duration_s must be >= 0, got {self.duration_s!r}")

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrackInfo:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


@dataclass(frozen=True)
class ClipRef:
    """A clip of a training track used as source or prime."""

    track_id: str
    label: str
    offset_s: float
    duration_s: float
    reuse_round: int = 0

    def __post_init__(self):
        if self.offset_s < 0 or self.duration_s <= 0:
            raise ValueError(f"{self.track_id}: bad clip offset_s={self.offset_s} duration_s={self.duration_s}")

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ClipRef:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


@dataclass(frozen=True)
class Budget:
    """The per-class budget (see the module docstring for the arithmetic)."""

    train_seconds: float
    fraction: float
    sample_s: float
    classes: tuple[str, ...]
    budget_s: float
    class_budget_s: float
    samples_per_class: int

    @property
    def class_seconds(self) -> float:
        """Generated seconds per class (identical for every class)."""
        return self.samples_per_class * self.sample_s

    @property
    def total_seconds(self) -> float:
        """Generated seconds over all classes."""
        return self.class_seconds * len(self.classes)

    def to_dict(self) -> dict:
        """JSON-safe dict, with the derived totals."""
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["class_seconds"] = self.class_seconds
        d["total_seconds"] = self.total_seconds
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Budget:
        """Inverse of :meth:`to_dict` (derived fields ignored)."""
        d = {k: v for k, v in d.items() if k not in ("class_seconds", "total_seconds")}
        return cls(**{**d, "classes": tuple(d["classes"])})


def compute_budget(train_seconds: float, classes: Iterable[str], *, fraction: float, sample_s: float) -> Budget:
    """Split ``fraction x train_seconds`` equally across ``classes`` in whole samples.

    Args:
        train_seconds: Total duration of the eligible training tracks.
        classes: Classes that receive a share (duplicates ignored, sorted).
        fraction: Budget fraction of the training duration (0 < fraction <= 1).
        sample_s: Length of one generated sample.

    Returns:
        The budget; ``samples_per_class = floor(budget_s / n_classes / sample_s)``.
    """
    if not (0 < fraction <= 1):
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if not sample_s > 0:
        raise ValueError(f"sample_s must be > 0, got {sample_s}")
    if train_seconds < 0:
        raise ValueError(f"train_seconds must be >= 0, got {train_seconds}")
    classes = tuple(sorted(set(classes)))
    budget_s = fraction * train_seconds
    class_budget_s = budget_s / len(classes) if classes else 0.0
    n = int(math.floor(class_budget_s / sample_s + _FLOOR_EPS)) if classes else 0
    return Budget(
        train_seconds=train_seconds,
        fraction=fraction,
        sample_s=sample_s,
        classes=classes,
        budget_s=budget_s,
        class_budget_s=class_budget_s,
        samples_per_class=n,
    )


def grid_clips(track: TrackInfo, clip_s: float, shift_s: float = 0.0) -> list[ClipRef]:
    """Non-overlapping clips of ``clip_s`` starting at ``shift_s`` that fit in the track."""
    n = int(math.floor((track.duration_s - shift_s) / clip_s + _FLOOR_EPS)) if track.duration_s > shift_s else 0
    return [ClipRef(track.track_id, track.label, round(shift_s + i * clip_s, 6), clip_s) for i in range(n)]


def _permuted(clips: list[ClipRef], seed: int, label: str, round_: int) -> list[ClipRef]:
    clips = sorted(clips, key=lambda c: (c.track_id, c.offset_s))
    order = np.random.default_rng(derive_seed(seed, "draw", label, round_)).permutation(len(clips))
    return [clips[i] for i in order]


def draw_clips(
    tracks: Sequence[TrackInfo], n: int, *, clip_s: float, seed: int, label: str, on_shortage: str = "error"
) -> list[ClipRef]:
    """Draw ``n`` clips of one class without replacement (seeded), handling shortage.

    Args:
        tracks: The class's training tracks.
        n: Clips needed.
        clip_s: Clip length.
        seed: Params seed (combined with ``label`` and the round).
        label: The class (for seeding and messages).
        on_shortage: ``"error"`` or ``"reuse"`` (see module docstring).

    Returns:
        ``n`` clips in draw order.

    Raises:
        ParamsError: Shortage with ``on_shortage="error"``, or no clip at all.
    """
    base = [c for t in tracks for c in grid_clips(t, clip_s)]
    if n <= len(base):
        return _permuted(base, seed, label, 0)[:n]
    if on_shortage != "reuse" or not base:
        raise ParamsError(
            "generate.on_shortage",
            f"class {label!r} has {len(base)} training clips of {clip_s:g} s "
            f"(from {len(tracks)} tracks) but {n} are needed; set generate.on_shortage: reuse "
            "to draw clips again at other offsets, or lower generate.fraction",
        )
    out = _permuted(base, seed, label, 0)
    round_ = 0
    while len(out) < n:
        round_ += 1
        shift = ((round_ * _PHI) % 1.0) * clip_s
        pool = []
        for t in tracks:
            shifted = grid_clips(t, clip_s, shift)
            pool.extend(shifted if shifted else grid_clips(t, clip_s))
        drawn = _permuted(pool, seed, label, round_)[: n - len(out)]
        out.extend(ClipRef(c.track_id, c.label, c.offset_s, c.duration_s, reuse_round=round_) for c in drawn)
    return out


@dataclass(frozen=True)
class PlanItem:
    """One sample to generate: its key, class, index within the class and source/prime clip."""

    key: str
    label: str
    index: int
    clip: ClipRef | None = None

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return {
            "key": self.key,
            "label": self.label,
            "index": self.index,
            "clip": None if self.clip is None else self.clip.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> PlanItem:
        """Inverse of :meth:`to_dict`."""
        clip = None if d.get("clip") is None else ClipRef.from_dict(d["clip"])
        return cls(d["key"], d["label"], int(d["index"]), clip)


@dataclass(frozen=True)
class Plan:
    """The full generation plan: budget, excluded classes (with reasons) and items sorted by key."""

    budget: Budget
    items: tuple[PlanItem, ...]
    excluded: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return {
            "budget": self.budget.to_dict(),
            "items": [i.to_dict() for i in self.items],
            "excluded": dict(self.excluded),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        """Inverse of :meth:`to_dict`."""
        return cls(
            Budget.from_dict(d["budget"]), tuple(PlanItem.from_dict(i) for i in d["items"]), dict(d.get("excluded", {}))
        )


def sample_key(label: str, index: int) -> str:
    """Output key of the ``index``-th sample of ``label`` (sorts by class, then index)."""
    return make_key(label, f"{index:05d}")


def plan_generation(
    tracks: Sequence[TrackInfo],
    *,
    fraction: float,
    sample_s: float,
    clip_s: float | None,
    seed: int,
    on_shortage: str = "error",
    all_labels: Iterable[str] = (),
) -> Plan:
    """Budget and draw for every class.

    Args:
        tracks: Eligible (labelled) tracks; only ``split == "train"`` ones are used.
        fraction: Budget fraction of the training duration.
        sample_s: Generated sample length.
        clip_s: Source/prime clip length; ``None`` for text mode (no clips drawn).
        seed: Params seed.
        on_shortage: ``"error"`` or ``"reuse"``.
        all_labels: Every class of the label set (so that a class with no
            training track is reported as excluded rather than unseen).

    Returns:
        The plan; items are sorted by key (deterministic write order).
    """
    train = [t for t in tracks if t.split == "train"]
    by_class: dict[str, list[TrackInfo]] = {}
    for t in sorted(train, key=lambda t: t.track_id):
        by_class.setdefault(t.label, []).append(t)
    excluded: dict[str, str] = {}
    classes = []
    for label in sorted(set(all_labels) | set(by_class)):
        ts = by_class.get(label, [])
        if not ts:
            excluded[label] = "empty class: no labelled training track"
        elif clip_s is not None and not any(grid_clips(t, clip_s) for t in ts):
            excluded[label] = f"empty class: all {len(ts)} training tracks are shorter than one clip ({clip_s:g} s)"
        else:
            classes.append(label)
    budget = compute_budget(sum(t.duration_s for t in train), classes, fraction=fraction, sample_s=sample_s)
    items = []
    for label in budget.classes:
        n = budget.samples_per_class
        clips = (
            draw_clips(by_class[label], n, clip_s=clip_s, seed=seed, label=label, on_shortage=on_shortage)
            if clip_s is not None and n
            else [None] * n
        )
        items.extend(PlanItem(sample_key(label, i), label, i, clip) for i, clip in enumerate(clips))
    items.sort(key=lambda it: it.key)
    return Plan(budget, tuple(items), excluded)
