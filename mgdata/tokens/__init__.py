"""Token sequences per stem-window: frame encoder -> segment-mean condenser -> k-means.

* :mod:`mgdata.tokens.frames`: frame encoders (STFT chroma by default, CQT chroma, log-mel,
  or a registry embedder);
* :mod:`mgdata.tokens.condense`: mean of the frames in each uniform segment;
* :mod:`mgdata.tokens.vq`: MiniBatchKMeans codebook (training split only) and encoding;
* :mod:`mgdata.tokens.metrics`: usage, entropy, top-symbol share, run length;
* :mod:`mgdata.tokens.records`: the sample json, the build result and the artifact readers;
* :mod:`mgdata.tokens.worker`: the per-track task (each stem encoded once per run of windows);
* :mod:`mgdata.tokens.build`: the ``tokens`` builder, plan -> run -> summarise (one artifact per
  encoder x segment x k); :mod:`mgdata.tokens.stage`: its pipeline glue;
* :mod:`mgdata.tokens.summary`: all configurations in one ``metrics/tokens.json``.
"""

from mgdata.tokens.build import (
    CODEBOOK_FILE,
    TokenRecord,
    TokensResult,
    build_tokens,
    pair_mutual_information,
    read_token_pairs,
    read_tokens,
)
from mgdata.tokens.condense import condense, n_segments
from mgdata.tokens.config import TokensConfig, config_name
from mgdata.tokens.metrics import TokenStats, run_lengths, token_stats
from mgdata.tokens.vq import codebook_sha256, encode, fit_codebook, load_codebook, save_codebook

__all__ = [
    "CODEBOOK_FILE",
    "TokenRecord",
    "TokenStats",
    "TokensConfig",
    "TokensResult",
    "build_tokens",
    "codebook_sha256",
    "condense",
    "config_name",
    "encode",
    "fit_codebook",
    "load_codebook",
    "n_segments",
    "pair_mutual_information",
    "read_token_pairs",
    "read_tokens",
    "run_lengths",
    "save_codebook",
    "token_stats",
]
