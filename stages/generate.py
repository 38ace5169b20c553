"""DVC stage ``generate``: a per-class budget of generated audio from one generator.

Reads the corpus mix artifact and the corpus quadrant labels, draws training
sources/primes per class (``generate`` params), generates the clips and writes
``data/generate/<generator>/`` (shards of ``flac`` + ``json`` with provenance,
split ``train``) and ``metrics/generate/<generator>.json`` (per class samples,
seconds, sources used; totals; budget; retries; skips). Resumable: rerun after
an interruption and only the missing samples are generated.
"""

import sys

from mgdata.pipeline import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("generate", doc=__doc__))
