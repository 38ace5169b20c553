"""Emotion labels: tag -> arousal/valence quadrant relabelling, its statistics, and the label fields records carry."""

from mgdata.labels.fields import LABEL_FIELDS, TrackLabels, label_fields, quadrant_of_tags, quadrants_of
from mgdata.labels.relabel import (
    QUADRANTS,
    RelabelResult,
    TagMapping,
    available_mappings,
    build_relabel,
    load_mapping,
    relabel_tracks,
)

__all__ = [
    "LABEL_FIELDS",
    "QUADRANTS",
    "RelabelResult",
    "TagMapping",
    "TrackLabels",
    "available_mappings",
    "build_relabel",
    "label_fields",
    "load_mapping",
    "quadrant_of_tags",
    "quadrants_of",
    "relabel_tracks",
]
