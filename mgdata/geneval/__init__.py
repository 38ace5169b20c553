"""Generator evaluation: learning curves with positive and negative controls, and a generator leaderboard.

Does generated audio help a classifier when real data is scarce, and could this setup tell if it did? For nested,
stratified fractions of the real training tracks and generated-to-real ratios, a probe trained on the real subset
is compared, seed by seed and on the same real test tracks, with one trained on the subset plus generated rows of
each generator and of two controls: ``oracle`` (real tracks held out of every subset: data known to help) and
``oracle_shuffled`` (the same clips with their labels permuted: real music without label information). Gains
come with a paired permutation test over test tracks, a bootstrap interval and the minimum detectable effect.

Modules: :mod:`~mgdata.geneval.config` (section ``geneval``), :mod:`~mgdata.geneval.sources` (pool, subsets,
controls, draws), :mod:`~mgdata.geneval.stats` (paired tests over tracks), :mod:`~mgdata.geneval.worker` (one probe
fit), :mod:`~mgdata.geneval.build` (plan -> run -> summarise), :mod:`~mgdata.geneval.report` (leaderboard),
:mod:`~mgdata.geneval.stage` (pipeline glue).
"""
