"""Classifier experiments on embedding tables: MediaEval 2019 metrics, torch probes, experiments, predict.

Modules (imported on use, so ``mgdata.classify.metrics`` never imports torch):

* :mod:`mgdata.classify.metrics` -- MediaEval 2019 metrics, thresholds chosen on validation.
* :mod:`mgdata.classify.config` -- params section ``classify``.
* :mod:`mgdata.classify.probe` -- SLP/MLP probes (single- and multi-label), save/load.
* :mod:`mgdata.classify.experiments` -- baseline, augmented, generated-classified, synthetic-only,
  robustness, FAD, permutation test, result tables.
* :mod:`mgdata.classify.predict` -- classify audio files with a saved probe.
* :mod:`mgdata.classify.cli` -- ``mgdata metrics`` and ``mgdata classify predict``.
"""
