"""Multitrack records shared by every stem source, and the corpus stems reader.

:class:`MultitrackTrack` is what the stem-pair builder consumes: one track as a
set of sample-aligned mono stems at one sample rate. Sources produce it:

* :func:`iter_corpus_tracks` reads the ``data/corpus/stems`` artifact (one sample
  per stem, stems of a track consecutive in the stream, see README.md, "Artifact formats") and
  groups the stems back into tracks;
* :func:`mgdata.sources.moisesdb.iter_moisesdb_tracks` reads a MoisesDB download.

Readers never drop a track silently: a bad track (missing or unreadable audio,
stems of different lengths, malformed metadata) raises :class:`TrackError`,
which the reader either re-raises (``fail_on_error``) or records with
``report.skip(track, reason)`` before moving on to the next track.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.audio import decode_artifact_audio, resample
from mgdata.corpus.records import StemRecord
from mgdata.errors import InputError, MgdataError
from mgdata.report import StageReport
from mgdata.store import DecodeError, iter_samples, read_artifact_info


class TrackError(InputError):
    """A track cannot be used; names the file or sample key at fault.

    Args:
        where: The file path or sample key at fault.
        category: Short, stable reason (``"missing audio file"``, ``"unreadable audio"``,
            ``"stem length mismatch"``, ``"bad metadata"``), used to count skips per reason.
        detail: Human-readable specifics.
    """

    def __init__(self, where: str | Path, category: str, detail: str):
        self.category = category
        self.detail = detail
        super().__init__(str(where), f"{category}: {detail}")


@dataclass
class MultitrackTrack:
    """One multitrack recording: sample-aligned mono stems at one rate.

    Attributes:
        track_id: Stable id (corpus track id, MoisesDB track UUID).
        stems: Stem name -> mono float32 ``[n]``; every stem has the same length.
            Insertion order is the track's stem order (used for pair order).
        sample_rate: Sample rate of every stem, Hz.
        instruments: Stem name -> instrument name (defaults to the stem name).
        source: Multitrack source name (``"corpus"``, ``"moisesdb"``).
        licence: Licence of the audio.
        split: Split the source assigned to the track, if any (the corpus does).
        meta: Source-specific metadata (artist, song, genre, ...), JSON-safe.
    """

    track_id: str
    stems: dict[str, np.ndarray]
    sample_rate: int
    instruments: dict[str, str] = field(default_factory=dict)
    source: str = "unknown"
    licence: str = "unknown"
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.track_id, str) or not self.track_id.strip():
            raise MgdataError(f"MultitrackTrack.track_id must be a non-empty string, got {self.track_id!r}")
        if not isinstance(self.sample_rate, (int, np.integer)) or self.sample_rate <= 0:
            raise MgdataError(f"{self.track_id}: sample_rate must be a positive integer, got {self.sample_rate!r}")
        self.sample_rate = int(self.sample_rate)
        if not self.stems:
            raise MgdataError(f"{self.track_id}: a multitrack track needs at least one stem")
        stems = {}
        for name, x in self.stems.items():
            x = np.ascontiguousarray(x, dtype=np.float32)
            if x.ndim != 1:
                raise MgdataError(f"{self.track_id}: stem {name!r} must be mono [n], got shape {x.shape}")
            stems[str(name)] = x
        lengths = {name: x.shape[0] for name, x in stems.items()}
        if len(set(lengths.values())) != 1:
            raise MgdataError(f"{self.track_id}: stems must have the same length, got {lengths}")
        self.stems = stems
        unknown = sorted(set(self.instruments) - set(stems))
        if unknown:
            raise MgdataError(f"{self.track_id}: instruments given for unknown stems {unknown}")
        self.instruments = {name: str(self.instruments.get(name) or name) for name in stems}

    @property
    def n_samples(self) -> int:
        """Length of every stem, in samples."""
        return next(iter(self.stems.values())).shape[0]

    @property
    def duration_s(self) -> float:
        """Track duration in seconds."""
        return self.n_samples / self.sample_rate

    def resampled(self, sample_rate: int) -> MultitrackTrack:
        """This track at ``sample_rate`` (self if already there). Uses :func:`mgdata.audio.resample`."""
        if sample_rate == self.sample_rate:
            return self
        return MultitrackTrack(
            track_id=self.track_id,
            stems={k: resample(v, self.sample_rate, sample_rate) for k, v in self.stems.items()},
            sample_rate=sample_rate,
            instruments=dict(self.instruments),
            source=self.source,
            licence=self.licence,
            split=self.split,
            meta=dict(self.meta),
        )

    def to_dict(self, *, include_audio: bool = False) -> dict[str, Any]:
        """JSON-safe dict; audio only when ``include_audio`` (as lists of floats)."""
        out: dict[str, Any] = {
            "track_id": self.track_id,
            "stem_names": list(self.stems),
            "sample_rate": self.sample_rate,
            "instruments": dict(self.instruments),
            "source": self.source,
            "licence": self.licence,
            "split": self.split,
            "duration_s": self.duration_s,
            "meta": dict(self.meta),
        }
        if include_audio:
            out["stems"] = {k: v.tolist() for k, v in self.stems.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], stems: Mapping[str, np.ndarray] | None = None) -> MultitrackTrack:
        """Inverse of :meth:`to_dict`; audio from ``stems`` or from ``data["stems"]``.

        Raises:
            MgdataError: No audio given, or the record is invalid.
        """
        audio = stems if stems is not None else data.get("stems")
        if audio is None:
            raise MgdataError(f"{data.get('track_id')}: from_dict needs the stems' audio")
        return cls(
            track_id=data["track_id"],
            stems={k: np.asarray(v, dtype=np.float32) for k, v in audio.items()},
            sample_rate=int(data["sample_rate"]),
            instruments=dict(data.get("instruments") or {}),
            source=data.get("source", "unknown"),
            licence=data.get("licence", "unknown"),
            split=data.get("split"),
            meta=dict(data.get("meta") or {}),
        )


def align_stem_lengths(
    stems: Mapping[str, tuple[np.ndarray, str]],
    sample_rate: int,
    tolerance_s: float,
) -> dict[str, np.ndarray]:
    """Trim stems to a common length, or fail naming the stem that does not fit.

    The reference length is the most common one (ties: the longest), so the
    outlier (e.g. a truncated file) is the one named. Stems within
    ``tolerance_s`` of it are trimmed to the shortest length (rounding in
    resampling/encoding can differ by a few samples).

    Args:
        stems: Stem name -> (mono audio, where it came from: file or sample key).
        sample_rate: Sample rate, Hz.
        tolerance_s: Largest accepted length difference, seconds.

    Returns:
        Stem name -> audio, all of the same length.

    Raises:
        TrackError: (``stem length mismatch``) naming the outlier file/key.
    """
    lengths = {name: x.shape[0] for name, (x, _) in stems.items()}
    counts = Counter(lengths.values())
    ref = max(counts, key=lambda n: (counts[n], n))
    tol = int(round(tolerance_s * sample_rate))
    for name, (x, where) in stems.items():
        if abs(x.shape[0] - ref) > tol:
            raise TrackError(
                where,
                "stem length mismatch",
                f"stem {name!r} has {x.shape[0]} samples ({x.shape[0] / sample_rate:.3f} s), the other stems "
                f"{ref} ({ref / sample_rate:.3f} s); tolerance {tolerance_s} s (params stems.length_tolerance_s)",
            )
    n = min(lengths.values())
    return {name: x[:n] for name, (x, _) in stems.items()}


def handle_track_error(
    err: InputError,
    item: str,
    report: StageReport | None,
    fail_on_error: bool,
    counter: str = "tracks_skipped",
) -> None:
    """Re-raise ``err`` (``fail_on_error``) or record the skip of ``item`` in ``report``.

    The skip reason starts with the error category so the report counts skips per
    reason, and names the file/key at fault.
    """
    if fail_on_error:
        raise err
    category = getattr(err, "category", "bad input")
    detail = getattr(err, "detail", err.message)
    reason = f"{category}: {err.where}: {detail}"
    if report is None:
        raise MgdataError(f"{item}: {reason} (pass a StageReport to skip bad tracks, or fail_on_error=True)")
    report.skip(item, reason)
    report.count(counter)


def corpus_source_info(corpus_stems_dir: str | Path) -> dict[str, Any]:
    """Upstream description of a corpus stems artifact, for provenance and fingerprints.

    Returns:
        ``{"source", "source_version", "licence", "fingerprint", "provenance", "path"}``
        taken from its ``artifact.json``.
    """
    info = read_artifact_info(corpus_stems_dir)
    prov = info.get("provenance", {})
    return {
        "source": "corpus",
        "source_version": f"{prov.get('source', 'corpus')} {prov.get('source_version', '')}".strip(),
        "licence": prov.get("licence") or "unknown",
        "fingerprint": info.get("fingerprint", ""),
        "provenance": prov,
        "path": str(corpus_stems_dir),
    }


def list_corpus_track_ids(corpus_stems_dir: str | Path, *, max_tracks: int = 0) -> list[str]:
    """Track ids of a corpus stems artifact, in stream order (no audio decoded)."""
    seen: dict[str, None] = {}
    for sample in iter_samples(corpus_stems_dir):
        try:
            track_id = StemRecord.from_sample(sample).track_id
        except InputError:
            continue  # the reader reports it when it meets the sample
        seen.setdefault(str(track_id))
    ids = list(seen)
    return ids[:max_tracks] if max_tracks else ids


def _corpus_track(group: list[dict[str, Any]], sample_rate: int | None, tolerance_s: float) -> MultitrackTrack:
    """Build one track from its consecutive stem samples (raises TrackError)."""
    decoded: dict[str, tuple[np.ndarray, str]] = {}
    instruments: dict[str, str] = {}
    first: StemRecord = group[0]["meta"]
    rate = None
    for sample in group:
        key, meta = sample["__key__"], sample["meta"]
        if "flac" not in sample:
            raise TrackError(key, "missing audio file", "stem sample has no 'flac' member")
        try:
            x, sr = decode_artifact_audio(sample["flac"], declared_sr=meta.sample_rate)
        except ValueError as exc:
            reason, _, detail = str(exc).partition(": ")
            if reason == "non-finite samples":
                reason = "bad audio"
            elif reason == "undecodable audio":
                reason = "unreadable audio"
            raise TrackError(key, reason, detail) from None
        target = sample_rate or rate or sr
        x = resample(x, sr, target)
        rate = target
        name = str(meta.stem or f"stem{int(meta.stem_index):02d}").lower()
        if name in decoded:  # two parts with one name (e.g. two violins): keep both, distinctly
            name = f"{name}_{int(meta.stem_index):02d}"
        decoded[name] = (x, key)
        instruments[name] = str(meta.instrument or name)
    stems = align_stem_lengths(decoded, rate, tolerance_s)
    prov = group[0]["provenance"] or {}
    return MultitrackTrack(
        track_id=str(first.track_id),
        stems=stems,
        sample_rate=rate,
        instruments=instruments,
        source="corpus",
        licence=str(prov.get("licence") or "unknown"),
        split=first.split,
        # Labels ride along when the corpus writes them into the stem json (the builder prefers the manifest).
        meta={
            "upstream_source": prov.get("source", ""),
            **{k: getattr(first, k) for k in ("quadrant", "mood", "style") if getattr(first, k) is not None},
        },
    )


def _stem_record(sample: dict[str, Any]) -> tuple[StemRecord, dict[str, Any]]:
    """The :class:`~mgdata.corpus.records.StemRecord` of a corpus stem sample and its envelope (provenance).

    Raises:
        TrackError: No json member, unparsable json, or a json that is not a stem record
            (missing or unknown fields), category ``bad metadata``.
    """
    key = sample["__key__"]
    if "json" not in sample:
        raise TrackError(key, "bad metadata", "stem sample has no json member with a 'track_id'")
    try:
        return StemRecord.from_sample_envelope(sample)
    except DecodeError as exc:
        raise TrackError(key, "bad metadata", f"unparsable json ({exc})") from None
    except InputError as exc:
        raise TrackError(key, "bad metadata", exc.message.removeprefix("bad metadata: ")) from None


def iter_corpus_tracks(
    corpus_stems_dir: str | Path,
    *,
    sample_rate: int | None = None,
    length_tolerance_s: float = 0.05,
    report: StageReport | None = None,
    fail_on_error: bool = False,
    max_tracks: int = 0,
) -> Iterator[MultitrackTrack]:
    """Tracks of a corpus stems artifact (``data/corpus/stems``), grouped from its stem samples.

    The stems of a track are consecutive in the stream (README.md, "Artifact formats"), so tracks
    are built one at a time (memory: one track).

    Args:
        corpus_stems_dir: The stems artifact directory.
        sample_rate: Resample to this rate (``None``: keep the artifact's rate).
        length_tolerance_s: See :func:`align_stem_lengths`.
        report: Where bad tracks are recorded (skip + count).
        fail_on_error: Raise the first :class:`TrackError` instead.
        max_tracks: Stop after this many tracks (0 = all), counting skipped ones.

    Yields:
        :class:`MultitrackTrack` with ``source="corpus"`` and the corpus split.
    """
    group: list[dict[str, Any]] = []
    finished: set[str] = set()
    n_seen = 0

    def flush() -> Iterator[MultitrackTrack]:
        track_id = str(group[0]["meta"].track_id)
        finished.add(track_id)
        try:
            yield _corpus_track(group, sample_rate, length_tolerance_s)
        except InputError as err:
            handle_track_error(err, track_id, report, fail_on_error)

    for sample in iter_samples(corpus_stems_dir):
        key = sample["__key__"]
        try:
            meta, envelope = _stem_record(sample)
        except TrackError as err:
            handle_track_error(err, key, report, fail_on_error, "stem_samples_skipped")
            continue
        track_id = str(meta.track_id)
        if group and str(group[0]["meta"].track_id) != track_id:
            yield from flush()
            n_seen += 1
            group = []
            if max_tracks and n_seen >= max_tracks:
                return
        if not group and track_id in finished:
            err = TrackError(key, "bad metadata", f"stems of track {track_id!r} are not consecutive in the stream")
            handle_track_error(err, key, report, fail_on_error, "stem_samples_skipped")
            continue
        group.append({**sample, "meta": meta, "provenance": envelope.get("provenance")})
    if group:
        yield from flush()
