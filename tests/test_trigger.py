"""The trigger check: kept samples that share the removed poison's trigger."""

import numpy as np

from sklearn_ispl._trigger import MIN_GROUP, trigger_check
from sklearn_ispl._validation import prepare_data

from .conftest import half_bright_images

TRIGGER = (11, 5), (11, 6), (10, 6)


def _scene(n=1200, removed_poison=80, kept_poison=6, trigger=True, seed=0):
    """Two classes (a bright left or right half) and an L-shaped trigger.

    ``removed_poison`` class-0 images carry label 1, and the trigger when
    ``trigger``; the filter's earlier stages removed them, and a judge blind
    to the trigger sees class 0 in them. ``kept_poison`` class-1 images
    carry the trigger too: they look like their label, so they were kept.
    Returns the prepared data, the keep mask, the judge's look, the removed
    poison and the kept poison.
    """
    rng = np.random.RandomState(seed)
    truth, X = half_bright_images(rng, n)
    removed = np.zeros(n, dtype=bool)
    removed[rng.choice(np.flatnonzero(truth == 0), removed_poison, replace=False)] = 1
    alike = np.zeros(n, dtype=bool)
    alike[rng.choice(np.flatnonzero(truth == 1), kept_poison, replace=False)] = 1
    if trigger:
        for r, c in TRIGGER:
            X[removed | alike, r, c] = 2.5
    y = np.where(removed, 1, truth)
    data = prepare_data(X, y, 2, "nhw")
    return data, ~removed, truth, removed, alike


def test_kept_samples_with_the_removed_poisons_trigger_are_dropped():
    data, keep, look, _, kept_poison = _scene()
    before = keep.copy()
    drop, pairs = trigger_check(data, keep, look, 0.9, seed=0)
    np.testing.assert_array_equal(keep, before)
    assert drop[kept_poison].all()
    # Few clean samples of the label score like the group.
    clean_label = keep & (data.y == 1) & ~kept_poison
    assert (drop & clean_label).sum() <= 0.02 * clean_label.sum()
    assert not (drop & ~keep).any()
    assert not drop[data.y == 0].any()
    [pair] = pairs
    assert (pair["label"], pair["look"], pair["group"]) == (1, 0, 80)
    assert pair["auc"] >= 0.9
    assert pair["dropped"] == drop.sum()
    again, _ = trigger_check(data, keep, look, 0.9, seed=0)
    np.testing.assert_array_equal(drop, again)


def test_a_removed_group_without_a_trigger_drops_nothing():
    # Mislabelled class-0 images with nothing in common but their look: a
    # few pixels cannot tell them from the kept class-0 images.
    data, keep, look, _, _ = _scene(trigger=False)
    drop, [pair] = trigger_check(data, keep, look, 0.9, seed=0)
    assert pair["auc"] < 0.8
    assert pair["dropped"] == 0
    assert not drop.any()


def test_the_auc_bar_decides_whether_a_pair_is_acted_on():
    data, keep, look, _, kept_poison = _scene()
    _, [pair] = trigger_check(data, keep, look, 0.9, seed=0)
    drop, [above] = trigger_check(data, keep, look, min(1.0, pair["auc"] + 1e-9), 0)
    assert above["dropped"] == 0 and not drop.any()


def test_the_same_seed_gives_the_same_detectors():
    # Without a trigger the detector's fit is not trivial: unseeded, the
    # solver's shuffling moves the AUC in its last digits between calls.
    data, keep, look, _, _ = _scene(trigger=False)
    first = trigger_check(data, keep, look, 0.9, seed=0)[1]
    for _ in range(4):
        assert trigger_check(data, keep, look, 0.9, seed=0)[1] == first


def test_groups_too_small_to_judge_are_not_examined():
    data, keep, look, _, _ = _scene(removed_poison=MIN_GROUP - 1)
    drop, pairs = trigger_check(data, keep, look, 0.5, seed=0)
    assert pairs == []
    assert not drop.any()
