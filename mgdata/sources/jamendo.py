"""MTG-Jamendo source: the official metadata TSVs and (optionally) the MP3 audio.

The dataset (Bogdanov et al., "The MTG-Jamendo Dataset for Automatic Music
Tagging", ICML 2019 ML4MD workshop; metadata CC BY-NC-SA 4.0) ships its metadata
as tab-separated files::

    TRACK_ID  ARTIST_ID  ALBUM_ID  PATH  DURATION  TAGS...

with a variable number of tag columns, each tag prefixed by its category
(``mood/theme---happy``, ``genre---rock``, ``instrument---piano``). The official
splits live in ``splits/split-N/autotagging_<subset>-{train,validation,test}.tsv``.

Metadata parsing needs nothing but the TSV files. Audio (``PATH`` relative to a
user-given ``audio_root``) is decoded through soundfile (libsndfile >= 1.1 reads
MP3); every audio function fails with a :class:`~mgdata.errors.ParamsError`
naming ``audio_root`` when it is not set, so metadata-only stages never need it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mgdata.config import check
from mgdata.errors import InputError, ParamsError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from mgdata.report import StageReport

log = logging.getLogger(__name__)

#: Column names of the official TSV header (tags follow in the remaining columns).
HEADER: tuple[str, ...] = ("TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS")
#: Separator between a tag's category and its name (``mood/theme---happy``).
TAG_SEPARATOR = "---"
#: Category of the mood/theme subset; bare tags (``happy``) are taken to be in it.
MOODTHEME = "mood/theme"
#: The three official split names, in the order they are read.
SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: The 59 tags of the mood/theme subset (``mood_theme_stats.tsv``; the README says 56, the files have 59).
MOODTHEME_TAGS: frozenset[str] = frozenset(
    """action adventure advertising ambiental background ballad calm children christmas
    commercial cool corporate dark deep documentary drama dramatic dream emotional energetic
    epic fast film fun funny game groovy happy heavy holiday hopeful horror inspiring love
    meditative melancholic mellow melodic motivational movie nature party positive powerful
    relaxing retro romantic sad sexy slow soft soundscape space sport summer trailer travel
    upbeat uplifting""".split()
)
#: The 56 tags of the MediaEval 2019 Emotions and Themes task: those of the official moodtheme split files
#: (ambiental, horror and mellow are in the stats file only).
MEDIAEVAL_MOODTHEME_TAGS: frozenset[str] = MOODTHEME_TAGS - {"ambiental", "horror", "mellow"}


def split_tag(tag: str) -> tuple[str, str]:
    """Split a tag into its category and name.

    Bare tags (as written in the chorale corpus manifest) belong to the
    mood/theme category.

    Args:
        tag: ``"mood/theme---happy"``, ``"genre---rock"`` or ``"happy"``.

    Returns:
        ``(category, name)``, e.g. ``("mood/theme", "happy")``.

    Raises:
        ValueError: If the tag or its name is empty.
    """
    tag = tag.strip()
    category, sep, name = tag.rpartition(TAG_SEPARATOR)
    if not sep:
        category, name = MOODTHEME, tag
    if not name or (sep and not category):
        raise ValueError(f"malformed tag {tag!r}")
    return category, name


@dataclass(frozen=True)
class JamendoTrack:
    """One row of an MTG-Jamendo metadata TSV.

    Attributes:
        track_id: ``track_0000948``.
        artist_id: ``artist_000087``.
        album_id: ``album_000149``.
        path: Audio path relative to the audio root (``48/948.mp3``).
        duration_s: Track duration in seconds, as given in the metadata.
        tags: Tags in row order, with their category prefix as in the file.
        split: ``train``/``validation``/``test`` when read from a split file, else None.
    """

    track_id: str
    artist_id: str
    album_id: str
    path: str
    duration_s: float
    tags: tuple[str, ...] = ()
    split: str | None = None

    def __post_init__(self) -> None:
        for name in ("track_id", "artist_id", "album_id", "path"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or value != value.strip():
                raise ValueError(f"{name} must be a non-empty string without surrounding space, got {value!r}")
        if not isinstance(self.duration_s, (int, float)) or not math.isfinite(self.duration_s) or self.duration_s <= 0:
            raise ValueError(f"duration_s must be a finite number > 0, got {self.duration_s!r}")
        object.__setattr__(self, "duration_s", float(self.duration_s))
        object.__setattr__(self, "tags", tuple(self.tags))
        for tag in self.tags:
            if not isinstance(tag, str):
                raise ValueError(f"tags must be strings, got {tag!r}")
            split_tag(tag)  # raises on an empty tag or category
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {self.split!r}")

    @property
    def tag_names(self) -> tuple[str, ...]:
        """Tag names without their category prefix, in row order."""
        return tuple(split_tag(t)[1] for t in self.tags)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (tags as a list)."""
        return {
            "track_id": self.track_id,
            "artist_id": self.artist_id,
            "album_id": self.album_id,
            "path": self.path,
            "duration_s": self.duration_s,
            "tags": list(self.tags),
            "split": self.split,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JamendoTrack:
        """Inverse of :meth:`to_dict`."""
        return cls(
            track_id=data["track_id"],
            artist_id=data["artist_id"],
            album_id=data["album_id"],
            path=data["path"],
            duration_s=data["duration_s"],
            tags=tuple(data.get("tags", ())),
            split=data.get("split"),
        )


def _parse_row(fields: Sequence[str], split: str | None) -> JamendoTrack:
    """Build a track from the tab-separated fields of one row (raises ValueError)."""
    if len(fields) < 6:
        raise ValueError(f"expected >= 6 tab-separated columns ({' '.join(HEADER)}...), got {len(fields)}")
    track_id, artist_id, album_id, path, duration = fields[:5]
    try:
        duration_s = float(duration)
    except ValueError:
        raise ValueError(f"DURATION is not a number: {duration!r}") from None
    return JamendoTrack(track_id, artist_id, album_id, path, duration_s, tuple(fields[5:]), split)


def split_from_filename(path: str | Path) -> str | None:
    """Split name from an official file name (``autotagging_moodtheme-train.tsv`` -> ``train``)."""
    stem = Path(path).name.split(".")[0]
    tail = stem.rsplit("-", 1)[-1]
    return tail if "-" in stem and tail in SPLITS else None


def read_tsv(
    path: str | Path,
    *,
    split: str | None = None,
    strict: bool = True,
    report: StageReport | None = None,
) -> list[JamendoTrack]:
    """Read one MTG-Jamendo metadata TSV.

    Args:
        path: The TSV file (header line first).
        split: Split name stored on every track; by default inferred from the
            file name (``...-train.tsv``), else None.
        strict: If True, a malformed row raises; if False it is skipped, logged
            and counted in ``report`` (as ``skipped`` with reason ``malformed row``).
        report: Where skipped rows are counted.

    Returns:
        The tracks in file order.

    Raises:
        InputError: The file is missing, its header is wrong, or (strict) a row
            is malformed or repeats a track id; the message names file and line.
    """
    path = Path(path)
    if split is None:
        split = split_from_filename(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read MTG-Jamendo TSV: {exc}") from exc
    lines = text.splitlines()
    if not lines or lines[0].rstrip("\r").split("\t")[: len(HEADER)] != list(HEADER):
        got = lines[0][:80] if lines else "<empty file>"
        raise InputError(f"{path}:1", f"expected header {' '.join(HEADER)} (tab-separated), got {got!r}")
    tracks: list[JamendoTrack] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue  # a blank line (e.g. at the end) carries no row
        where = f"{path}:{lineno}"
        try:
            track = _parse_row(line.split("\t"), split)
            if track.track_id in seen:
                raise ValueError(f"track id {track.track_id} repeats line {seen[track.track_id]}")
        except ValueError as exc:
            if strict:
                raise InputError(where, f"malformed row: {exc}") from None
            log.warning("%s: skipped malformed row: %s", where, exc)
            if report is not None:
                report.skip(where, f"malformed row: {exc}")
            continue
        seen[track.track_id] = lineno
        tracks.append(track)
    return tracks


def split_files(metadata_dir: str | Path, *, split_index: int = 0, subset: str = "moodtheme") -> dict[str, Path]:
    """Paths of the official split files, ``{split: path}`` in train/validation/test order.

    Args:
        metadata_dir: The dataset's ``data/`` directory (holding ``splits/``), or a
            ``splits/`` directory, or one ``split-N`` directory.
        split_index: Which of the official splits (0-4; split 0 is MediaEval's).
        subset: Subset name in the file names (``moodtheme``, ``genre``, ...).

    Raises:
        InputError: If the directory or one of the three files is missing.
    """
    root = Path(metadata_dir)
    name = f"split-{split_index}"
    candidates = [root / "splits" / name, root / name, root]
    split_dir = next((c for c in candidates if (c / f"autotagging_{subset}-train.tsv").is_file()), None)
    if split_dir is None:
        raise InputError(
            str(root),
            f"no MTG-Jamendo split files found (looked for splits/{name}/autotagging_{subset}-train.tsv); "
            "point metadata_dir at the dataset's data/ directory",
        )
    files = {s: split_dir / f"autotagging_{subset}-{s}.tsv" for s in SPLITS}
    for path in files.values():
        if not path.is_file():
            raise InputError(str(path), "split file missing")
    return files


def read_split(
    metadata_dir: str | Path,
    *,
    split_index: int = 0,
    subset: str = "moodtheme",
    strict: bool = True,
    report: StageReport | None = None,
) -> list[JamendoTrack]:
    """Read the train, validation and test files of one official split.

    Args:
        metadata_dir: See :func:`split_files`.
        split_index: Official split number.
        subset: Subset name in the file names.
        strict: Raise on malformed rows (else skip and count in ``report``).
        report: Where skipped rows are counted.

    Returns:
        Tracks of train, then validation, then test, each in file order, with
        ``split`` set.

    Raises:
        InputError: A file is missing or malformed, or a track is in two splits.
    """
    tracks: list[JamendoTrack] = []
    where: dict[str, Path] = {}
    for split, path in split_files(metadata_dir, split_index=split_index, subset=subset).items():
        for track in read_tsv(path, split=split, strict=strict, report=report):
            if track.track_id in where:
                # A leak between splits would silently inflate test scores.
                raise InputError(str(path), f"track {track.track_id} is also in {where[track.track_id]}")
            where[track.track_id] = path
            tracks.append(track)
    return tracks


# ---------------------------------------------------------------- audio


@dataclass(frozen=True)
class JamendoConfig:
    """Params of the MTG-Jamendo source (nested as ``relabel.jamendo``; audio stages reuse it).

    Attributes:
        metadata_dir: The dataset's ``data/`` directory (holding ``splits/``);
            None disables the source.
        split_index: Which official split (0-4) to read.
        subset: Subset name in the split file names.
        audio_root: Directory the TSV ``PATH`` column is relative to; None
            means metadata only (audio functions then raise).
        clip_s: Clip length in seconds.
        clip_position: ``middle`` (centred), ``start``, or a start time in seconds.
        sample_rate: Target sample rate of the clips (Hz).
        fail_on_error: Raise on a malformed row / missing audio file instead of skipping it.
    """

    metadata_dir: str | None = None
    split_index: int = 0
    subset: str = "moodtheme"
    audio_root: str | None = None
    clip_s: float = 30.0
    clip_position: Literal["middle", "start"] | float = "middle"
    sample_rate: int = 16000
    fail_on_error: bool = False

    def __post_init__(self) -> None:
        check(self.split_index >= 0, "split_index", f"expected an official split number >= 0, got {self.split_index}")
        check(bool(self.subset.strip()), "subset", "expected a subset name such as moodtheme")
        check(self.clip_s > 0, "clip_s", f"expected > 0 seconds, got {self.clip_s}")
        check(
            self.clip_position in ("middle", "start")
            or (isinstance(self.clip_position, (int, float)) and self.clip_position >= 0),
            "clip_position",
            f"expected middle, start or a start time >= 0 s, got {self.clip_position!r}",
        )
        check(1000 <= self.sample_rate <= 384000, "sample_rate", f"expected 1000..384000 Hz, got {self.sample_rate}")


@dataclass(frozen=True)
class JamendoClip:
    """A decoded clip of one track.

    Attributes:
        track: The metadata row.
        offset_s: Clip start in the file (seconds).
        duration_s: Clip length actually decoded (seconds; shorter than asked
            when the track is shorter).
        sample_rate: Sample rate of ``audio`` (Hz).
        audio: Mono float32 samples, shape ``[n]``.
    """

    track: JamendoTrack
    offset_s: float
    duration_s: float
    sample_rate: int
    audio: np.ndarray = field(repr=False)


def require_audio_root(audio_root: str | Path | None, *, key: str = "jamendo.audio_root") -> Path:
    """Check that the audio root is set and exists.

    Args:
        audio_root: The configured root (may be None).
        key: The params key to name in the error.

    Raises:
        ParamsError: Naming ``key`` when the root is unset or not a directory.
    """
    if audio_root is None or str(audio_root).strip() == "":
        raise ParamsError(
            key,
            "is not set: MTG-Jamendo audio is not included in the metadata; download it "
            "(https://github.com/MTG/mtg-jamendo-dataset) and set this to the directory the "
            "TSV PATH column is relative to",
        )
    root = Path(audio_root)
    if not root.is_dir():
        raise ParamsError(key, f"{root} is not a directory")
    return root


def clip_bounds(duration_s: float, *, clip_s: float, position: str | float = "middle") -> tuple[float, float]:
    """Where a clip falls in a track.

    A track shorter than ``clip_s`` gives the whole track (no padding).

    Args:
        duration_s: Track duration (seconds).
        clip_s: Wanted clip length (seconds).
        position: ``"middle"`` (centred), ``"start"``, or a start time in seconds.

    Returns:
        ``(offset_s, length_s)``.

    Raises:
        ValueError: On a bad position or a numeric start at/after the end.
    """
    if not duration_s > 0 or not clip_s > 0:
        raise ValueError(f"duration_s and clip_s must be > 0, got {duration_s}, {clip_s}")
    length_s = min(clip_s, duration_s)
    if position == "middle":
        offset_s = (duration_s - length_s) / 2.0
    elif position == "start":
        offset_s = 0.0
    elif isinstance(position, (int, float)) and not isinstance(position, bool):
        if not 0 <= position < duration_s:
            raise ValueError(f"clip start {position} s is outside the track (0..{duration_s} s)")
        offset_s = float(position)
        length_s = min(clip_s, duration_s - offset_s)
    else:
        raise ValueError(f"position must be 'middle', 'start' or seconds, got {position!r}")
    return offset_s, length_s


def audio_path(track: JamendoTrack, audio_root: str | Path | None) -> Path:
    """Absolute audio path of a track (checks the root is set)."""
    return require_audio_root(audio_root) / track.path


def load_clip(
    track: JamendoTrack,
    audio_root: str | Path | None,
    *,
    clip_s: float = 30.0,
    position: str | float = "middle",
    sample_rate: int = 16000,
) -> JamendoClip:
    """Decode one clip of a track: mono, resampled to ``sample_rate``.

    The file's own length (not the metadata ``DURATION``) places the clip.

    Args:
        track: The metadata row.
        audio_root: Directory ``track.path`` is relative to.
        clip_s: Clip length (seconds).
        position: See :func:`clip_bounds`.
        sample_rate: Target sample rate (Hz).

    Raises:
        ParamsError: ``audio_root`` unset or missing.
        InputError: The audio file is missing, unreadable or the position is
            outside it (names the file).
    """
    import soundfile as sf

    from mgdata.audio import read_audio

    path = audio_path(track, audio_root)
    if not path.is_file():
        raise InputError(str(path), f"audio file of {track.track_id} not found")
    try:
        info = sf.info(str(path))
        file_duration_s = info.frames / info.samplerate if info.frames > 0 else track.duration_s
        offset_s, length_s = clip_bounds(file_duration_s, clip_s=clip_s, position=position)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise InputError(str(path), f"unreadable audio: {exc}") from exc
    except ValueError as exc:
        raise InputError(str(path), str(exc)) from exc
    audio, sr = read_audio(path, sr=sample_rate, mono=True, offset_s=offset_s, duration_s=length_s)
    return JamendoClip(track, offset_s, audio.shape[-1] / sr, sr, audio)


def iter_clips(
    tracks: Iterable[JamendoTrack],
    cfg: JamendoConfig,
    *,
    report: StageReport | None = None,
    progress: bool = True,
) -> Iterator[JamendoClip]:
    """Decode one clip per track, in the given order (for audio stages).

    Args:
        tracks: E.g. ``[t for t in read_split(...) if t.split == "train"]``.
        cfg: Source params (``audio_root``, clip length/position, sample rate, fail_on_error).
        report: Where unreadable/missing files are counted when ``cfg.fail_on_error`` is False.
        progress: Show a tqdm bar.

    Yields:
        One :class:`JamendoClip` per readable track.

    Raises:
        ParamsError: ``audio_root`` unset (raised before any decoding).
        InputError: A bad file when ``cfg.fail_on_error`` is True.
    """
    from tqdm import tqdm

    require_audio_root(cfg.audio_root)  # fail before the first track, not mid-way
    tracks = list(tracks)
    for track in tqdm(tracks, desc="jamendo clips", unit="track", disable=not progress):
        try:
            yield load_clip(
                track, cfg.audio_root, clip_s=cfg.clip_s, position=cfg.clip_position, sample_rate=cfg.sample_rate
            )
        except InputError as exc:
            if cfg.fail_on_error:
                raise
            log.warning("skipped %s: %s", track.track_id, exc)
            if report is not None:
                report.skip(exc.where, exc.message)
