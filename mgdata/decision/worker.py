"""The picklable per-task function of the ``decision`` builder: train one trial seed."""

from __future__ import annotations

import dataclasses

from mgdata.decision.config import DecisionConfig
from mgdata.decision.data import TokenPair
from mgdata.decision.train import TrainResult, train_model


@dataclasses.dataclass(frozen=True)
class TrainJob:
    """One trial's training (picklable): the pairs travel with the job, the model comes back."""

    train: list[TokenPair]
    val: list[TokenPair]
    k: int
    cfg: DecisionConfig
    ckpt_dir: str | None


def run_train_job(job: TrainJob) -> TrainResult:
    """Worker side: train one seed on one torch thread (the same kernels in every backend and worker count)."""
    import torch

    threads = torch.get_num_threads()
    try:
        return train_model(job.train, job.val, job.k, dataclasses.replace(job.cfg, threads=1), job.ckpt_dir)
    finally:
        torch.set_num_threads(threads)


__all__ = ["TrainJob", "run_train_job"]
