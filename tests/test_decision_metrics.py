"""Hand-made sequences for mgdata.decision.metrics."""

from __future__ import annotations

import numpy as np
import pytest

from mgdata.decision.metrics import (
    codebook_usage,
    entropy_bits,
    lcp_curve,
    longest_common_prefix,
    longest_common_prefix_nonsilent,
    silence_token,
    true_positive_percentage,
)


def test_tpp_exact_partial_and_short_prediction():
    assert true_positive_percentage([1, 2, 3, 4], [1, 2, 3, 4]) == 100.0
    assert true_positive_percentage([1, 0, 3, 0], [1, 2, 3, 4]) == 50.0
    # shorter prediction: missing positions are wrong
    assert true_positive_percentage([1, 2], [1, 2, 3, 4]) == 50.0
    # longer prediction: extra tokens are ignored
    assert true_positive_percentage([1, 2, 3, 4, 5, 6], [1, 2, 3, 4]) == 100.0
    assert true_positive_percentage([], [1, 2]) == 0.0
    with pytest.raises(ValueError, match="empty"):
        true_positive_percentage([1], [])


def test_lcp_per_position():
    gt = [1, 2, 3, 4, 5]
    assert longest_common_prefix([1, 2, 0, 4, 5], gt) == [2, 1, 0, 2, 1]
    assert longest_common_prefix(gt, gt) == [5, 4, 3, 2, 1]
    assert longest_common_prefix([1, 2, 3], gt) == [3, 2, 1, 0, 0]
    assert longest_common_prefix([9, 9, 9, 9, 9], gt) == [0, 0, 0, 0, 0]


def test_lcp_nonsilent_drops_and_breaks_on_silence():
    gt = [0, 1, 1, 0, 2, 2]
    pred = [0, 1, 1, 0, 2, 7]
    assert longest_common_prefix(pred, gt) == [5, 4, 3, 2, 1, 0]
    # silence 0: positions 0 and 3 are dropped, and a silent match does not extend a run
    assert longest_common_prefix_nonsilent(pred, gt, 0) == [2, 1, 1, 0]
    assert longest_common_prefix_nonsilent(pred, gt, None) == longest_common_prefix(pred, gt)


def test_entropy_usage_and_curve():
    assert entropy_bits([[0, 1, 2, 3]], 4) == pytest.approx(2.0)
    assert entropy_bits([[5, 5, 5]], 8) == 0.0
    assert entropy_bits([], 8) == 0.0
    assert codebook_usage([[0, 1], [1, 3]], 4) == 0.75
    with pytest.raises(ValueError, match="outside"):
        codebook_usage([[4]], 4)
    curve = lcp_curve([[3, 2, 1], [1, 0]])
    assert curve["mean"] == [2.0, 1.0, 1.0]
    assert curve["max"] == [3.0, 2.0, 1.0]
    assert curve["count"] == [2.0, 2.0, 1.0]
    assert curve["std"][0] == pytest.approx(1.0)


def test_silence_token_is_zero_row():
    cb = np.array([[1.0, 0.0], [0.0, 0.0], [0.5, 0.5]], dtype=np.float32)
    assert silence_token(cb) == 1
    assert silence_token(cb + 0.3) is None
