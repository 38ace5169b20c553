"""Emotion labels: tag -> arousal/valence quadrant relabelling and its statistics."""

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
    "QUADRANTS",
    "RelabelResult",
    "TagMapping",
    "available_mappings",
    "build_relabel",
    "load_mapping",
    "relabel_tracks",
]
