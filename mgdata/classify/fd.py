"""Experiment ``fad``: Frechet distance between generated and real-train embeddings (overall and per class)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mgdata.classify.config import ClassifyConfig
from mgdata.classify.data import TaskData, generated_data
from mgdata.classify.tables import EmbTable
from mgdata.errors import InputError


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to rows of ``a`` and ``b``:
    ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` (scipy ``sqrtm``, real part).

    Raises:
        InputError: Fewer than 2 rows on a side or different dims.
    """
    from scipy.linalg import sqrtm

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InputError("fad", f"embedding shapes {a.shape} and {b.shape} are not comparable")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise InputError("fad", f"need >= 2 rows per side, have {a.shape[0]} and {b.shape[0]}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = sqrtm(s_a @ s_b)
    if not np.isfinite(covmean).all():  # singular product: regularise both covariances slightly
        eps = np.eye(s_a.shape[0]) * 1e-6
        covmean = sqrtm((s_a + eps) @ (s_b + eps))
    covmean = np.real(covmean)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2.0 * np.trace(covmean))


def run_fad(td: TaskData, gen_table: EmbTable, cfg: ClassifyConfig) -> dict[str, Any]:
    """Frechet distance of generated vs real-train embeddings, overall and per class, with n per side.

    FAD proper is this distance on a standard pretrained embedder (VGGish); on ``logmel`` or
    ``musicfeat`` it is a Frechet distance in that feature space. It is biased upward for
    small n (the covariance estimate is noisy): compare figures at similar n only.
    """
    gen = generated_data(gen_table, td, cfg)
    out: dict[str, Any] = {
        "overall": {"fd": frechet_distance(gen.x, td.train.x), "n_generated": len(gen), "n_real": len(td.train)},
        "per_class": {},
    }
    for j, c in enumerate(td.classes):
        g, r = gen.x[gen.y[:, j] == 1], td.train.x[td.train.y[:, j] == 1]
        entry: dict[str, Any] = {"n_generated": int(g.shape[0]), "n_real": int(r.shape[0])}
        entry["fd"] = frechet_distance(g, r) if g.shape[0] >= 2 and r.shape[0] >= 2 else float("nan")
        out["per_class"][c] = entry
    return out


__all__ = ["frechet_distance", "run_fad"]
