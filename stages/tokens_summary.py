"""DVC stage ``tokens_summary``: every token configuration's metrics in one ``metrics/tokens.json``.

Reads ``metrics/tokens/s{segment_s}-k{k}.json`` for each configuration of the
current grid (``tokens.segment_s`` x ``tokens.k`` in params) and writes one entry
per configuration (usage, entropy, top-symbol share, mean run length, counts,
per split).
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("tokens_summary", doc=__doc__))
