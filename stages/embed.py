"""DVC stage ``embed``: embeddings of one input artifact by one embedder under one deformation scenario.

One item of the ``embed`` matrix (embedder x artifact x scenario, lists in params
``embed``). Reads the input artifact (samples with ``flac`` + ``json``), writes
``data/embed/<embedder>/<artifact>/<scenario>/`` (shards of ``npy`` + ``json``, plus
``{split}.npy`` matrices and ``{split}.parquet`` keys/labels) and
``metrics/embed/<embedder>-<artifact>-<scenario>.json`` (samples in, embedded per
split, skipped with reasons, padded short clips, training samples not deformed).
Deformation scenarios cover the evaluation splits only (``embed.eval_splits``).
Resumable: a rerun after an interruption embeds only the missing samples.
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("embed", doc=__doc__))
