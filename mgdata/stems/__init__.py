"""Stems stored once: cut multitrack recordings into aligned windows, store every stem-window once
and index the ordered pairs (A, B) of distinct, non-silent, pitched, non-duplicate stems.

Modules: :mod:`~mgdata.stems.config` (params section ``stems``),
:mod:`~mgdata.stems.windows` (window arithmetic), :mod:`~mgdata.stems.pairs`
(stem selection and pairing), :mod:`~mgdata.stems.records` (the sample json,
the pair-index rows, the result), :mod:`~mgdata.stems.worker` (the per-track task),
:mod:`~mgdata.stems.build` (the builder that writes the ``data/stems`` artifact) and
:mod:`~mgdata.stems.stage` (the DVC stage and the source it opens).
"""
