"""DVC stage ``relabel``: mood tags -> arousal/valence quadrants for the corpus (and MTG-Jamendo).

Reads ``data/corpus/manifest.parquet`` and, when ``relabel.jamendo.metadata_dir``
is set, the official MTG-Jamendo split files; writes
``data/relabel/{corpus,jamendo}_quadrants.parquet``, ``metrics/relabel.json``
(tracks and hours per split x quadrant, dropped, conflicts, unknown tags) and
``plots/relabel/hours_per_class.png``.
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("relabel", doc=__doc__))
