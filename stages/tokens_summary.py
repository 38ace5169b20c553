"""DVC stage ``tokens_summary``: every token configuration's statistics in one table.

Reads ``stage_reports/tokens/<encoder>-s<segment_s>-k<k>.json`` for each configuration
of the current grid (``tokens.segment_s`` x ``tokens.k`` in params) and writes one row
per configuration (usage, entropy, top-symbol share, mean run length, counts, per split)
to ``plots/tokens/stats.csv``; ``metrics/tokens.json`` keeps the count of configurations.
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("tokens_summary", doc=__doc__))
