"""The embedder registry: name -> ``"module:Class"``, imported on first use.

Its own module so that :mod:`mgdata.embed.config` (which validates ``embed.embedders``) and
:mod:`mgdata.embed.base` (which builds embedders from a config) both import it at the top, and neither imports
the other lazily to dodge a cycle.
"""

from __future__ import annotations

from mgdata.registry import Registry

#: Embedder name -> ``"module:Class"``; the class has ``from_config(cfg: EmbedConfig)``.
EMBEDDERS = Registry(
    "embedder",
    "embed.embedders",
    {
        "logmel": "mgdata.embed.logmel:LogMelEmbedder",
        "hf": "mgdata.embed.hf:HFEmbedder",
        "musicfeat": "mgdata.embed.musicfeat:MusicFeatEmbedder",
        "musicnn": "mgdata.embed.musicnn:MusicnnEmbedder",
    },
)

__all__ = ["EMBEDDERS"]
