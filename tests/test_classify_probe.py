"""Probes: learn separable data, bit-for-bit determinism, save/load, bad input."""

import numpy as np
import pytest

from mgdata.classify.config import ProbeConfig
from mgdata.classify.probe import ProbeModel, class_weights, train_probe
from mgdata.errors import InputError

CFG = ProbeConfig(hidden=[16], lr=0.01, max_epochs=30, patience=5, batch_size=32)


def blobs(n_per: int, seed: int, c: int = 3, dim: int = 8):
    rng = np.random.default_rng(seed)
    centres = np.eye(c, dim) * 3.0
    x = np.concatenate([rng.normal(centres[k], 1.0, (n_per, dim)) for k in range(c)]).astype(np.float32)
    y = np.repeat(np.eye(c), n_per, axis=0)
    return x, y


def test_single_label_learns_and_is_bit_deterministic(tmp_path):
    xt, yt = blobs(40, 0)
    xv, yv = blobs(10, 1)
    xs, ys = blobs(20, 2)
    a = train_probe(xt, yt, xv, yv, labels=["a", "b", "c"], multilabel=False, cfg=CFG, seed=3)
    b = train_probe(xt, yt, xv, yv, labels=["a", "b", "c"], multilabel=False, cfg=CFG, seed=3)
    pa, pb = a.predict_proba(xs), b.predict_proba(xs)
    assert pa.tobytes() == pb.tobytes()
    assert np.allclose(pa.sum(axis=1), 1.0)
    acc = (pa.argmax(1) == ys.argmax(1)).mean()
    assert acc > 0.9
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    for name in ("model.safetensors", "probe.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    loaded = ProbeModel.load(tmp_path / "a")
    assert loaded.predict_proba(xs).tobytes() == pa.tobytes()
    assert loaded.labels == ["a", "b", "c"] and loaded.meta["training"]["seed"] == 3
    c = train_probe(xt, yt, xv, yv, labels=["a", "b", "c"], multilabel=False, cfg=CFG, seed=4)
    assert c.predict_proba(xs).tobytes() != pa.tobytes()  # the seed matters


def test_slp_and_multilabel_with_thresholds(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = np.column_stack([x[:, 0] > 0.5, x[:, 1] + x[:, 2] > 0]).astype(np.float32)
    slp = ProbeConfig(hidden=[], lr=0.02, max_epochs=60, patience=5, batch_size=50)
    m = train_probe(x[:200], y[:200], x[200:250], y[200:250], labels=["p", "q"], multilabel=True, cfg=slp, seed=0)
    p = m.predict_proba(x[250:])
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y[250:], p, average=None).min() > 0.9
    m.thresholds = np.array([0.4, 0.6])
    m.save(tmp_path / "m")
    back = ProbeModel.load(tmp_path / "m")
    assert back.thresholds.tolist() == [0.4, 0.6] and back.hidden == []
    assert back.decide(np.array([[0.45, 0.55]])).tolist() == [[1, 0]]


def test_scaler_is_fit_on_train_only():
    xt, yt = blobs(20, 0)
    xv, yv = blobs(5, 1)
    m = train_probe(xt, yt, xv + 100.0, yv, labels=list("abc"), multilabel=False, cfg=CFG, seed=0)
    assert np.allclose(m.mean, xt.mean(axis=0), atol=1e-5)


def test_balanced_class_weights():
    y = np.array([[1, 0], [1, 0], [1, 0], [0, 1]])
    assert class_weights(y, False).tolist() == pytest.approx([4 / 6, 2.0])
    assert class_weights(y, True).tolist() == pytest.approx([1 / 3, 3.0])


def test_bad_input_names_the_problem():
    xt, yt = blobs(10, 0)
    xv, yv = blobs(3, 1)
    yt0 = yt.copy()
    yt0[:, 2] = 0
    yt0[20:, 0] = 1
    with pytest.raises(InputError, match="'c' has no training examples"):
        train_probe(xt, yt0, xv, yv, labels=list("abc"), multilabel=False, cfg=CFG, seed=0)
    bad = xt.copy()
    bad[4, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        train_probe(bad, yt, xv, yv, labels=list("abc"), multilabel=False, cfg=CFG, seed=0)
    m = train_probe(xt, yt, xv, yv, labels=list("abc"), multilabel=False, cfg=CFG, seed=0)
    with pytest.raises(InputError, match="dim 3 does not match"):
        m.predict_proba(xt[:, :3])
