"""DVC stage ``classify@<task>-<embedder>``: does generated audio help a classifier?

Trains probes on the clean real embeddings and runs, for one label task (quadrant, mood, style) and one
embedder: the baseline (``classify.trials`` seeds, a permutation p-value per seed, majority/chance references),
and per generator the augmented, generated-classified (source track in training / unseen),
synthetic-only and Frechet-distance experiments, then robustness on each deformation scenario.
Writes ``data/classify/<task>-<embedder>/`` (probe folders: ``baseline/model`` is what
``mgdata classify predict`` takes; confusion CSV + PNG; ``results.md`` in the seed's Table III layout),
``plots/classify/<task>-<embedder>.md``, the baseline's track-level test confusion matrix
``plots/classify/confusion/<task>-<embedder>.csv`` (``actual``, ``predicted``: ``dvc plots show`` draws it) and
``metrics/classify/<task>-<embedder>.json`` (numbers only: means over seeds with ``_std``).
All figures are track-level on the real test split; thresholds are chosen on validation.
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("classify", doc=__doc__))
