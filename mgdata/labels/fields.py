"""The label fields every track-derived artifact carries, and the tag -> quadrant rule behind them.

Every sample derived from a track (a corpus track, a stem-window, a generated clip, an
embedding row) carries the same three label tasks of its track:

* ``quadrant``: the arousal/valence quadrant (``activated_pleasant``, ...);
* ``mood``: the MTG-Jamendo mood/theme tags (multi-label);
* ``style``: the repertoire (``bach``, ...) or, for MoisesDB, the genre.

They are computed here once and copied by the builders (corpus, stems, generate,
embed), never recomputed: :func:`quadrant_of_tags` is the relabel stage's rule (the
quadrant of the first mapped tag in list order), :class:`TrackLabels` holds and checks
the three fields, :func:`label_fields` reads them from a source sample json.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgdata.errors import InputError
from mgdata.labels.relabel import DEFAULT_MAPPING, TagMapping, load_mapping

if TYPE_CHECKING:
    import polars as pl

#: The label tasks of a track, in the order records carry them.
LABEL_FIELDS = ("quadrant", "mood", "style")
#: The label columns of a track-derived record (:func:`label_fields`): the tasks plus where the row comes from.
RECORD_LABEL_FIELDS = (*LABEL_FIELDS, "split", "track_id")


@functools.lru_cache(maxsize=4)
def _mapping(name: str) -> TagMapping:
    # Loaded once per process: every sample of a build asks for the same mapping.
    return load_mapping(name)


def quadrant_of_tags(tags: list[str] | tuple[str, ...] | None, mapping: str = DEFAULT_MAPPING) -> str | None:
    """Quadrant of a mood-tag list: that of its first mapped tag in list order (the relabel rule).

    Args:
        tags: Mood tags, prefixed (``mood/theme---happy``) or bare; ``None`` for none.
        mapping: Mapping name for :func:`mgdata.labels.load_mapping`.

    Returns:
        The quadrant, or ``None`` when no tag is mapped.
    """
    for tag in tags or []:
        quadrant = _mapping(mapping).quadrant_of(str(tag))
        if quadrant is not None:
            return quadrant
    return None


def _check_mood(mood: Any, where: str) -> tuple[str, ...] | None:
    # A bare string would otherwise become a tuple of its characters.
    if mood is None:
        return None
    if isinstance(mood, (str, bytes)) or not isinstance(mood, (list, tuple)):
        raise InputError(where, f"mood must be a list of tags, got {type(mood).__name__} {mood!r}")
    return tuple(str(m) for m in mood)


@dataclass(frozen=True)
class TrackLabels:
    """The label tasks of one track (None where the source has none).

    Attributes:
        quadrant: Emotion quadrant (activated_pleasant, ...).
        mood: MTG-Jamendo mood tags (multi-label).
        style: Repertoire (bach, monteverdi, ...) or, for MoisesDB, the genre.
    """

    quadrant: str | None = None
    mood: tuple[str, ...] | None = None
    style: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (mood as a list)."""
        return {
            "quadrant": self.quadrant,
            "mood": list(self.mood) if self.mood is not None else None,
            "style": self.style,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "labels") -> TrackLabels:
        """From a dict holding (some of) ``quadrant``, ``mood``, ``style``; other keys ignored.

        Raises:
            InputError: ``mood`` is not a list of tags (``where`` names the source).
        """
        return cls(
            quadrant=str(data["quadrant"]) if data.get("quadrant") is not None else None,
            mood=_check_mood(data.get("mood"), where),
            style=str(data["style"]) if data.get("style") is not None else None,
        )

    @classmethod
    def from_meta(
        cls, meta: Mapping[str, Any], *, quadrant: str | None = None, mapping: str = DEFAULT_MAPPING
    ) -> TrackLabels:
        """The labels of a source sample json (corpus mix, generated clip), with the fallbacks.

        ``quadrant`` is the json's own if present, else the given one (e.g. from the relabel
        table), else the ``mapping`` quadrant of its mood tags. ``mood`` is the json's
        ``mood`` or ``mood_tags`` list (anything else: no mood).
        """
        mood = meta.get("mood") if isinstance(meta.get("mood"), list) else meta.get("mood_tags")
        mood = [str(m) for m in mood] if isinstance(mood, list) else None
        q = meta.get("quadrant") or quadrant or quadrant_of_tags(mood, mapping)
        return cls(
            quadrant=None if q is None else str(q),
            mood=None if mood is None else tuple(mood),
            style=None if meta.get("style") is None else str(meta["style"]),
        )


def label_fields(
    meta: Mapping[str, Any], *, quadrant: str | None = None, mapping: str = DEFAULT_MAPPING
) -> dict[str, Any]:
    """The label columns every track-derived record carries: quadrant, mood, style, split, track_id.

    Read from a sample json (:meth:`TrackLabels.from_meta` for the three label tasks).
    A field is ``None`` only when the source has no such information.
    """
    return {
        **TrackLabels.from_meta(meta, quadrant=quadrant, mapping=mapping).to_dict(),
        "split": None if meta.get("split") is None else str(meta["split"]),
        "track_id": None if meta.get("track_id") is None else str(meta["track_id"]),
    }


def quadrants_of(labels: str | Path | pl.DataFrame) -> dict[str, str]:
    """``track_id -> quadrant`` of a labels table that has a ``quadrant`` column (else empty).

    Args:
        labels: A relabel table (``quadrants.parquet``) as a path or a polars DataFrame.
    """
    import polars as pl

    df = labels if isinstance(labels, pl.DataFrame) else pl.read_parquet(labels)
    if "quadrant" not in df.columns or "track_id" not in df.columns:
        return {}
    rows = df.select(pl.col("track_id").cast(pl.Utf8), pl.col("quadrant").cast(pl.Utf8)).iter_rows()
    return {t: q for t, q in rows if t is not None and q}


__all__ = [
    "DEFAULT_MAPPING",
    "LABEL_FIELDS",
    "RECORD_LABEL_FIELDS",
    "TrackLabels",
    "label_fields",
    "quadrant_of_tags",
    "quadrants_of",
]
