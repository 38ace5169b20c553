"""Emotion relabelling: multi-label mood tags -> one arousal/valence quadrant per track.

The mapping is data: a YAML file listing, per quadrant, the tags that put a track
in it (``mgdata/labels/mappings/<name>.yaml`` selectable by name, or a user file).
A track takes the quadrant of its *first mapped tag in row order*; if its mapped
tags point to several quadrants it is counted as a conflict. A track without any
mapped tag is left out and counted. Tags may arrive prefixed
(``mood/theme---happy``, MTG-Jamendo TSVs) or bare (``happy``, corpus manifest).

:func:`build_relabel` is the library side of the ``relabel`` stage: it relabels
the chorale corpus manifest and, optionally, MTG-Jamendo metadata.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import yaml

from mgdata.errors import InputError, ParamsError
from mgdata.provenance import Provenance
from mgdata.sources.jamendo import MOODTHEME, MOODTHEME_TAGS, TAG_SEPARATOR, JamendoTrack, read_split, split_tag
from mgdata.store import fingerprint, sha256_file

if TYPE_CHECKING:  # pragma: no cover - typing only
    from mgdata.labels.config import RelabelConfig
    from mgdata.report import StageReport

log = logging.getLogger(__name__)

#: The four quadrants of Russell's circumplex (arousal x valence), in table order.
QUADRANTS: tuple[str, ...] = (
    "activated_pleasant",
    "deactivated_pleasant",
    "activated_unpleasant",
    "deactivated_unpleasant",
)
#: Output columns, in order (see README.md, "Artifact formats").
COLUMNS: tuple[str, ...] = ("track_id", "quadrant", "split", "duration_s", "tag")
SCHEMA = {"track_id": pl.String, "quadrant": pl.String, "split": pl.String, "duration_s": pl.Float64, "tag": pl.String}
DEFAULT_MAPPING = "paper1"


def normalize_tag(tag: str) -> str:
    """Canonical ``category---name`` form, lower-case; bare tags are mood/theme.

    Raises:
        ValueError: On an empty tag.
    """
    category, name = split_tag(str(tag))
    return f"{category.strip().lower()}{TAG_SEPARATOR}{name.strip().lower()}"


@dataclass(frozen=True)
class TagMapping:
    """A tag -> quadrant mapping.

    Attributes:
        name: Mapping name (``paper1``).
        quadrants: ``{quadrant: tags}``; tags normalised (``mood/theme---happy``).
        source: Where it was loaded from (file path), for error messages and metrics.
        description: Free text (e.g. the citation).
    """

    name: str
    quadrants: dict[str, tuple[str, ...]]
    source: str = "<memory>"
    description: str = ""
    tag_to_quadrant: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = self.source
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError(where, "mapping needs a non-empty 'name'")
        if not isinstance(self.quadrants, Mapping) or not self.quadrants:
            raise InputError(where, f"'quadrants' must map quadrant names ({', '.join(QUADRANTS)}) to tag lists")
        lookup: dict[str, str] = {}
        clean: dict[str, tuple[str, ...]] = {}
        for quadrant, tags in self.quadrants.items():
            if quadrant not in QUADRANTS:
                raise InputError(where, f"unknown quadrant {quadrant!r}; expected one of {', '.join(QUADRANTS)}")
            if isinstance(tags, str) or not isinstance(tags, (list, tuple)) or not tags:
                raise InputError(where, f"quadrant {quadrant}: expected a non-empty list of tags, got {tags!r}")
            normed = []
            for tag in tags:
                if not isinstance(tag, str):
                    raise InputError(where, f"quadrant {quadrant}: tag {tag!r} is not a string")
                try:
                    norm = normalize_tag(tag)
                except ValueError as exc:
                    raise InputError(where, f"quadrant {quadrant}: {exc}") from None
                if norm in lookup:
                    # One tag in two quadrants would make the label depend on YAML order.
                    raise InputError(where, f"tag {tag!r} is listed under both {lookup[norm]} and {quadrant}")
                lookup[norm] = quadrant
                normed.append(norm)
            clean[quadrant] = tuple(normed)
        object.__setattr__(self, "quadrants", {q: clean[q] for q in QUADRANTS if q in clean})
        object.__setattr__(self, "tag_to_quadrant", lookup)

    def quadrant_of(self, tag: str) -> str | None:
        """Quadrant of one tag (prefixed or bare), or None if unmapped."""
        try:
            return self.tag_to_quadrant.get(normalize_tag(tag))
        except ValueError:
            return None

    def to_dict(self) -> dict[str, Any]:
        """Plain form, as written in a mapping YAML (tags normalised)."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "quadrants": {q: list(t) for q, t in self.quadrants.items()},
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<memory>") -> TagMapping:
        """Build from a parsed mapping YAML; errors name ``source``.

        Raises:
            InputError: Missing/unknown keys, unknown quadrant, bad tag lists.
        """
        if not isinstance(data, Mapping):
            raise InputError(source, f"expected a YAML mapping with 'name' and 'quadrants', got {type(data).__name__}")
        unknown = sorted(set(data) - {"name", "description", "quadrants", "source"})
        if unknown:
            raise InputError(source, f"unknown key {unknown[0]!r} (known: name, description, quadrants)")
        if "quadrants" not in data:
            raise InputError(source, "missing key 'quadrants'")
        return cls(
            name=data.get("name") or Path(source).stem,
            quadrants=data["quadrants"],
            source=source,
            description=str(data.get("description") or ""),
        )


def _mapping_dir() -> Any:
    return resources.files("mgdata.labels") / "mappings"


def available_mappings() -> list[str]:
    """Names of the mappings shipped in the package."""
    return sorted(p.name[: -len(".yaml")] for p in _mapping_dir().iterdir() if p.name.endswith(".yaml"))


def load_mapping(name_or_path: str | Path = DEFAULT_MAPPING) -> TagMapping:
    """Load a mapping by package name (``paper1``) or from a YAML file path.

    Args:
        name_or_path: A shipped mapping name, or a path to a user YAML file
            (``name``, optional ``description``, ``quadrants: {quadrant: [tags]}``).

    Raises:
        InputError: The file is unreadable or invalid (names the file).
        ParamsError: Neither a shipped name nor an existing file (``relabel.mapping``).
    """
    text_name = str(name_or_path)
    path = Path(text_name)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise InputError(text_name, "mapping file not found")
        source, text = str(path), None
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(source, f"cannot read mapping: {exc}") from exc
    else:
        resource = _mapping_dir() / f"{text_name}.yaml"
        if not resource.is_file():
            raise ParamsError(
                "relabel.mapping",
                f"no mapping named {text_name!r} (shipped: {', '.join(available_mappings())}); "
                "give a name or a path to a .yaml file",
            )
        source, text = f"mgdata/labels/mappings/{text_name}.yaml", resource.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(source, f"invalid YAML: {exc}") from None
    return TagMapping.from_dict(data, source=source)


# ---------------------------------------------------------------- relabelling


@dataclass(frozen=True)
class RelabelResult:
    """Outcome of :func:`relabel_tracks`.

    Attributes:
        table: One row per labelled track, input order; columns :data:`COLUMNS`
            (``split``/``duration_s`` null when unknown).
        mapping: Name of the mapping used.
        n_input: Tracks given (after duplicates were removed).
        dropped_ids: Tracks with no mapped tag (left out).
        conflict_ids: Labelled tracks whose mapped tags span several quadrants.
        duplicate_ids: Track ids seen again after their first row (later rows ignored).
        unknown_tags: Occurrences of mood/theme tags outside the MTG-Jamendo vocabulary.
        other_category_tags: Occurrences of tags of other categories (``genre---rock``), not mapped.
    """

    table: pl.DataFrame
    mapping: str
    n_input: int
    dropped_ids: tuple[str, ...] = ()
    conflict_ids: tuple[str, ...] = ()
    duplicate_ids: tuple[str, ...] = ()
    unknown_tags: dict[str, int] = field(default_factory=dict)
    other_category_tags: dict[str, int] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        """Number of tracks left out (no mapped tag)."""
        return len(self.dropped_ids)

    @property
    def conflicts(self) -> int:
        """Number of labelled tracks with tags in several quadrants."""
        return len(self.conflict_ids)

    def quadrant_counts(self) -> dict[str, int]:
        """Tracks per quadrant, in :data:`QUADRANTS` order (zeros included)."""
        counts = Counter(self.table["quadrant"].to_list())
        return {q: counts.get(q, 0) for q in QUADRANTS}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (counters and per-quadrant counts, not the table)."""
        return {
            "mapping": self.mapping,
            "tracks_in": self.n_input,
            "tracks_labelled": self.table.height,
            "tracks_dropped": self.dropped,
            "tracks_conflicting": self.conflicts,
            "duplicate_tracks": len(self.duplicate_ids),
            "quadrant_counts": self.quadrant_counts(),
            "unknown_tags": dict(self.unknown_tags),
            "unknown_tag_occurrences": sum(self.unknown_tags.values()),
            "other_category_tags": dict(self.other_category_tags),
        }


def _as_record(track: Any) -> tuple[str, list[str], str | None, float | None]:
    """(track_id, tags, split, duration_s) from a JamendoTrack or a row mapping."""
    if isinstance(track, JamendoTrack):
        return track.track_id, list(track.tags), track.split, track.duration_s
    if isinstance(track, Mapping):
        tags = track.get("tags")
        duration = track.get("duration_s")
        return (
            str(track["track_id"]),
            [] if tags is None else [str(t) for t in tags],
            track.get("split"),
            None if duration is None else float(duration),
        )
    raise TypeError(f"expected a JamendoTrack or a mapping with track_id and tags, got {type(track).__name__}")


def _label_of(
    tags: Iterable[str],
    mapping: TagMapping,
    vocabulary: frozenset[str],
    unknown: Counter[str],
    other: Counter[str],
) -> tuple[str | None, str | None, set[str]]:
    """One track's first mapped tag, its quadrant and every quadrant its tags map to; counts the tags that
    are unparseable or not in ``vocabulary`` (``unknown``) and of another category (``other``)."""
    first_tag, first_quadrant, quadrants = None, None, set()
    for tag in tags:
        try:
            category, name = split_tag(tag)
        except ValueError:
            unknown[str(tag)] += 1
            continue
        if category.lower() != MOODTHEME:
            other[normalize_tag(tag)] += 1
        elif name.lower() not in vocabulary:
            unknown[name] += 1
        quadrant = mapping.quadrant_of(tag)
        if quadrant is None:
            continue
        quadrants.add(quadrant)
        if first_quadrant is None:
            first_tag, first_quadrant = name, quadrant
    return first_tag, first_quadrant, quadrants


def relabel_tracks(
    tracks: Iterable[JamendoTrack | Mapping[str, Any]],
    *,
    mapping: TagMapping | str | Path = DEFAULT_MAPPING,
    vocabulary: frozenset[str] = MOODTHEME_TAGS,
    report: StageReport | None = None,
) -> RelabelResult:
    """Give each track one quadrant from its tags.

    Args:
        tracks: :class:`JamendoTrack` records or mappings with ``track_id``,
            ``tags`` (prefixed or bare, row order) and optionally ``split`` and
            ``duration_s`` (e.g. corpus manifest rows).
        mapping: A :class:`TagMapping`, or a name/path for :func:`load_mapping`.
        vocabulary: Known mood/theme tag names; others are counted as unknown.
        report: If given, duplicate track ids are recorded there as skips.

    Returns:
        The labelled table and the counters.
    """
    if not isinstance(mapping, TagMapping):
        mapping = load_mapping(mapping)
    rows: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    seen: set[str] = set()
    dropped, conflicts, duplicates = [], [], []
    unknown: Counter[str] = Counter()
    other: Counter[str] = Counter()
    n_input = 0
    for item in tracks:
        track_id, tags, split, duration_s = _as_record(item)
        if track_id in seen:
            duplicates.append(track_id)
            if report is not None:
                report.skip(track_id, "duplicate track id: only its first row is labelled")
            continue
        seen.add(track_id)
        n_input += 1
        first_tag, first_quadrant, quadrants = _label_of(tags, mapping, vocabulary, unknown, other)
        if first_quadrant is None:
            # Expected filtering, not bad input: counted (and ids kept), not listed as skips.
            dropped.append(track_id)
            continue
        if len(quadrants) > 1:
            conflicts.append(track_id)
        for column, value in zip(COLUMNS, (track_id, first_quadrant, split, duration_s, first_tag)):
            rows[column].append(value)
    return RelabelResult(
        table=pl.DataFrame(rows, schema=SCHEMA),
        mapping=mapping.name,
        n_input=n_input,
        dropped_ids=tuple(dropped),
        conflict_ids=tuple(conflicts),
        duplicate_ids=tuple(duplicates),
        unknown_tags=dict(sorted(unknown.items())),
        other_category_tags=dict(sorted(other.items())),
    )


def write_quadrants(result: RelabelResult, path: str | Path) -> Path:
    """Write the labelled table as parquet (deterministic bytes for equal tables)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    result.table.write_parquet(path, statistics=False)
    return path


# ---------------------------------------------------------------- stage


def read_manifest_tracks(manifest: str | Path, *, tag_column: str = "mood_tags") -> list[dict[str, Any]]:
    """Rows of the corpus manifest as relabel records, sorted by track id.

    Args:
        manifest: ``data/corpus/manifest.parquet``.
        tag_column: ``mood_tags`` (mood tags only) or ``tags`` (style + mood tags).

    Raises:
        InputError: The file is missing/unreadable or lacks a needed column.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise InputError(str(manifest), "corpus manifest not found (run the corpus stage first)")
    try:
        df = pl.read_parquet(manifest)
    except Exception as exc:  # polars raises several error types for a bad file
        raise InputError(str(manifest), f"unreadable parquet: {exc}") from None
    missing = [c for c in ("track_id", "split", "duration_s", tag_column) if c not in df.columns]
    if missing:
        raise InputError(str(manifest), f"missing column(s) {', '.join(missing)}")
    df = df.select("track_id", "split", "duration_s", pl.col(tag_column).alias("tags")).sort("track_id")
    return df.to_dicts()


JAMENDO_LICENCE = (
    "MTG-Jamendo metadata: CC BY-NC-SA 4.0 (Bogdanov et al., ICML 2019 ML4MD); audio under per-track "
    "Creative Commons licences"
)


def relabel_provenance(name: str, manifest: str | Path, cfg: RelabelConfig, mapping: TagMapping) -> Provenance:
    """Provenance of one relabelled table (written beside it as ``*.provenance.json``).

    The corpus table inherits source version and licence from the corpus artifact
    (``mix/artifact.json`` beside the manifest) when it exists; relabelling itself
    draws no random numbers, so the seed is 0.
    """
    params_hash = fingerprint(cfg, mapping.name, {q: list(t) for q, t in sorted(mapping.quadrants.items())})
    if name == "jamendo":
        return Provenance(
            builder="relabel",
            source=f"mtg-jamendo autotagging_{cfg.jamendo.subset} split-{cfg.jamendo.split_index}",
            source_version=str(cfg.jamendo.metadata_dir),
            licence=JAMENDO_LICENCE,
            seed=0,
            params_hash=params_hash,
            extra={"mapping": mapping.name},
        )
    upstream = Path(manifest).parent / "mix" / "artifact.json"
    if upstream.exists():
        up = json.loads(upstream.read_text())
        version, licence = up["fingerprint"], up["provenance"]["licence"]
    else:
        version, licence = sha256_file(manifest), "as the corpus manifest's source"
    return Provenance(
        builder="relabel",
        source=f"corpus manifest {manifest}",
        source_version=version,
        licence=licence,
        seed=0,
        params_hash=params_hash,
        extra={"mapping": mapping.name},
    )


def build_relabel(
    manifest: str | Path | None,
    out_dir: str | Path | None,
    *,
    cfg: RelabelConfig,
    report: StageReport | None = None,
) -> dict[str, RelabelResult]:
    """Relabel the chorale corpus and, if configured, MTG-Jamendo metadata.

    Args:
        manifest: Corpus manifest parquet; None relabels MTG-Jamendo only (a pipeline without the corpus).
        out_dir: Where ``corpus_quadrants.parquet`` (and ``jamendo_quadrants.parquet``)
            go; None writes nothing.
        cfg: Section ``relabel``.
        report: Receives skips (dropped tracks, malformed rows) and per-source summaries.

    Returns:
        ``{"corpus": result}`` plus ``"jamendo"`` when ``cfg.jamendo.metadata_dir`` is set.
        Each written parquet gets a ``*.provenance.json`` sidecar (source, version,
        licence, params hash).
    """
    mapping = load_mapping(cfg.mapping)
    sources: dict[str, Iterable[Any]] = {}
    if manifest is not None:
        sources["corpus"] = read_manifest_tracks(manifest, tag_column=cfg.corpus_tag_column)
    if cfg.jamendo.metadata_dir is not None:
        sources["jamendo"] = read_split(
            cfg.jamendo.metadata_dir,
            split_index=cfg.jamendo.split_index,
            subset=cfg.jamendo.subset,
            strict=cfg.jamendo.fail_on_error,
            report=report,
        )
    results = {}
    for name, tracks in sources.items():
        result = relabel_tracks(tracks, mapping=mapping, report=report)
        results[name] = result
        if out_dir is not None:
            path = write_quadrants(result, Path(out_dir) / f"{name}_quadrants.parquet")
            prov = relabel_provenance(name, manifest, cfg, mapping)
            path.with_suffix(".provenance.json").write_text(json.dumps(prov.to_dict(), indent=1, sort_keys=True) + "\n")
        log.info("relabel %s: %s", name, result.quadrant_counts())
    return results
