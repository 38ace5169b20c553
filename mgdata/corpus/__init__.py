"""The chorale corpus: real multi-part scores from music21's bundled corpus, rendered offline.

Modules: :mod:`.scores` (select and parse music21 scores, leave out unpitched
parts), :mod:`.render` (tinysoundfont + TimGM6mb.sf2 stems and mix),
:mod:`.moods` (the designed arousal x mode emotion rule), :mod:`.records`
(track plan, mix and stem jsons, result), :mod:`.worker` (the parse and render
tasks), :mod:`.build` (:func:`build_corpus`: plan -> run -> summarise),
:mod:`.stage` (pipeline glue), :mod:`.config` (params section ``corpus``).
Splits: :mod:`mgdata.splits`.
"""

from mgdata.corpus.build import CorpusResult, StemRecord, TrackRecord, build_corpus, plan_records
from mgdata.corpus.config import CorpusConfig

__all__ = ["CorpusConfig", "CorpusResult", "StemRecord", "TrackRecord", "build_corpus", "plan_records"]
