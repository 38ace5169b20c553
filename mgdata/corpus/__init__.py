"""The chorale corpus: real multi-part scores from music21's bundled corpus, rendered offline.

Modules: :mod:`.scores` (select and parse music21 scores), :mod:`.render`
(tinysoundfont + TimGM6mb.sf2 stems and mix), :mod:`.moods` (the documented
mode x tempo mood rule), :mod:`.build` (:func:`build_corpus`, the ``corpus``
stage), :mod:`.config` (params section ``corpus``).
"""

from mgdata.corpus.build import CorpusResult, TrackRecord, build_corpus
from mgdata.corpus.config import CorpusConfig

__all__ = ["CorpusConfig", "CorpusResult", "TrackRecord", "build_corpus"]
