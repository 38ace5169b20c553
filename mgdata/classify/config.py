"""Params section ``classify``: tasks, probes, trials and experiment settings.

The DVC ``classify`` stages are a matrix over ``tasks`` x ``embedders``; the
generators (embedding artifacts of generated audio) and deformation scenarios they
read are listed here too so the stage and dvc.yaml agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mgdata.config import check

#: Tasks whose label is a list (sigmoid + BCE, thresholds chosen on validation).
MULTILABEL_TASKS = ("mood", "moodtheme")
#: Tasks that read another task's label column: ``moodtheme`` is the MediaEval 2019 task, the ``mood`` column
#: (MTG-Jamendo mood/theme tags) restricted to the task's 56-tag vocabulary (:data:`TASK_VOCABULARY`).
TASK_COLUMNS = {"moodtheme": "mood"}


def _mediaeval_tags() -> frozenset[str]:
    from mgdata.sources.jamendo import MEDIAEVAL_MOODTHEME_TAGS

    return MEDIAEVAL_MOODTHEME_TAGS


#: Tasks with a fixed label vocabulary: labels outside it are ignored (not errors), classes are the vocabulary
#: tags seen in train, and the metrics name which vocabulary tags have test positives.
TASK_VOCABULARY = {"moodtheme": _mediaeval_tags}


def task_column(task: str) -> str:
    """The embedding-table column holding ``task``'s labels (the task name unless :data:`TASK_COLUMNS` says)."""
    return TASK_COLUMNS.get(task, task)


def task_vocabulary(task: str) -> frozenset[str] | None:
    """The fixed label vocabulary of ``task`` (``moodtheme``: the 56 MediaEval tags), else None."""
    fn = TASK_VOCABULARY.get(task)
    return None if fn is None else fn()


@dataclass(frozen=True)
class ProbeConfig:
    """One probe: an SLP (``hidden: []``) or an MLP (ReLU hidden layers), trained with Adam.

    Attributes:
        hidden: Hidden layer widths; ``[]`` = single-layer perceptron (logistic regression).
        lr: Adam learning rate.
        weight_decay: Adam L2 penalty.
        batch_size: Mini-batch size (examples).
        max_epochs: Upper bound on epochs.
        patience: Early stopping: epochs without a lower validation loss before stopping
            (the best epoch's weights are kept).
        class_weights: ``balanced``: loss weights n / (c * n_class) (single-label) or
            pos_weight = negatives / positives per class (multi-label); ``none``: unweighted.
    """

    hidden: list[int] = field(default_factory=list)
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    max_epochs: int = 300
    patience: int = 20
    class_weights: Literal["balanced", "none"] = "balanced"

    def __post_init__(self):
        check(all(h >= 1 for h in self.hidden), "hidden", "expected positive layer widths")
        check(self.lr > 0.0, "lr", "expected a positive learning rate")
        check(self.weight_decay >= 0.0, "weight_decay", "expected >= 0")
        check(self.batch_size >= 1, "batch_size", "expected an integer >= 1")
        check(self.max_epochs >= 1, "max_epochs", "expected an integer >= 1")
        check(self.patience >= 1, "patience", "expected an integer >= 1")


def _default_probes() -> dict[str, ProbeConfig]:
    return {"slp": ProbeConfig(hidden=[]), "mlp": ProbeConfig(hidden=[256])}


@dataclass(frozen=True)
class ClassifyConfig:
    """Section ``classify``.

    Attributes:
        tasks: Label tasks the matrix runs: columns of the embedding parquet (``quadrant``, ``mood``, ``style``)
            or ``moodtheme`` (MediaEval 2019: the ``mood`` column over the 56-tag vocabulary).
        embedders: Embedders the matrix runs (folders under ``data/embed``).
        real_artifact: Embed artifact of the real audio (``data/embed/<embedder>/<real_artifact>``).
        generators: Embed artifacts of generated audio (one ``@generator`` experiment each).
        scenarios: Deformation scenarios of the robustness experiment (besides ``clean``).
        probes: Named probe settings; ``probe`` picks the one of the main experiments,
            robustness runs all of them.
        probe: The probe used by baseline, augmented and generated-classified.
        synthetic_hidden: Hidden widths of the synthetic-only probe (one dense layer of 128 ReLU).
        synthetic_val_fraction: Share of generated source tracks held out for the synthetic-only probe's early
            stopping when the generator made nothing from validation tracks.
        trials: Trials (seeds ``seed``, ``seed + 1``, ...) per experiment; mean and std reported, significance
            tests run once per seed.
        seed: First trial's seed (probe init, batches, augmentation draw).
        augment_fraction: Generated examples added, as a fraction of the training rows, split
            equally over the classes.
        heldout_source_fraction: Share of generated samples' train source tracks left out of the
            classifier of the "source unseen" generated-classified variant.
        permutations: Label permutations (over test tracks, model fixed) of each seed's p-value (baseline and
            synthetic-only probes).
        missing_class: A class without training examples: ``error`` or ``skip`` (dropped, counted).
        threshold_default: Threshold of a multi-label class without validation positives.
        highlight_rel: Relative increase over the baseline that marks a table cell (0.01 = 1 %).
    """

    tasks: list[str] = field(default_factory=lambda: ["quadrant", "mood", "style"])
    embedders: list[str] = field(default_factory=lambda: ["logmel", "musicfeat"])
    real_artifact: str = "corpus"
    generators: list[str] = field(default_factory=lambda: ["resynth"])
    scenarios: list[str] = field(default_factory=lambda: ["noise_snr20", "gain_m6"])
    probes: dict[str, ProbeConfig] = field(default_factory=_default_probes)
    probe: str = "mlp"
    synthetic_hidden: list[int] = field(default_factory=lambda: [128])
    synthetic_val_fraction: float = 0.2
    trials: int = 3
    seed: int = 0
    augment_fraction: float = 0.05
    heldout_source_fraction: float = 0.5
    permutations: int = 1000
    missing_class: Literal["error", "skip"] = "error"
    threshold_default: float = 0.5
    highlight_rel: float = 0.01

    def __post_init__(self):
        check(len(self.tasks) >= 1, "tasks", "expected at least one task")
        check(self.probe in self.probes, "probe", f"expected a key of classify.probes {sorted(self.probes)}")
        check(all(h >= 1 for h in self.synthetic_hidden), "synthetic_hidden", "expected positive layer widths")
        check(0.0 < self.synthetic_val_fraction < 1.0, "synthetic_val_fraction", "expected 0 < fraction < 1")
        check(self.trials >= 1, "trials", "expected an integer >= 1")
        check(self.seed >= 0, "seed", "expected a non-negative seed")
        check(0.0 < self.augment_fraction <= 1.0, "augment_fraction", "expected 0 < fraction <= 1")
        check(0.0 < self.heldout_source_fraction < 1.0, "heldout_source_fraction", "expected 0 < fraction < 1")
        check(self.permutations >= 0, "permutations", "expected an integer >= 0")
        check(self.highlight_rel >= 0.0, "highlight_rel", "expected >= 0")

    def multilabel(self, task: str) -> bool:
        """Whether ``task`` is multi-label."""
        return task in MULTILABEL_TASKS


__all__ = [
    "ClassifyConfig",
    "MULTILABEL_TASKS",
    "ProbeConfig",
    "TASK_COLUMNS",
    "TASK_VOCABULARY",
    "task_column",
    "task_vocabulary",
]
