"""Generated audio (issue 4): generators, the per-class budget policy and the builder.

Generators (``resynth`` offline, ``musicgen`` via transformers) implement
:class:`mgdata.generate.base.Generator`; :func:`mgdata.generate.build.build_generated`
draws training clips per class, generates a fixed budget of audio per class and
writes it as sharded WebDataset artifact with per-sample provenance.
"""

from mgdata.generate.base import GENERATORS, Generator, GenRequest, get_generator

__all__ = ["GENERATORS", "GenRequest", "Generator", "get_generator"]
