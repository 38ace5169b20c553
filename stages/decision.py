"""DVC stage ``decision`` (one matrix item): token configuration -> decision model, evaluation, renders.

Reads ``TOKENS_ROOT/<name>`` with ``<name> = {prefix}s{segment_s}-k{k}`` (either token layout; prefix
e.g. ``chroma_stft-``), trains ``decision.trials`` models (``decision.arch``: the aligned default or the paper's
encoder-decoder Transformer; seeds ``decision.seed + i``, in parallel on the executor) on every ordered pair of the training split (checkpoint per epoch in
``OUT_ROOT/<name>/last.pt``: a killed run resumes), evaluates each seed's free-running generation on the
test split against the baselines (per-track TPP, one-sided Mann-Whitney and permutation tests over tracks),
writes ``METRICS_DIR/<name>.json`` (numbers only: means over seeds with ``_std``, the largest p over seeds),
plots under ``PLOTS_DIR/<name>/`` and renders a few test pairs as FLAC into ``OUT_ROOT/<name>/renders/``
(plots, renders and the saved model are the first seed's).
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("decision", doc=__doc__))
