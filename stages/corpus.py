"""DVC stage ``corpus``: render the offline chorale corpus from music21's bundled scores.

Reads params sections ``corpus`` and ``shards``; writes ``data/corpus/mix/``,
``data/corpus/stems/`` (WebDataset shards) and ``data/corpus/manifest.parquet``,
and ``metrics/corpus.json`` (tracks rendered, skips by reason, seconds per split,
tag counts). Rerunning after a crash keeps the verified shards and
renders only the missing tracks.
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("corpus", doc=__doc__))
