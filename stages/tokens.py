"""DVC stage ``tokens`` (one matrix item): stem pairs -> token sequences for one (segment_s, K).

Encodes every distinct stem of the ``data/stems`` artifact into frames (CQT
chroma by default, see ``tokens.encoder``), averages them over uniform segments
of ``--segment-s`` seconds, fits a ``--k``-symbol MiniBatchKMeans codebook on the
training split only and writes ``data/tokens/s{segment_s}-k{k}/`` (shards with
``a_tokens.npy``, ``b_tokens.npy``, ``json``; ``codebook.npy``) and
``metrics/tokens/s{segment_s}-k{k}.json`` (codebook usage, entropy, top-symbol
share, mean run length; overall and per split; counts and skipped pairs).
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("tokens", doc=__doc__))
