"""Vector quantisation: a k-means codebook over segment vectors, and encoding to tokens.

The codebook is fit with scikit-learn's ``MiniBatchKMeans`` (seeded) on the
**training split's** segment vectors only; the caller decides which vectors those
are (:func:`mgdata.tokens.build.build_tokens` passes training stems only), so no
validation/test audio shapes the alphabet.

The fit is driven here, batch by batch (``partial_fit``), rather than by
``MiniBatchKMeans.fit``: scikit-learn 1.9's ``fit`` draws every mini-batch with
``RandomState.choice(n, p=weights)``, which is O(n) per step, so its cost grows
with the square of the number of segments (measured: x3.0 per doubling at 80k
segments). Here each step draws ``batch_size`` indices from a seeded
``numpy.random.Generator`` (O(batch)), the number of steps is fixed
(``max_iter * n / batch_size``, no early stopping), so the cost is linear in the
number of segments and the result depends only on the data and the seed.
Initialisation is k-means++ (``sklearn.cluster.kmeans_plusplus``) on a seeded
subsample, best of ``n_init`` by inertia on a held-aside subsample, as
``MiniBatchKMeans`` does; low-count centres are re-seeded by its usual
reassignment rule. Everything runs on one thread (``threadpoolctl``): the
k-means++ distances go through BLAS, whose summation order can change with the
thread count, so one thread makes the codebook identical on any machine, and on
small fits OpenMP threads cost more than they save.

Encoding is a plain nearest-centroid search in float64 against the float32
codebook as saved, so anyone holding ``codebook.npy`` reproduces the tokens
exactly (ties go to the smaller index).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
from sklearn.cluster import MiniBatchKMeans, kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from mgdata.errors import InputError, ParamsError

# int16 tokens (the artifact format) hold symbols 0..32767.
MAX_K = int(np.iinfo(np.int16).max) + 1
# Elements of the [chunk, K, dim] difference tensor computed at once while encoding.
_ENCODE_CHUNK_ELEMS = 4_000_000


def fit_codebook(
    vectors: np.ndarray,
    k: int,
    *,
    seed: int,
    batch_size: int = 1024,
    max_iter: int = 50,
    n_init: int = 3,
) -> np.ndarray:
    """Fit a k-means codebook with MiniBatchKMeans.

    Args:
        vectors: Training segment vectors ``[n, dim]`` (training split only).
        k: Number of centroids (alphabet size), 2 <= k <= 32768.
        seed: Random seed (k-means++ init and mini-batch sampling).
        batch_size: Mini-batch size.
        max_iter: Epochs: ``max_iter * n / batch_size`` mini-batch steps (no early stopping).
        n_init: k-means++ initialisations; the best (lowest inertia) is kept.

    Returns:
        float32 codebook ``[k, dim]``.

    Raises:
        ParamsError: (key ``tokens.k``) fewer vectors than ``k``, or ``k`` out of range.
        ValueError: ``vectors`` is not a finite 2-D array.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be [n, dim], got shape {vectors.shape}")
    if not 2 <= k <= MAX_K:
        raise ParamsError("tokens.k", f"expected 2 <= k <= {MAX_K} (int16 tokens), got {k}")
    if len(vectors) < k:
        raise ParamsError(
            "tokens.k",
            f"k={k} needs at least {k} training segments, but the training split has only "
            f"{len(vectors)}: use a smaller k or segment_s, or a larger corpus",
        )
    if not np.all(np.isfinite(vectors)):
        raise ValueError("training vectors contain NaN or inf")
    n = len(vectors)
    batch = min(batch_size, n)
    rng = np.random.default_rng(seed)
    init_size = min(n, max(3 * batch, 3 * k))  # sklearn's rule (3 x batch), and enough for k centres
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # Duplicate centroids (fewer distinct vectors than k) are reported by the
        # builder as a metric (distinct_centroids), not as a warning per fit.
        warnings.simplefilter("ignore", ConvergenceWarning)
        held = vectors[rng.integers(0, n, init_size)]
        best, best_inertia = None, np.inf
        for _ in range(n_init):
            sample = vectors[rng.choice(n, init_size, replace=False)]
            centres, _ = kmeans_plusplus(sample, k, random_state=int(rng.integers(2**31 - 1)))
            inertia = _inertia(held, centres)
            if inertia < best_inertia:
                best, best_inertia = centres, inertia
        km = MiniBatchKMeans(
            n_clusters=k,
            init=best,
            n_init=1,
            batch_size=batch,
            compute_labels=False,
            random_state=int(rng.integers(2**31 - 1)),
        )
        for _ in range(max(1, max_iter * n // batch)):
            km.partial_fit(vectors[rng.integers(0, n, batch)])
    return np.ascontiguousarray(km.cluster_centers_, dtype=np.float32)


def _inertia(x: np.ndarray, centres: np.ndarray) -> float:
    """Sum of squared distances of ``x`` to their nearest centre."""
    tokens = encode(x, centres)
    d = np.asarray(x, dtype=np.float64) - np.asarray(centres, dtype=np.float64)[tokens]
    return float((d * d).sum())


def encode(vectors: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (squared Euclidean) of every vector.

    Args:
        vectors: ``[n, dim]``.
        codebook: ``[k, dim]``.

    Returns:
        int16 tokens ``[n]`` in ``[0, k)``.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    cb = np.asarray(codebook, dtype=np.float64)
    if vectors.ndim != 2 or cb.ndim != 2 or vectors.shape[1] != cb.shape[1]:
        raise ValueError(f"shape mismatch: vectors {vectors.shape}, codebook {cb.shape}")
    if len(cb) > MAX_K:
        raise ValueError(f"codebook has {len(cb)} centroids; int16 tokens hold at most {MAX_K}")
    out = np.empty(len(vectors), dtype=np.int16)
    # Direct differences (not the |x|^2 - 2xc + |c|^2 expansion): exact and BLAS-free.
    step = max(1, _ENCODE_CHUNK_ELEMS // max(1, cb.size))
    for start in range(0, len(vectors), step):
        x = vectors[start : start + step]
        d = ((x[:, None, :] - cb[None, :, :]) ** 2).sum(axis=2)
        out[start : start + step] = np.argmin(d, axis=1)
    return out


def codebook_bytes(codebook: np.ndarray) -> bytes:
    """The ``.npy`` bytes of a float32 codebook (what ``codebook.npy`` holds)."""
    from mgdata.store import encode_npy

    return encode_npy(np.ascontiguousarray(codebook, dtype=np.float32))


def codebook_sha256(codebook: np.ndarray) -> str:
    """sha256 of :func:`codebook_bytes` (equals ``sha256sum codebook.npy``)."""
    return hashlib.sha256(codebook_bytes(codebook)).hexdigest()


def save_codebook(path: str | Path, codebook: np.ndarray) -> str:
    """Write ``codebook.npy`` atomically; returns its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = codebook_bytes(codebook)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def load_codebook(path: str | Path) -> np.ndarray:
    """Read a codebook written by :func:`save_codebook`.

    Raises:
        InputError: Missing file, or not a 2-D float32 array (names the file).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "codebook not found (run the tokens stage)")
    try:
        cb = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(str(path), f"unreadable codebook ({exc})") from None
    if cb.ndim != 2 or cb.dtype != np.float32:
        raise InputError(str(path), f"expected a float32 [K, dim] array, got {cb.dtype} {cb.shape}")
    return cb


def distinct_rows(codebook: np.ndarray) -> int:
    """Number of distinct centroids (duplicates appear when training data has < k distinct vectors)."""
    return int(len(np.unique(np.asarray(codebook), axis=0)))
