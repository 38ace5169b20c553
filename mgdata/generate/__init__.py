"""Generated audio (issue 4): generators, the per-class budget policy and the builder.

Generators (``resynth`` offline, ``musicgen`` via transformers) implement
:class:`mgdata.generate.base.Generator`; :func:`mgdata.generate.build.build_generated`
draws training clips per class, generates a fixed budget of audio per class and
writes it as sharded WebDataset artifact with per-sample provenance.

The builder's files by concern: :mod:`~mgdata.generate.inputs` (labels table, eligible
tracks, clips), :mod:`~mgdata.generate.worker` (requests, retries, the executor task),
:mod:`~mgdata.generate.assemble` (a sample's json and provenance),
:mod:`~mgdata.generate.records` (the typed records), :mod:`~mgdata.generate.build`
(plan -> run -> summarise), :mod:`~mgdata.generate.regenerate` (one sample from its json)
and :mod:`~mgdata.generate.stage` (the DVC stage).
"""

from mgdata.generate.base import GENERATORS, Generator, GenRequest, get_generator

__all__ = ["GENERATORS", "GenRequest", "Generator", "get_generator"]
