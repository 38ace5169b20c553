"""Provenance records: every artifact says where its data came from.

An :class:`~mgdata.store.ArtifactWriter` cannot be opened without a
:class:`Provenance`, and a record with an empty field cannot be built, so no
artifact exists without its source, version, seed and licence.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mgdata import __version__
from mgdata.errors import MgdataError

REQUIRED = ("builder", "source", "source_version", "licence", "params_hash")


@dataclass(frozen=True)
class Provenance:
    """Where an artifact came from.

    Attributes:
        builder: The mgdata builder that wrote it (e.g. ``"corpus"``).
        source: The upstream data (e.g. ``"music21-corpus"`` or an artifact path).
        source_version: Version of that data or package.
        licence: Licence of the data (and of anything rendered into it).
        seed: The params seed the builder used.
        params_hash: Fingerprint of the params (and upstream artifacts) used.
        mgdata_version: Version of mgdata that wrote it.
        extra: Builder-specific details (JSON-safe).
    """

    builder: str
    source: str
    source_version: str
    licence: str
    seed: int
    params_hash: str
    mgdata_version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for name in REQUIRED:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise MgdataError(f"provenance.{name} must be a non-empty string, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise MgdataError(f"provenance.seed must be an integer, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)

    def sample_dict(self) -> dict[str, Any]:
        """The short block every sample's json carries."""
        return {
            "builder": self.builder,
            "source": self.source,
            "source_version": self.source_version,
            "licence": self.licence,
            "seed": self.seed,
            "params_hash": self.params_hash,
            "mgdata_version": self.mgdata_version,
        }
