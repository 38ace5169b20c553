"""mgdata: reproducible, sharded datasets for music machine learning.

DVC stages (see ``dvc.yaml``) call the builders in this package to produce
versioned WebDataset artifacts: the offline chorale corpus, emotion relabellings,
stem pairs, generated audio, embeddings and token sequences.
"""

__version__ = "0.1.0"
