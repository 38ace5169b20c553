"""Stem-pair windows: cut multitrack recordings into aligned windows and emit
every ordered pair of distinct, non-silent, non-excluded stems (A, B).

Modules: :mod:`~mgdata.stems.config` (params section ``stems``),
:mod:`~mgdata.stems.windows` (window arithmetic), :mod:`~mgdata.stems.pairs`
(stem selection and pairing) and :mod:`~mgdata.stems.build` (the builder that
writes the ``data/stems`` artifact).
"""
