"""Section ``geneval`` of params.yaml: the learning-curve grid, the controls and the probe."""

from __future__ import annotations

from dataclasses import dataclass, field

from mgdata.classify.config import ProbeConfig
from mgdata.config import check

CONTROLS = ("oracle", "oracle_shuffled")


@dataclass(frozen=True)
class GenevalConfig:
    """Section ``geneval``.

    Attributes:
        tasks: Single-label tasks the ``geneval`` matrix runs (``quadrant``, ``style``).
        embedder: The one embedder the curves use (a folder under ``data/embed``).
        novelty_embedder: Embedder of the novelty column ("" = ``embedder``): hand-made features that hear a
            resynthesis as the music it copies (a tagger's embedding hears its new timbre first).
        real_artifact: Embed artifact of the real audio.
        generators: Embed artifacts of generated audio, one leaderboard row each (the controls are added).
        fractions: Real-training fractions f (nested, stratified subsets of the curve tracks).
        ratios: Generated-to-real ratios r: r x (rows of the real subset) generated rows are added.
        pool_fraction: Share of the training tracks (per class) held out of every subset as the oracle pool.
        probe: The probe of every fit.
        synthetic_hidden: Hidden widths of the synthetic-only probe.
        trials: Seeds per point (``seed``, ``seed + 1``, ...).
        seed: First seed: pool and subset draws, probe init, augmentation draws, permutations.
        permutations: Paired sign-flip permutations over test tracks per point.
        bootstrap: Bootstrap resamples of the test tracks per point (95 % interval).
    """

    tasks: list[str] = field(default_factory=lambda: ["quadrant", "style"])
    embedder: str = "musicfeat"
    novelty_embedder: str = ""
    real_artifact: str = "corpus"
    generators: list[str] = field(default_factory=lambda: ["resynth"])
    fractions: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 1.0])
    ratios: list[float] = field(default_factory=lambda: [0.05, 1.0])
    pool_fraction: float = 0.3
    probe: ProbeConfig = field(default_factory=lambda: ProbeConfig(hidden=[256]))
    synthetic_hidden: list[int] = field(default_factory=lambda: [128])
    trials: int = 3
    seed: int = 0
    permutations: int = 1000
    bootstrap: int = 1000

    def __post_init__(self):
        check(len(self.tasks) >= 1, "tasks", "expected at least one task")
        check(all(t in ("quadrant", "style") for t in self.tasks), "tasks", "single-label tasks only: quadrant, style")
        check(all(0.0 < f <= 1.0 for f in self.fractions), "fractions", "expected fractions in (0, 1]")
        check(sorted(self.fractions) == list(self.fractions), "fractions", "expected increasing fractions")
        check(all(r > 0.0 for r in self.ratios), "ratios", "expected positive ratios")
        check(0.0 < self.pool_fraction < 1.0, "pool_fraction", "expected a share in (0, 1)")
        check(not set(self.generators) & set(CONTROLS), "generators", f"{list(CONTROLS)} are added by geneval itself")
        check(self.trials >= 2, "trials", "expected >= 2 seeds (the paired test needs an error bar)")
        check(self.permutations >= 100, "permutations", "expected >= 100 (p resolution 0.01)")
        check(self.bootstrap >= 100, "bootstrap", "expected >= 100 resamples")

    def sources(self) -> list[str]:
        """Leaderboard rows: the generators, then the controls."""
        return [*self.generators, *CONTROLS]


def point_name(source: str, f: float, r: float) -> str:
    """``<source>_f<pct>_r<ratio>`` as in the metrics keys (``oracle_f10_r1``, ``resynth_f100_r0.05``)."""
    return f"{source}_f{round(f * 100):d}_r{r:g}"


__all__ = ["CONTROLS", "GenevalConfig", "point_name"]
