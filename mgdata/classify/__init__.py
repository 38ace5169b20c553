"""Classifier experiments on embedding tables: MediaEval 2019 metrics, torch probes, experiments, predict.

Modules (imported on use, so ``mgdata.classify.metrics`` never imports torch):

* :mod:`mgdata.classify.metrics` -- MediaEval 2019 metrics, thresholds chosen on validation.
* :mod:`mgdata.classify.config` -- params section ``classify``.
* :mod:`mgdata.classify.probe` -- SLP/MLP probes (single- and multi-label), save/load.
* :mod:`mgdata.classify.tables`, :mod:`~mgdata.classify.data` -- embedding tables and a task's rows.
* :mod:`mgdata.classify.stats`, :mod:`~mgdata.classify.fitting` -- statistics over seeds and tracks; fit and
  score one probe (references, permutation tests).
* one module per experiment: :mod:`~mgdata.classify.baseline`, :mod:`~mgdata.classify.augment`,
  :mod:`~mgdata.classify.generated`, :mod:`~mgdata.classify.synthetic`, :mod:`~mgdata.classify.robustness`,
  :mod:`~mgdata.classify.fd` (FAD); :mod:`mgdata.classify.experiments` re-exports them all.
* :mod:`mgdata.classify.report` -- result tables, confusion files and plots.
* :mod:`mgdata.classify.build` -- the builder (plan -> run -> summarise), :mod:`mgdata.classify.records` its
  result; :mod:`mgdata.classify.stage` -- the pipeline glue of stage ``classify``.
* :mod:`mgdata.classify.predict` -- classify audio files with a saved probe.
* :mod:`mgdata.classify.cli` -- ``mgdata metrics`` and ``mgdata classify predict``.
"""
