"""MoisesDB source: read a MoisesDB download in its own on-disk layout.

Layout (as read by the official loader, moises-ai/moises-db ``moisesdb/track.py``
``MoisesDBTrack._parse_sources`` and ``moisesdb/dataset.py`` ``MoisesDB``)::

    <data_path>/<provider>/<track uuid>/data.json
    <data_path>/<provider>/<track uuid>/<stemName>/<track id>.<extension>

``data.json`` holds ``"song"``, ``"artist"``, ``"genre"`` and ``"stems"``: a list
of ``{"stemName": "vocals" | "bass" | "drums" | "guitar" | "piano" | "other" |
"percussion" | "bowed_strings" | "wind" | "other_keys" | "other_plucked",
"id", "tracks": [{"id", "trackType", "extension": "wav", ...}]}``. Every
recorded track of a stem is one audio file; the tracks of one stem type are
summed (the official ``stem_mixture`` does the same), giving one mono stem per
type. ``root`` may be the ``<data_path>`` (holding provider folders such as
``moisesdb_v0.1``) or a provider folder (holding the track folders).

Get the data from https://music.ai/research/ (MoisesDB, non-commercial research
licence) and set ``stems.source: moisesdb`` and ``stems.moisesdb_root`` in params.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mgdata.audio import read_audio, resample
from mgdata.errors import InputError
from mgdata.report import StageReport
from mgdata.sources.multitrack import MultitrackTrack, TrackError, align_stem_lengths, handle_track_error

SOURCE = "moisesdb"
LICENCE = "MoisesDB: non-commercial research licence (see moises-ai/moises-db)"
DATA_JSON = "data.json"


@dataclass(frozen=True)
class MoisesStem:
    """One stem type of a MoisesDB track.

    Attributes:
        name: ``stemName`` (folder name), e.g. ``"bowed_strings"``.
        files: Audio files of its recorded tracks, summed into the stem.
        track_types: ``trackType`` of each file (e.g. ``"bass_guitar"``).
    """

    name: str
    files: tuple[Path, ...]
    track_types: tuple[str, ...]

    @property
    def instrument(self) -> str:
        """Instrument label: the distinct track types, sorted, joined with ``+``."""
        return "+".join(sorted(set(self.track_types))) or self.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {"name": self.name, "files": [str(f) for f in self.files], "track_types": list(self.track_types)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MoisesStem:
        """Inverse of :meth:`to_dict`."""
        return cls(data["name"], tuple(Path(f) for f in data["files"]), tuple(data["track_types"]))


@dataclass(frozen=True)
class MoisesTrackInfo:
    """Metadata of one MoisesDB track, parsed from its ``data.json`` (no audio read).

    Attributes:
        track_id: Track folder name (a UUID).
        path: Track folder.
        provider: Provider folder name (e.g. ``"moisesdb_v0.1"``), "" if root is the provider.
        song: ``data.json`` "song".
        artist: ``data.json`` "artist".
        genre: ``data.json`` "genre".
        stems: Stem types in ``data.json`` order (duplicate stemName entries merged).
    """

    track_id: str
    path: Path
    provider: str = ""
    song: str = ""
    artist: str = ""
    genre: str = ""
    stems: tuple[MoisesStem, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        d = asdict(self)
        d["path"] = str(self.path)
        d["stems"] = [s.to_dict() for s in self.stems]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MoisesTrackInfo:
        """Inverse of :meth:`to_dict`."""
        return cls(
            track_id=data["track_id"],
            path=Path(data["path"]),
            provider=data.get("provider", ""),
            song=data.get("song", ""),
            artist=data.get("artist", ""),
            genre=data.get("genre", ""),
            stems=tuple(MoisesStem.from_dict(s) for s in data.get("stems", [])),
        )


def list_moisesdb_tracks(root: str | Path, *, max_tracks: int = 0) -> list[Path]:
    """Track folders (those holding a ``data.json``) under ``root``, sorted by track id.

    Args:
        root: A MoisesDB ``data_path`` (provider folders inside) or a provider folder.
        max_tracks: Keep the first N (0 = all).

    Raises:
        InputError: ``root`` does not exist, holds no track folder, or two
            providers hold the same track id.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(str(root), "MoisesDB root not found (set params stems.moisesdb_root)")
    found = [p.parent for p in root.glob(f"*/{DATA_JSON}")]
    found += [p.parent for p in root.glob(f"*/*/{DATA_JSON}")]
    if not found:
        raise InputError(str(root), f"no MoisesDB track folders (<track uuid>/{DATA_JSON}) found")
    by_id: dict[str, Path] = {}
    for path in found:
        if path.name in by_id:
            raise InputError(str(path), f"track id {path.name!r} also in {by_id[path.name]}")
        by_id[path.name] = path
    tracks = [by_id[k] for k in sorted(by_id)]
    return tracks[:max_tracks] if max_tracks else tracks


def read_moisesdb_info(track_dir: str | Path, root: str | Path | None = None) -> MoisesTrackInfo:
    """Parse a track folder's ``data.json``.

    Args:
        track_dir: The track folder.
        root: The dataset root given by the user (to tell the provider folder apart).

    Raises:
        TrackError: (``bad metadata``) ``data.json`` is missing, not JSON, or lacks
            ``stems`` / ``stemName`` / ``tracks`` / track ``id``; names the file.
    """
    track_dir = Path(track_dir)
    meta_path = track_dir / DATA_JSON
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrackError(meta_path, "bad metadata", "data.json not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrackError(meta_path, "bad metadata", f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("stems"), list):
        raise TrackError(meta_path, "bad metadata", "expected an object with a 'stems' list")
    merged: dict[str, tuple[list[Path], list[str]]] = {}
    for i, stem in enumerate(data["stems"]):
        name = stem.get("stemName") if isinstance(stem, dict) else None
        tracks = stem.get("tracks") if isinstance(stem, dict) else None
        if not isinstance(name, str) or not name or not isinstance(tracks, list):
            raise TrackError(meta_path, "bad metadata", f"stems[{i}] needs a 'stemName' string and a 'tracks' list")
        files, types = merged.setdefault(name, ([], []))
        for j, tr in enumerate(tracks):
            if not isinstance(tr, dict) or not tr.get("id"):
                raise TrackError(meta_path, "bad metadata", f"stems[{i}].tracks[{j}] has no 'id'")
            ext = str(tr.get("extension") or "wav")
            files.append(track_dir / name / f"{tr['id']}.{ext}")
            types.append(str(tr.get("trackType") or name))
    provider = ""
    if root is not None and track_dir.parent.resolve() != Path(root).resolve():
        provider = track_dir.parent.name
    return MoisesTrackInfo(
        track_id=track_dir.name,
        path=track_dir,
        provider=provider,
        song=str(data.get("song") or ""),
        artist=str(data.get("artist") or ""),
        genre=str(data.get("genre") or ""),
        stems=tuple(MoisesStem(n, tuple(f), tuple(t)) for n, (f, t) in merged.items()),
    )


def _read_file(path: Path, sample_rate: int) -> np.ndarray:
    """One audio file, mono, at ``sample_rate`` (raises TrackError naming it)."""
    if not path.exists():
        raise TrackError(path, "missing audio file", "listed in data.json but not on disk")
    try:
        x, sr = read_audio(path, mono=True)
    except InputError as exc:
        raise TrackError(path, "unreadable audio", exc.message) from None
    if x.size == 0:
        raise TrackError(path, "unreadable audio", "file holds no samples")
    return resample(x, sr, sample_rate)


def load_moisesdb_track(
    info: MoisesTrackInfo,
    *,
    sample_rate: int,
    length_tolerance_s: float = 0.05,
    report: StageReport | None = None,
) -> MultitrackTrack:
    """Read, resample and sum the audio of one track into one mono stem per type.

    Every file is resampled to ``sample_rate`` first, then all files of the track
    are checked against a common length (:func:`align_stem_lengths`), then the
    files of each stem type are summed. A stem type with no track files is left
    out and counted (``report.count("moisesdb_empty_stems")``).

    Raises:
        TrackError: A missing or unreadable file, or a file whose length differs
            from the others by more than ``length_tolerance_s``; names the file.
    """
    files: dict[str, tuple[np.ndarray, str]] = {}
    owner: dict[str, str] = {}
    for stem in info.stems:
        if not stem.files:
            if report is not None:
                report.count("moisesdb_empty_stems")
            continue
        for i, path in enumerate(stem.files):
            tag = f"{stem.name}#{i}"
            files[tag] = (_read_file(path, sample_rate), str(path))
            owner[tag] = stem.name
    if not files:
        raise TrackError(info.path / DATA_JSON, "bad metadata", "no stem lists any audio file")
    aligned = align_stem_lengths(files, sample_rate, length_tolerance_s)
    stems: dict[str, np.ndarray] = {}
    for tag, x in aligned.items():
        name = owner[tag]
        stems[name] = stems[name] + x if name in stems else x.astype(np.float32, copy=True)
    return MultitrackTrack(
        track_id=info.track_id,
        stems=stems,
        sample_rate=sample_rate,
        instruments={s.name: s.instrument for s in info.stems if s.name in stems},
        source=SOURCE,
        licence=LICENCE,
        split=None,
        meta={"song": info.song, "artist": info.artist, "genre": info.genre, "provider": info.provider},
    )


def iter_moisesdb_tracks(
    root: str | Path,
    *,
    sample_rate: int,
    length_tolerance_s: float = 0.05,
    report: StageReport | None = None,
    fail_on_error: bool = False,
    max_tracks: int = 0,
    progress: bool = False,
) -> Iterator[MultitrackTrack]:
    """Tracks of a MoisesDB download, one at a time, in track-id order.

    Args:
        root: MoisesDB ``data_path`` or provider folder.
        sample_rate: Target rate; files are resampled with :func:`mgdata.audio.resample`.
        length_tolerance_s: See :func:`mgdata.sources.multitrack.align_stem_lengths`.
        report: Where bad tracks are recorded (``report.skip`` naming the file).
        fail_on_error: Raise the first :class:`TrackError` instead of skipping.
        max_tracks: Only the first N track folders (0 = all).
        progress: Show a tqdm bar.

    Yields:
        :class:`MultitrackTrack` with ``source="moisesdb"`` and no split.
    """
    dirs = list_moisesdb_tracks(root, max_tracks=max_tracks)
    for track_dir in tqdm(dirs, desc="moisesdb", unit="track", disable=not progress):
        try:
            info = read_moisesdb_info(track_dir, root)
            track = load_moisesdb_track(
                info, sample_rate=sample_rate, length_tolerance_s=length_tolerance_s, report=report
            )
        except InputError as err:
            handle_track_error(err, track_dir.name, report, fail_on_error)
            continue
        yield track


def moisesdb_source_info(root: str | Path, *, max_tracks: int = 0) -> dict[str, Any]:
    """Upstream description of a MoisesDB download, for provenance and fingerprints.

    The fingerprint hashes every track's ``data.json`` bytes and the names and
    sizes of its audio files (cheap: no audio is read), so editing or replacing
    the data rebuilds the artifact.

    Returns:
        ``{"source", "source_version", "licence", "fingerprint", "path", "tracks"}``.
    """
    root = Path(root)
    dirs = list_moisesdb_tracks(root, max_tracks=max_tracks)
    h = hashlib.sha256()
    providers = set()
    for track_dir in dirs:
        if track_dir.parent.resolve() != root.resolve():
            providers.add(track_dir.parent.name)
        h.update(track_dir.name.encode() + b"\0")
        h.update((track_dir / DATA_JSON).read_bytes())
        for f in sorted(p for p in track_dir.rglob("*") if p.is_file() and p.name != DATA_JSON):
            h.update(f"{f.relative_to(track_dir).as_posix()}:{f.stat().st_size}\0".encode())
    return {
        "source": SOURCE,
        "source_version": "+".join(sorted(providers)) or root.name or SOURCE,
        "licence": LICENCE,
        "fingerprint": h.hexdigest(),
        "path": str(root),
        "tracks": len(dirs),
    }


__all__ = [
    "LICENCE",
    "SOURCE",
    "MoisesStem",
    "MoisesTrackInfo",
    "iter_moisesdb_tracks",
    "list_moisesdb_tracks",
    "load_moisesdb_track",
    "moisesdb_source_info",
    "read_moisesdb_info",
]
