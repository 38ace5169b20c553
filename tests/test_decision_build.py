"""build_decision without an output folder: the same numbers as a run to disk, and nothing written."""

from __future__ import annotations

from test_decision_data import SEG_S, make_pair_layout

from mgdata.decision.build import build_decision
from mgdata.decision.config import DecisionConfig


def test_in_memory_build_matches_disk(tmp_path):
    tokens, _ = make_pair_layout(tmp_path / "in")
    cfg = DecisionConfig(
        d_model=16, n_heads=2, n_layers=1, ff_dim=32, max_len=16, batch_size=8, max_epochs=2,
        n_permutations=100, n_renders=0, threads=1, trials=2,
    )  # fmt: skip
    disk = build_decision(tokens, tmp_path / "out", cfg=cfg, segment_s=SEG_S, progress=False)
    before = sorted(p for p in tmp_path.rglob("*") if "out" not in p.parts)
    mem = build_decision(tokens, cfg=cfg, segment_s=SEG_S, progress=False)
    assert sorted(p for p in tmp_path.rglob("*") if "out" not in p.parts) == before
    assert mem.metrics["trials"] == disk.metrics["trials"]
    assert mem.evaluation.metrics == disk.evaluation.metrics
    assert mem.renders == [] and len(mem.trials) == 2
