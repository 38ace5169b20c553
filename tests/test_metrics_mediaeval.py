"""MediaEval 2019 metrics against hand-computed values, thresholds on validation, the CLI."""

import json

import numpy as np
import pytest

from mgdata.classify.metrics import (
    METRIC_KEYS,
    MetricWarning,
    choose_thresholds,
    decisions_from_scores,
    mediaeval_metrics,
    read_thresholds,
    write_thresholds,
)
from mgdata.cli import main
from mgdata.errors import InputError

G = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
P = np.array([[0.9, 0.1], [0.6, 0.4], [0.4, 0.6], [0.2, 0.8]])


def test_hand_computed_argmax():
    m = mediaeval_metrics(G, P)
    assert tuple(m) == METRIC_KEYS
    # class 0: positives {.9,.4} vs negatives {.6,.2}: 3 of 4 pairs ordered; class 1 likewise; micro 12/16
    assert m["roc_auc_macro"] == pytest.approx(0.75)
    assert m["roc_auc_micro"] == pytest.approx(0.75)
    # AP per class: (1/1 + 2/3) / 2; micro with the tied .6/.6 and .4/.4 cells: .25 + .25 + .5 * 4/6
    assert m["pr_auc_macro"] == pytest.approx(5 / 6)
    assert m["pr_auc_micro"] == pytest.approx(5 / 6)
    # argmax: rows -> 0, 0, 1, 1: each class TP 1, FP 1, FN 1
    for k in ("precision", "recall", "f1"):
        assert m[f"{k}_macro"] == pytest.approx(0.5)
        assert m[f"{k}_micro"] == pytest.approx(0.5)


def test_hand_computed_thresholds():
    m = mediaeval_metrics(G, P, thresholds=[0.3, 0.7])
    # class 0: .9 .6 .4 positive -> TP 2 FP 1 FN 0 (P 2/3, R 1, F .8); class 1: only .8 -> TP 1 FN 1 (P 1, R .5, F 2/3)
    assert m["precision_macro"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["recall_macro"] == pytest.approx(0.75)
    assert m["f1_macro"] == pytest.approx((0.8 + 2 / 3) / 2)
    # micro: TP 3, FP 1, FN 1
    assert m["precision_micro"] == pytest.approx(0.75)
    assert m["recall_micro"] == pytest.approx(0.75)
    assert m["f1_micro"] == pytest.approx(0.75)
    # explicit decisions give the same figures as the thresholds that produce them
    d = decisions_from_scores(P, [0.3, 0.7])
    assert mediaeval_metrics(G, P, d) == m


def test_class_without_positives_warns_and_is_excluded_from_macro_auc():
    g = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
    p = np.column_stack([P, [0.3, 0.2, 0.1, 0.5]])
    with pytest.warns(MetricWarning, match="'calm' has no positives"):
        m = mediaeval_metrics(g, p, thresholds=[0.3, 0.7, 0.4], class_names=["happy", "sad", "calm"])
    assert m["roc_auc_macro"] == pytest.approx(0.75)  # mean over the two defined classes
    assert m["pr_auc_macro"] == pytest.approx((5 / 6 + 5 / 6 + 0) / 3)  # AP 0 for the empty class, as sklearn
    assert all(np.isfinite(v) for v in m.values())


def test_shape_mismatch_and_nan_are_clear_errors():
    with pytest.raises(InputError, match="shape"):
        mediaeval_metrics(G, P[:, :1])
    bad = P.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        mediaeval_metrics(G, bad)


def test_choose_thresholds_maximises_validation_f1():
    y = np.array([[1], [0], [1], [0]])
    p = np.array([[0.9], [0.6], [0.4], [0.2]])
    # F1 at thresholds .2/.4/.6/.9 = .667/.8/.5/.667 -> .4
    assert choose_thresholds(y, p).tolist() == [0.4]
    with pytest.warns(MetricWarning, match="'none' has no positives in validation"):
        t = choose_thresholds(np.zeros((3, 1)), np.ones((3, 1)), class_names=["none"], default=0.5)
    assert t.tolist() == [0.5]


def test_thresholds_file_round_trip(tmp_path):
    write_thresholds(tmp_path / "t.txt", ["a", "b"], [0.1 + 0.2, 0.7])
    names, t = read_thresholds(tmp_path / "t.txt", 2)
    assert names == ["a", "b"] and t.tolist() == [0.1 + 0.2, 0.7]
    (tmp_path / "bad.txt").write_text("a 0.5\n")
    with pytest.raises(InputError, match="bad.txt:1"):
        read_thresholds(tmp_path / "bad.txt")


def test_cli_prints_exactly_the_ten_keys(tmp_path, capsys):
    np.save(tmp_path / "g.npy", G)
    np.save(tmp_path / "p.npy", P)
    write_thresholds(tmp_path / "t.txt", ["a", "b"], [0.3, 0.7])
    assert (
        main(
            [
                "metrics",
                "--groundtruth",
                str(tmp_path / "g.npy"),
                "--predictions",
                str(tmp_path / "p.npy"),
                "--thresholds",
                str(tmp_path / "t.txt"),
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert list(out) == list(METRIC_KEYS)
    assert out["f1_micro"] == pytest.approx(0.75)
    np.save(tmp_path / "d.npy", decisions_from_scores(P))
    assert (
        main(
            [
                "metrics",
                "--groundtruth",
                str(tmp_path / "g.npy"),
                "--predictions",
                str(tmp_path / "p.npy"),
                "--decisions",
                str(tmp_path / "d.npy"),
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["f1_macro"] == pytest.approx(0.5)
    assert (
        main(["metrics", "--groundtruth", str(tmp_path / "missing.npy"), "--predictions", str(tmp_path / "p.npy")]) == 2
    )
    assert "missing.npy" in capsys.readouterr().err
