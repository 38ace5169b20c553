"""Params section ``relabel``: which mapping, which corpus tags, optional MTG-Jamendo metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mgdata.config import check
from mgdata.sources.jamendo import JamendoConfig


@dataclass(frozen=True)
class RelabelConfig:
    """Section ``relabel``.

    Attributes:
        mapping: Shipped mapping name (``paper1``) or path to a mapping YAML.
        corpus_tag_column: Manifest column whose tags are relabelled
            (``mood_tags``: mood tags only; ``tags``: style + mood tags).
        jamendo: MTG-Jamendo source params; set ``jamendo.metadata_dir`` to also
            relabel the official split (metadata only, no audio needed).
    """

    mapping: str = "paper1"
    corpus_tag_column: Literal["mood_tags", "tags"] = "mood_tags"
    jamendo: JamendoConfig = field(default_factory=JamendoConfig)

    def __post_init__(self) -> None:
        check(bool(self.mapping.strip()), "mapping", "expected a mapping name (e.g. paper1) or a .yaml path")
