"""Embeddings of audio artifacts: an embedder registry (``logmel``, ``hf``), windowing and
aggregation, deformation scenarios, and the builder of the ``embed`` stage.

Heavy modules (librosa, torch, transformers) are imported on first use, so
``from mgdata.embed import get_embedder`` is cheap.
"""

from mgdata.embed.base import EMBEDDERS, ClipFrames, Embedder, aggregate, embed_clip, get_embedder

__all__ = ["EMBEDDERS", "ClipFrames", "Embedder", "aggregate", "embed_clip", "get_embedder"]
