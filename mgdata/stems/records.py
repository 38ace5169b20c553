"""Typed records of the ``data/stems`` artifact: one stem-window sample, one pair-index row, track labels.

* :class:`StemWindowRecord` is the ``json`` member of a stem-window sample (its
  ``to_dict`` *is* the sample json, see CONTRACTS "Stems stored once");
* :class:`PairRecord` is one row of ``pairs.parquet`` (an ordered pair of two
  stem-windows of the same track and window; both directions are present);
* :class:`~mgdata.labels.TrackLabels` (re-exported from :mod:`mgdata.labels`) carries the
  three label tasks (``quadrant``, ``mood``, ``style``) copied onto every record of a track,
  read here from the corpus ``manifest.parquet`` or the mix jsons (null where the source has none);
* :class:`StemsResult` is what :func:`mgdata.stems.build.build_stems` returns (counts, maps,
  the pair rows and, in memory, the samples).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mgdata.errors import InputError
from mgdata.labels.fields import TrackLabels
from mgdata.store import JsonRecord, Sample, make_key

# Columns of pairs.parquet, in file order.
PAIR_COLUMNS = ("pair_key", "a_key", "b_key", "track_id", "window_index", "stem_a", "stem_b", "split")


def stem_window_key(track_id: str, window_index: int, stem_index: int) -> str:
    """Sample key of one stem-window: ``{track_id}_w{window:03d}_s{stem:02d}`` (sanitised by make_key)."""
    return make_key(track_id, f"w{window_index:03d}", f"s{stem_index:02d}")


def pair_key(a_key: str, b_key: str, track_id: str, window_index: int, stem_a_index: int, stem_b_index: int) -> str:
    """Key of the ordered pair (A, B): ``{track_id}_w{window:03d}_s{a:02d}_s{b:02d}``."""
    return make_key(track_id, f"w{window_index:03d}", f"s{stem_a_index:02d}", f"s{stem_b_index:02d}")


@dataclass(frozen=True)
class StemWindowRecord(JsonRecord):
    """The json of one stem-window sample of ``data/stems``.

    Attributes:
        key: Sample key (:func:`stem_window_key`).
        track_id: Source track id.
        window_index: Window number within the track (time order).
        start_s: Window start in the track, seconds.
        length_s: Window length, seconds (a zero-padded partial window keeps the full length).
        stem_index: Position of the stem in the track's stem list (stable across windows).
        stem: Stem name (part name for the corpus, stem type for MoisesDB).
        instrument: Instrument that plays the stem.
        split: Split of the track.
        quadrant: Label of the track (None if the source has none).
        mood: Mood tags of the track (None if the source has none).
        style: Repertoire / genre of the track (None if the source has none).
        source: Multitrack source (``corpus``, ``moisesdb``).
        sample_rate: Rate of the flac member, Hz.
        provenance: Per-sample provenance (builder, source, licence, seed, params hash).
    """

    json_what = "stem-window"
    json_optional = frozenset({"quadrant", "mood", "style"})

    key: str
    track_id: str
    window_index: int
    start_s: float
    length_s: float
    stem_index: int
    stem: str
    instrument: str
    split: str
    quadrant: str | None
    mood: list[str] | None
    style: str | None
    source: str
    sample_rate: int
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def normalise_json(cls, kw: dict[str, Any]) -> dict[str, Any]:
        """Coerce the numeric fields and the mood list of a decoded json (ValueError/TypeError if they do not)."""
        kw["window_index"], kw["stem_index"] = int(kw["window_index"]), int(kw["stem_index"])
        kw["sample_rate"] = int(kw["sample_rate"])
        kw["start_s"], kw["length_s"] = float(kw["start_s"]), float(kw["length_s"])
        kw["mood"] = list(kw["mood"]) if kw["mood"] is not None else None
        return kw


@dataclass(frozen=True)
class PairRecord:
    """One row of ``pairs.parquet``: stem-window ``a_key`` paired with ``b_key`` (same track and window)."""

    pair_key: str
    a_key: str
    b_key: str
    track_id: str
    window_index: int
    stem_a: str
    stem_b: str
    split: str

    def to_dict(self) -> dict[str, Any]:
        """Row dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(**{c: data[c] for c in PAIR_COLUMNS})


def pairs_table_bytes(pairs: list[PairRecord]) -> bytes:
    """``pairs.parquet`` content (deterministic bytes: fixed schema, no statistics timestamps)."""
    import io

    import polars as pl

    schema = {
        "pair_key": pl.String,
        "a_key": pl.String,
        "b_key": pl.String,
        "track_id": pl.String,
        "window_index": pl.Int32,
        "stem_a": pl.String,
        "stem_b": pl.String,
        "split": pl.String,
    }
    df = (
        pl.DataFrame([p.to_dict() for p in pairs], schema=schema, orient="row")
        if pairs
        else pl.DataFrame(schema=schema)
    )
    buf = io.BytesIO()
    df.write_parquet(buf, compression="zstd", statistics=False)
    return buf.getvalue()


@dataclass
class StemsResult:
    """What :func:`build_stems` produced.

    Attributes:
        out_dir: Artifact directory, or ``None`` when built in memory.
        fingerprint: Content fingerprint (params + shards + upstream).
        tracks_in: Tracks received from the source (after its own skips).
        tracks_used: Tracks that gave at least one window.
        windows: Windows planned over the used tracks.
        stem_windows: Stem-window samples (stored once each).
        windows_per_split: Split -> windows.
        stem_windows_per_split: Split -> stem-window samples.
        pairs_per_split: Split -> ordered pairs in the index.
        tracks_per_split: Split -> tracks used.
        silent_stem_windows: (stem, window) slots dropped as silent.
        silent_by_stem: Normalised stem type -> windows where it was silent.
        excluded_stems: Normalised stem type -> tracks where it was excluded.
        pairs_near_duplicate: Ordered pairs dropped as near-duplicates (both directions count).
        stem_windows_unpaired: Non-silent stem-windows left without a partner (not stored).
        tracks_too_short: Tracks shorter than one window.
        tracks_bad_audio: Tracks with non-finite samples.
        tracks_rescaled: Tracks scaled down because a stem exceeded full scale.
        samples: The stem-window samples, only when ``out_dir`` is ``None``.
        pairs: The pair index rows (in write order).
        summary: The writer's ``artifact.json`` content, when written.
    """

    out_dir: Path | None
    fingerprint: str
    tracks_in: int = 0
    tracks_used: int = 0
    windows: int = 0
    stem_windows: int = 0
    windows_per_split: dict[str, int] = field(default_factory=dict)
    stem_windows_per_split: dict[str, int] = field(default_factory=dict)
    pairs_per_split: dict[str, int] = field(default_factory=dict)
    tracks_per_split: dict[str, int] = field(default_factory=dict)
    silent_stem_windows: int = 0
    silent_by_stem: dict[str, int] = field(default_factory=dict)
    excluded_stems: dict[str, int] = field(default_factory=dict)
    pairs_near_duplicate: int = 0
    stem_windows_unpaired: int = 0
    tracks_too_short: int = 0
    tracks_bad_audio: int = 0
    tracks_rescaled: int = 0
    samples: list[Sample] = field(default_factory=list, repr=False)
    pairs: list[PairRecord] = field(default_factory=list, repr=False)
    summary: dict[str, Any] | None = None

    _COUNTS = (
        "tracks_in",
        "tracks_used",
        "windows",
        "stem_windows",
        "silent_stem_windows",
        "pairs_near_duplicate",
        "stem_windows_unpaired",
        "tracks_too_short",
        "tracks_bad_audio",
        "tracks_rescaled",
    )
    _MAPS = (
        "windows_per_split",
        "stem_windows_per_split",
        "pairs_per_split",
        "tracks_per_split",
        "silent_by_stem",
        "excluded_stems",
    )

    @property
    def n_pairs(self) -> int:
        """Total ordered pairs over all splits."""
        return sum(self.pairs_per_split.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (no samples, no pair rows)."""
        return {
            "out_dir": str(self.out_dir) if self.out_dir else None,
            "fingerprint": self.fingerprint,
            "pairs": self.n_pairs,
            **{k: getattr(self, k) for k in self._COUNTS},
            **{k: dict(sorted(getattr(self, k).items())) for k in self._MAPS},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StemsResult:
        """Inverse of :meth:`to_dict` (samples, pair rows and summary are not restored)."""
        return cls(
            out_dir=Path(data["out_dir"]) if data.get("out_dir") else None,
            fingerprint=data["fingerprint"],
            **{k: data[k] for k in (*cls._COUNTS, *cls._MAPS) if k in data},
        )


def read_pairs(path: str | Path) -> list[PairRecord]:
    """Rows of a ``pairs.parquet`` (a file, or an artifact folder holding one)."""
    import polars as pl

    path = Path(path)
    if path.is_dir():
        path = path / "pairs.parquet"
    if not path.exists():
        raise InputError(str(path), "missing pair index (pairs.parquet): rebuild the stems artifact")
    return [PairRecord.from_dict(r) for r in pl.read_parquet(path).iter_rows(named=True)]


def labels_from_manifest(path: str | Path) -> dict[str, TrackLabels]:
    """Track id -> labels from a corpus ``manifest.parquet`` (columns quadrant, mood, style where present).

    Raises:
        InputError: The file is missing or has no ``track_id`` column.
    """
    import polars as pl

    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "manifest not found")
    df = pl.read_parquet(path)
    if "track_id" not in df.columns:
        raise InputError(str(path), "manifest has no track_id column")
    cols = [c for c in ("quadrant", "mood", "style") if c in df.columns]
    return {
        str(r["track_id"]): TrackLabels.from_dict(r, where=str(path))
        for r in df.select("track_id", *cols).iter_rows(named=True)
    }


def labels_from_mix(mix_dir: str | Path) -> dict[str, TrackLabels]:
    """Track id -> labels from the json members of a corpus mix artifact (no audio decoded)."""
    from mgdata.store import decode_json, iter_samples

    out: dict[str, TrackLabels] = {}
    for sample in iter_samples(mix_dir):
        meta = decode_json(sample["json"])  # mix json of any source: only track_id and the label record
        out[str(meta["track_id"])] = TrackLabels.from_dict(meta)
    return out


__all__ = [
    "PAIR_COLUMNS",
    "PairRecord",
    "StemWindowRecord",
    "StemsResult",
    "TrackLabels",
    "labels_from_manifest",
    "labels_from_mix",
    "pair_key",
    "pairs_table_bytes",
    "read_pairs",
    "stem_window_key",
]
