"""mgdata: reproducible, sharded datasets for music machine learning.

DVC stages (see ``dvc.yaml``) call the builders in this package to produce
versioned WebDataset artifacts: the offline chorale corpus, emotion relabellings,
stem pairs, generated audio, embeddings and token sequences.
"""

__version__ = "0.1.0"

# Before anything loads numpy or torch: pin the SIMD kernels they dispatch to, so outputs are the same bytes on
# every x86-64 machine (see mgdata.dispatch).
from mgdata.dispatch import pin as _pin_dispatch  # noqa: E402

_pin_dispatch()
