"""One probe fit of the curves (a picklable task for the executor): train, then score the real test tracks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mgdata.classify.config import ProbeConfig
from mgdata.classify.data import Data, track_level


@dataclass(frozen=True)
class FitTask:
    """One fit.

    Attributes:
        name: ``baseline_f<pct>`` or a point name (``oracle_f10_r1``), for errors and logs.
        trial: Trial index (the probe seed is ``seed + trial``, the same for a baseline and its augmented fits,
            so a gain is not a difference of initialisations).
        seed: Probe seed.
        train: Training rows (real subset, plus the drawn rows of a source).
        val: Validation rows (early stopping).
        test: Real test rows (scored per track).
        classes: Class names.
        probe: Probe settings.
        extra_x: Rows to score as well (clips whose label validity is measured), or None.
    """

    name: str
    trial: int
    seed: int
    train: Data
    val: Data
    test: Data
    classes: tuple[str, ...]
    probe: ProbeConfig
    extra_x: np.ndarray | None = None


def fit_scores(task: FitTask) -> tuple[np.ndarray, np.ndarray | None]:
    """Track-level class scores of the test split ``[tracks, classes]`` (tracks sorted by id), and the scores of
    ``extra_x`` (or None). Torch runs on one thread, so serial and pooled runs give the same bytes."""
    import torch

    from mgdata.classify.fitting import fit_probe

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = fit_probe(task.train, task.val, list(task.classes), False, task.probe, task.seed)
        _, _, scores = track_level(task.test.tracks, task.test.y, model.predict_proba(task.test.x))
        extra = None if task.extra_x is None else np.asarray(model.predict_proba(task.extra_x), dtype=np.float64)
    finally:
        torch.set_num_threads(threads)
    return np.asarray(scores, dtype=np.float64), extra


__all__ = ["FitTask", "fit_scores"]
