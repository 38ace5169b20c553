"""DVC stage ``stems``: multitrack tracks -> aligned windows -> ordered stem pairs (A, B).

Reads the source chosen by ``stems.source`` in params: ``corpus`` (default, the
``data/corpus/stems`` artifact) or ``moisesdb`` (a MoisesDB download at
``stems.moisesdb_root``). Writes the ``data/stems`` artifact (members ``a.flac``,
``b.flac``, ``json``) and ``metrics/stems.json`` (windows and pairs per split,
silent stem windows dropped, excluded stem types, skipped tracks with reasons).
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("stems", doc=__doc__))
