"""The aligned decision model, the context baseline and the paired tests (issue 20), on tiny synthetic pairs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mgdata.decision.config import DecisionConfig
from mgdata.decision.data import TokenPair
from mgdata.decision.evaluate import (
    Tables,
    baseline_predictions,
    compare,
    paired_permutation_p,
    paired_rank_biserial,
)
from mgdata.decision.generate import generate
from mgdata.decision.model import AlignedDecision
from mgdata.decision.train import load_model, save_model, train_model
from mgdata.errors import ParamsError

K = 5


def rule_pairs(n_tracks: int, split: str, seed: int, length: int = 12) -> list[TokenPair]:
    """B_t = (A_t + A_{t+1}) mod K (A_{t+1} = 0 past the end): a rule P(b | a_t) cannot capture."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n_tracks):
        for w in range(2):
            a = rng.integers(0, K, size=length)
            b = (a + np.append(a[1:], 0)) % K
            out.append(TokenPair(f"{split}{t}", split, a, b, f"{split}{t}_{w}_a", f"{split}{t}_{w}_b", w))
    return out


def aligned(**kw) -> DecisionConfig:
    base = dict(
        arch="aligned", window=1, history=0, d_model=8, ff_dim=64, n_layers=1, dropout=0.0, max_len=16,
        batch_size=16, max_epochs=40, patience=100, lr=1e-2, threads=1, n_permutations=200, n_renders=0,
    )  # fmt: skip
    return DecisionConfig(**{**base, **kw})


def _correct(preds, pairs) -> int:
    return sum(int(np.sum(x == p.b)) for x, p in zip(preds, pairs))


def test_aligned_model_learns_a_rule_the_table_cannot():
    """Free-running greedy generation of held-out pairs: the aligned model gets the rule, the table cannot.

    Integer counts with thresholds far from both sides (no float accuracy compared across CPUs): the table
    guesses b from a_t alone (about 1/K of 240 tokens correct), the trained model nearly all of them.
    """
    tr, te = rule_pairs(30, "train", 1), rule_pairs(10, "test", 2)
    res = train_model(tr, tr, K, aligned(history=2, ss_max=0.5))
    preds = generate(res.model, [p.a for p in te], [len(p.b) for p in te], strategy="greedy")
    table = baseline_predictions("cond_argmax", te, Tables.fit(tr, K), seed=0, allowed=[None] * len(te))
    n = sum(len(p.b) for p in te)
    assert n == 240
    assert _correct(table, te) < 100 < 200 < _correct(preds, te), (_correct(table, te), _correct(preds, te))
    # the context baseline (window 1) sees a_{t+1} too, but is linear in one-hot tokens: the sum mod K is an
    # interaction of the two it cannot represent ...
    ctx = Tables.fit(tr, K, context_window=1, c=100.0)
    assert _correct(baseline_predictions("context", te, ctx, seed=0, allowed=[None] * len(te)), te) < 100
    # ... while a rule of one neighbour, B_t = A_{t+1}, which the table (a_t only) cannot see, it learns
    shift = [dataclasses.replace(p, b=np.append(p.a[1:], 0)) for p in tr]
    shift_te = [dataclasses.replace(p, b=np.append(p.a[1:], 0)) for p in te]
    ctx = Tables.fit(shift, K, context_window=1, c=100.0)
    assert _correct(baseline_predictions("context", shift_te, ctx, seed=0, allowed=[None] * len(te)), shift_te) > 200


def test_aligned_model_save_load_and_batched_generation(tmp_path):
    tr = rule_pairs(4, "train", 1)
    cfg = aligned(history=3, summary=True, max_epochs=2)
    res = train_model(tr, tr, K, cfg)
    assert isinstance(res.model, AlignedDecision)
    save_model(tmp_path / "m.pt", res.model, cfg, res.params_hash)
    back = load_model(tmp_path / "m.pt", cfg, k=K)
    assert all(torch.equal(a, b) for a, b in zip(res.model.state_dict().values(), back.state_dict().values()))
    srcs, lens = [p.a for p in tr], [len(p.b) for p in tr]
    batched = generate(back, srcs, lens, seed=3, top_p=0.8, batch_size=3)
    single = [generate(back, [s], [n], seed=3, indices=[i], top_p=0.8)[0] for i, (s, n) in enumerate(zip(srcs, lens))]
    assert all(np.array_equal(a, b) for a, b in zip(batched, single, strict=True))
    # teacher-forced logits at t do not depend on B's tokens at or after t (causal)
    src = torch.as_tensor(np.stack([p.a for p in tr[:2]]))
    tgt = torch.full((2, 13), back.sos, dtype=torch.long)
    tgt[:, 1:] = torch.as_tensor(np.stack([p.b for p in tr[:2]]))
    changed = tgt.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % K
    assert torch.equal(back(src, tgt)[:, :6], back(src, changed)[:, :6])


def test_context_baseline_fit_is_deterministic():
    tr = rule_pairs(6, "train", 4)
    a, b = Tables.fit(tr, K, context_window=2), Tables.fit(tr, K, context_window=2)
    assert a.context.coef.tobytes() == b.context.coef.tobytes()
    assert a.context.intercept.tobytes() == b.context.intercept.tobytes()
    probs = a.context.proba(tr[0].a, len(tr[0].b))
    assert probs.shape == (12, K) and np.allclose(probs.sum(1), 1.0)
    # the constraint holds for the context baseline as for the others
    only = baseline_predictions("context", tr, a, seed=0, allowed=[np.array([3])] * len(tr))
    assert all((x == 3).all() for x in only)
    with pytest.raises(ValueError, match="context_window"):
        baseline_predictions("context", tr, Tables.fit(tr, K), seed=0, allowed=[None] * len(tr))


def test_paired_permutation_p_on_toy_cases():
    # 5 tracks all better: exactly 1 of the 32 sign patterns reaches the observed mean (the observed one)
    assert paired_permutation_p([1, 2, 3, 4, 5], n_permutations=100, seed=0) == pytest.approx(1 / 32)
    # one track worse by the smallest amount: patterns with mean >= observed are {observed, flip of track 1}
    assert paired_permutation_p([-1, 2, 3, 4, 5], n_permutations=100, seed=0) == pytest.approx(2 / 32)
    assert paired_permutation_p([0, 0, 0], n_permutations=100, seed=0) == 1.0
    # Monte Carlo (2^30 patterns > 1000): (1 + hits) / (1 + n); all better gives the floor 1 / 1001
    assert paired_permutation_p(np.ones(30), n_permutations=1000, seed=0) == pytest.approx(1 / 1001)
    assert paired_permutation_p(-np.ones(30), n_permutations=1000, seed=0) == 1.0
    assert paired_rank_biserial([1, 2, 3]) == 1.0 and paired_rank_biserial([-1, -2]) == -1.0
    assert paired_rank_biserial([0, 0]) == 0.0
    assert paired_rank_biserial([1, -2, 3]) == pytest.approx((1 + 3 - 2) / 6)
    c = compare([3, 4, 5, 6, 7], [1, 2, 3, 4, 5], n_permutations=100, seed=0)
    assert c["perm_p_value"] == pytest.approx(1 / 32) and c["paired_rank_biserial"] == 1.0


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"arch": "lstm"}, "arch"),
        ({"window": -1}, "window"),
        ({"history": -2}, "history"),
        ({"context_window": -1}, "context_window"),
        ({"context_c": 0.0}, "context_c"),
        ({"stop_on": "f1"}, "stop_on"),
    ],
)
def test_params_errors_name_the_key(kw, key):
    with pytest.raises(ParamsError, match=key):
        DecisionConfig(**kw)


def test_aligned_settings_in_the_model_hash_only_for_aligned():
    assert "window" not in DecisionConfig().model_settings()
    assert DecisionConfig(arch="aligned").model_settings()["arch"] == "aligned"


def test_aligned_build_serial_and_parallel_seeds_byte_identical(tmp_path):
    """Seeds of the aligned model trained serially or on 2 worker processes: the same files and metrics."""
    from test_decision_data import SEG_S, make_pair_layout

    from mgdata.decision.build import build_decision
    from mgdata.exec import ExecConfig

    tokens, _ = make_pair_layout(tmp_path / "in")
    # with stem roles: the vocabulary is derived in the builder and must reach every worker's model
    cfg = aligned(
        history=2, summary=True, max_epochs=2, batch_size=8, trials=2, context_window=1, roles=True, role_min_pairs=1
    )
    runs = {
        b: build_decision(
            tokens, tmp_path / b, cfg=cfg, segment_s=SEG_S, executor=ExecConfig(backend=b, workers=2), progress=False
        )
        for b in ("serial", "process")
    }
    for f in ("model.pt", "last.pt", "eval.json"):
        assert (tmp_path / "serial" / f).read_bytes() == (tmp_path / "process" / f).read_bytes(), f
    agg = runs["serial"].metrics["trials"]["aggregate"]
    assert runs["process"].metrics["trials"] == runs["serial"].metrics["trials"]
    for key in (
        "free_tpp_context",
        "free_perm_p_vs_cond_argmax",
        "free_perm_p_vs_cond_argmax_role",
        "free_perm_p_vs_context",
        "constrained_p_vs_random",
    ):
        assert key in agg, key
    assert runs["serial"].train.model.role_names  # the saved, rendered model reads roles


def test_early_stopping_on_accuracy_keeps_the_most_accurate_epoch():
    tr, va = rule_pairs(8, "train", 1), rule_pairs(4, "validation", 2)
    res = train_model(tr, va, K, aligned(stop_on="accuracy", max_epochs=6, lr=3e-3))
    accs = [row["val_acc"] for row in res.history]
    assert len(accs) == 6 and res.best_epoch == int(np.argmax(accs))  # first of ties: strict improvement
    assert res.best_val_loss == res.history[res.best_epoch]["val_loss"]
    # without B history, teacher-forced accuracy is free greedy generation's (pooled) hit rate
    preds = generate(res.model, [p.a for p in va], [len(p.b) for p in va], strategy="greedy")
    assert _correct(preds, va) == round(accs[res.best_epoch] * sum(len(p.b) for p in va))
    assert "val_acc" not in train_model(tr, va, K, aligned(max_epochs=1)).history[0]
