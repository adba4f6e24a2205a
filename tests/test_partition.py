"""The partition stage: trimming and ISPL runs."""

import numpy as np
from sklearn.linear_model import SGDClassifier

from sklearn_ispl._partition import _trim, ispl_run
from sklearn_ispl._validation import prepare_data


def test_trim_keeps_lowest_losses_and_a_class_floor():
    loss = np.array([0.1, 0.2, 0.3, 0.4, 5.0, 6.0, 7.0, 8.0])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    kept = _trim(loss, labels, beta=0.25, class_floor=0)
    np.testing.assert_array_equal(kept, [0, 1])
    # The floor adds the best ceil(0.25 * 0.5 * 4) = 1 sample of class 1.
    kept = _trim(loss, labels, beta=0.25, class_floor=0.5)
    np.testing.assert_array_equal(kept, [0, 1, 4])


def _data(X, y):
    return prepare_data(X, y, len(np.unique(y)), "tabular")


def test_run_partitions_every_sample_once():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 5)
    y = (X[:, 0] > 0).astype(np.int64)
    comps = ispl_run(
        _data(X, y), SGDClassifier(loss="log_loss"), 0, "cpu", 4, 2, 1, 0.25, 0.9, 0.125
    )
    assert len(comps) == 4
    idx = np.concatenate(comps)
    np.testing.assert_array_equal(np.sort(idx), np.arange(300))
    # Target sizes: about a quarter of the remaining samples each round.
    assert all(40 <= len(c) <= 120 for c in comps)


def test_incompatible_samples_are_split_off():
    """Samples whose labels contradict the rest end up in their own components."""
    rng = np.random.RandomState(0)
    X = rng.randn(800, 2)
    y = (X[:, 0] > 0).astype(np.int64)
    flipped = rng.rand(800) < 0.1
    y = np.where(flipped, 1 - y, y)
    comps = ispl_run(
        _data(X, y), SGDClassifier(loss="log_loss"), 0, "cpu", 8, 3, 2, 0.25, 0.9, 0.125
    )
    poison_share = np.array([flipped[c].mean() for c in comps])
    # Most components are clean, and the flipped samples pile up in a few
    # (base rate: 10%).
    assert (poison_share < 0.05).sum() >= 4
    assert poison_share.max() > 0.3


def test_run_stops_early_on_small_pools():
    X = np.random.RandomState(0).randn(20, 3)
    y = np.repeat([0, 1], 10)
    comps = ispl_run(
        _data(X, y), SGDClassifier(loss="log_loss"), 0, "cpu", 8, 1, 1, 0.25, 0.9, 0.125
    )
    assert len(comps) < 8
    np.testing.assert_array_equal(np.sort(np.concatenate(comps)), np.arange(20))
