"""Stem roles of the decision model (issue 20): which part A is and which part B should be, on tiny pairs."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest

from mgdata.decision.cli import _config, _roles
from mgdata.decision.data import TokenPair, role_names, with_roles
from mgdata.decision.evaluate import Tables, baseline_predictions
from mgdata.decision.generate import generate
from mgdata.decision.model import make_model
from mgdata.decision.train import check_tokens, collate, load_model, train_model
from mgdata.errors import InputError

K = 6
#: B = A shifted by the target part's interval: the same A asks for a different B per role.
SHIFT = {"soprano": 0, "alto": 2, "bass": 4}


def role_pairs(n_tracks: int, split: str, seed: int, length: int = 10) -> list[TokenPair]:
    """Per track, A (soprano) -> B of each part: B_t = (A_t + SHIFT[part]) mod K."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n_tracks):
        a = rng.integers(0, K, size=length)
        for part, shift in SHIFT.items():
            b = (a + shift) % K
            tid = f"{split}{t}"
            out.append(TokenPair(tid, split, a, b, f"{tid}_s", f"{tid}_{part}", 0, "soprano", part, f"{tid}_{part}"))
    return out


def cfg(**kw):
    from mgdata.decision.config import DecisionConfig

    base = dict(
        arch="aligned", window=0, history=0, d_model=8, ff_dim=32, n_layers=1, dropout=0.0, max_len=16,
        batch_size=16, max_epochs=30, patience=100, lr=1e-2, threads=1, n_permutations=200, n_renders=0,
        role_min_pairs=5,
    )  # fmt: skip
    return DecisionConfig(**{**base, **kw})


def _correct(preds, pairs) -> int:
    return sum(int(np.sum(x == p.b)) for x, p in zip(preds, pairs))


def test_role_vocabulary_counts_b_parts_and_rare_names_are_other():
    tr = role_pairs(4, "train", 0) + [dataclasses.replace(role_pairs(1, "train", 1)[0], stem_b="tuba")]
    assert role_names(tr, 4) == ("alto", "bass", "soprano")  # tuba is B once: it shares "other"
    c = with_roles(cfg(roles=True, role_min_pairs=4), tr)
    assert c.role_names == ("alto", "bass", "soprano")
    assert with_roles(cfg(), tr).role_names == ()  # roles off: nothing derived
    with pytest.raises(InputError, match="role_min_pairs=50"):
        with_roles(cfg(roles=True, role_min_pairs=50), tr)
    with pytest.raises(ValueError, match="role_names not derived"):
        make_model(K, cfg(roles=True))


def test_roles_are_two_source_tokens_before_a():
    tr = role_pairs(2, "train", 0)
    m = make_model(K, with_roles(cfg(roles=True, role_min_pairs=1), tr))
    p = tr[2]  # soprano -> bass
    src = m.pair_source(p)
    assert src[0] == m.role_token("soprano") == K + 3 + 1 + 2
    assert src[1] == m.role_token("bass") == K + 3 + 1 + 1
    assert m.role_token("tuba") == K + 3  # other
    assert np.array_equal(src[2:], p.a)
    s, _, _ = collate(tr[:3], K, m.pair_source)
    assert s.shape == (3, len(p.a) + 2)
    # a role-free model reads A alone
    assert np.array_equal(make_model(K, cfg()).pair_source(p), p.a)


def test_model_with_roles_generates_the_asked_part():
    """The same A asks for three different B: only the roles tell them apart.

    Integer counts with thresholds far from both sides: without roles at most one part per A can be right
    (about 1/3 of the tokens); with roles nearly all; the role table gets all of them too.
    """
    tr, te = role_pairs(20, "train", 1), role_pairs(6, "test", 2)
    n = sum(len(p.b) for p in te)
    assert n == 180
    scores = {}
    for roles in (False, True):
        c = with_roles(cfg(roles=roles), tr)
        res = train_model(tr, tr, K, c)
        src = [res.model.pair_source(p) for p in te]
        scores[roles] = _correct(generate(res.model, src, [len(p.b) for p in te], strategy="greedy"), te)
    assert scores[False] < 90 < 160 < scores[True], scores
    tables = Tables.fit(tr, K, role_names=("alto", "bass", "soprano"))
    allowed = [None] * len(te)
    assert _correct(baseline_predictions("cond_argmax_role", te, tables, seed=0, allowed=allowed), te) == n
    assert _correct(baseline_predictions("cond_argmax", te, tables, seed=0, allowed=allowed), te) < 90


def test_paper_model_reads_roles_in_its_encoder():
    """The paper's encoder-decoder takes the role tokens as its first two source positions."""
    import torch

    tr = role_pairs(2, "train", 0)
    m = make_model(K, with_roles(cfg(roles=True, role_min_pairs=1, arch="paper", d_model=16, n_heads=2), tr))
    m.eval()
    src = collate(tr[:3], K, m.pair_source)[0]  # one A, three target parts
    assert torch.equal(src[0, 2:], src[1, 2:]) and src[0, 1] != src[1, 1]
    tgt = torch.full((3, 1), m.sos, dtype=torch.long)
    logits = m(src, tgt)[:, 0]
    assert not torch.allclose(logits[0], logits[1]) and not torch.allclose(logits[1], logits[2])


def test_role_model_file_carries_its_vocabulary_and_data_and_cli_checks_them(tmp_path):
    tr, va = role_pairs(3, "train", 0), role_pairs(1, "validation", 5)
    c = with_roles(cfg(roles=True, role_min_pairs=1, max_epochs=1), tr)
    train_model(tr, va, K, c, tmp_path)  # writes model.pt with the data fingerprint
    check_tokens(tmp_path / "model.pt", tr, va, "tokens")  # the data it learnt from: fine
    with pytest.raises(InputError, match=r"^other_tokens: the model .* was trained on other token data"):
        check_tokens(tmp_path / "model.pt", role_pairs(3, "train", 9), va, "other_tokens")
    # the CLI rebuilds the network from the file, whatever params.yaml says about roles
    args = argparse.Namespace(params=str(tmp_path / "absent.yaml"))
    back = load_model(tmp_path / "model.pt", _config(args, tmp_path / "model.pt"), k=K)
    assert back.role_names == ("alto", "bass", "soprano")
    ok = argparse.Namespace(role_a="soprano", role_b="bass")
    assert _roles(ok, back) == ("soprano", "bass")
    assert _roles(argparse.Namespace(role_a="", role_b=""), back) == ("", "")
    with pytest.raises(InputError, match=r"--role-b.*unknown stem role 'tuba'.*alto, bass, soprano"):
        _roles(argparse.Namespace(role_a="soprano", role_b="tuba"), back)
    plain = make_model(K, cfg())
    with pytest.raises(InputError, match="--role-a.*without stem roles"):
        _roles(argparse.Namespace(role_a="soprano", role_b=""), plain)
