"""DVC stage ``geneval@<task>``: could this setup tell a useful generator from a useless one?

Learning curves over nested fractions of the real training tracks and generated-to-real ratios, for every
generator of ``geneval.generators`` and two controls (``oracle``: held-out real tracks; ``oracle_shuffled``: the
same clips with permuted labels), with paired tests over the real test tracks, bootstrap intervals and the
minimum detectable effect; plus synthetic-only, label validity, novelty and FD per source (the leaderboard).
Writes ``data/geneval/<task>-<embedder>/``, ``plots/geneval/<task>-<embedder>.{csv,md}`` and
``metrics/geneval/<task>-<embedder>.json``.
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("geneval", doc=__doc__))
