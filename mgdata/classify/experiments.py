"""Classifier experiments on embedding tables (the seed papers' protocols): the names in one place.

The experiments live one per module; this module re-exports them (and the tables, task rows and statistics
they share) so ``from mgdata.classify.experiments import run_baseline`` keeps working. Each experiment returns
a JSON-safe dict whose ``summary`` holds numbers only:

* :func:`run_baseline` (:mod:`~mgdata.classify.baseline`) -- real train -> real test, ``trials`` seeds,
  mean/std of every metric, beside a majority and a chance baseline and a permutation p-value (labels
  permuted over test tracks, model fixed).
* :func:`run_augmented` (:mod:`~mgdata.classify.augment`) -- real train + generated samples of train source
  tracks (``augment_fraction`` of the training rows, equal per class); deltas vs the baseline.
* :func:`run_generated_classified` (:mod:`~mgdata.classify.generated`) -- a real-data classifier labels
  generated samples; normalised confusion (rows = inherited label) with the source track in training, and
  with a classifier that never saw the source tracks.
* :func:`run_synthetic_only` (:mod:`~mgdata.classify.synthetic`) -- trained on generated samples only (one
  dense layer of 128 ReLU), tested on real test.
* :func:`run_robustness` (:mod:`~mgdata.classify.robustness`) -- probes trained on clean embeddings,
  evaluated per deformation scenario.
* :func:`run_fad` (:mod:`~mgdata.classify.fd`) -- Frechet distance between generated and real-train
  embeddings.

Shared pieces: :mod:`~mgdata.classify.tables` (reading ``{split}.npy`` + ``.parquet``),
:mod:`~mgdata.classify.data` (a task's rows, track-level aggregation), :mod:`~mgdata.classify.fitting` (fit,
evaluate, references, permutation tests) and :mod:`~mgdata.classify.stats` (mean/std over seeds, seed
agreement, rank AUC).
"""

from __future__ import annotations

from mgdata.classify.augment import draw_augmentation, run_augmented
from mgdata.classify.baseline import run_baseline
from mgdata.classify.data import (
    LABEL_COLUMNS,
    Data,
    TaskData,
    generated_data,
    prepare_task,
    task_classes,
    task_data,
    track_level,
)
from mgdata.classify.fd import frechet_distance, run_fad
from mgdata.classify.fitting import (
    evaluate,
    fit_probe,
    permutation_pvalue,
    permutation_trials,
    reference_baselines,
    track_confusion,
)
from mgdata.classify.generated import run_generated_classified
from mgdata.classify.robustness import run_robustness
from mgdata.classify.stats import ALPHA, macro_auc_permutations, seed_agreement
from mgdata.classify.synthetic import run_synthetic_only
from mgdata.classify.tables import EmbTable, concat_tables, load_artifact, load_table

__all__ = [
    "ALPHA",
    "Data",
    "EmbTable",
    "LABEL_COLUMNS",
    "TaskData",
    "concat_tables",
    "draw_augmentation",
    "evaluate",
    "fit_probe",
    "frechet_distance",
    "generated_data",
    "load_artifact",
    "load_table",
    "macro_auc_permutations",
    "permutation_pvalue",
    "permutation_trials",
    "prepare_task",
    "reference_baselines",
    "run_augmented",
    "run_baseline",
    "run_fad",
    "run_generated_classified",
    "run_robustness",
    "run_synthetic_only",
    "seed_agreement",
    "task_classes",
    "task_data",
    "track_confusion",
    "track_level",
]
