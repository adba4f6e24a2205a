"""The trigger check: kept samples that carry the removed poison's trigger."""

import numpy as np
import pytest

from sklearn_ispl._validation import prepare_data
from sklearn_ispl.experimental._trigger import MIN_GROUP, trigger_check

from .conftest import half_bright_images

TRIGGER = (11, 5), (11, 6), (10, 6)


def _scene(n=1200, removed_poison=80, kept_poison=6, trigger=True, seed=0):
    """Two classes (a bright left or right half) and an L-shaped trigger.

    ``removed_poison`` class-0 images carry label 1, and the trigger when
    ``trigger``; the filter's earlier stages removed them, and a judge blind
    to the trigger sees class 0 in them. ``kept_poison`` class-1 images
    carry the trigger too: they look like their label, so they were kept.
    Returns the images, labels, keep mask, the judge's look, the removed
    poison and the kept poison.
    """
    rng = np.random.RandomState(seed)
    truth, X = half_bright_images(rng, n)
    removed = np.zeros(n, dtype=bool)
    removed[rng.choice(np.flatnonzero(truth == 0), removed_poison, replace=False)] = 1
    alike = np.zeros(n, dtype=bool)
    alike[rng.choice(np.flatnonzero(truth == 1), kept_poison, replace=False)] = 1
    if trigger:
        _stamp(X, removed | alike)
    y = np.where(removed, 1, truth)
    return X, y, ~removed, truth, removed, alike


def _stamp(X, rows, value=2.5):
    for r, c in TRIGGER:
        X[rows, r, c] = value


def _check(X, y, keep, look, removed=None):
    return trigger_check(prepare_data(X, y, 2, "nhw"), keep, look, removed)


def test_kept_samples_with_the_removed_poisons_trigger_are_dropped():
    X, y, keep, look, removed, kept_poison = _scene()
    before = keep.copy(), X.copy()
    carriers, pairs = _check(X, y, keep, look)
    np.testing.assert_array_equal(keep, before[0])
    np.testing.assert_array_equal(X, before[1])
    # Every sample of the label with the trigger, removed or kept; no other.
    np.testing.assert_array_equal(carriers, removed | kept_poison)
    [pair] = pairs
    assert (pair["label"], pair["look"], pair["group"]) == (1, 0, 80)
    # It names the trigger: where it is and its value (the data's maximum).
    assert sorted(pair["features"]) == sorted((0, r, c) for r, c in TRIGGER)
    assert pair["levels"] == [255, 255, 255]
    assert pair["share"] == 1.0
    assert pair["found"]
    assert (pair["carriers"], pair["kept"]) == (86, 6)


def test_groups_come_from_the_removed_samples_given():
    X, y, keep, look, removed, kept_poison = _scene()
    # Everything kept, but the removed poison named as the evidence.
    everything = np.ones(len(y), dtype=bool)
    carriers, [pair] = _check(X, y, everything, look, removed=removed)
    np.testing.assert_array_equal(carriers, removed | kept_poison)
    assert pair["kept"] == 86
    assert _check(X, y, everything, look)[1] == []


def test_a_removed_group_without_a_trigger_drops_nothing():
    # Mislabelled class-0 images with nothing in common but their look.
    X, y, keep, look, _, _ = _scene(trigger=False)
    drop, [pair] = _check(X, y, keep, look)
    assert pair["features"] == [] and not pair["found"]
    assert pair["carriers"] == 0
    assert not drop.any()


def test_a_value_common_in_other_classes_is_not_a_trigger():
    # The same pixels at the same value in a tenth of the kept class-0
    # images: a feature of the data, not a stamp on the poison.
    X, y, keep, look, _, _ = _scene()
    _stamp(X, keep & (y == 0) & (np.arange(len(y)) % 10 == 0))
    drop, [pair] = _check(X, y, keep, look)
    assert not pair["found"]
    assert not drop.any()


def test_a_value_a_quarter_of_the_label_shares_is_not_poison():
    X, y, keep, look, _, _ = _scene()
    _stamp(X, keep & (y == 1) & (np.arange(len(y)) % 3 == 0))
    drop, [pair] = _check(X, y, keep, look)
    assert sorted(pair["features"]) == sorted((0, r, c) for r, c in TRIGGER)
    assert not pair["found"]
    assert not drop.any()


def test_values_most_of_the_group_lacks_are_not_a_trigger():
    X, y, keep, look, removed, _ = _scene()
    # Half of the removed group without the trigger: under the share bar.
    truth, fresh = half_bright_images(np.random.RandomState(1), 80)
    X[np.flatnonzero(removed)[::2]] = fresh[truth == 0]
    drop, [pair] = _check(X, y, keep, look)
    assert pair["features"] == [] and not pair["found"]
    assert not drop.any()


def test_every_feature_of_a_trigger_must_be_shared_by_the_same_samples():
    X, y, keep, look, removed, kept_poison = _scene(trigger=False)
    # Each pixel at the value in two thirds of the group, all three in none.
    thirds = np.array_split(np.flatnonzero(removed), 3)
    for (r, c), skip in zip(TRIGGER, thirds, strict=True):
        X[np.setdiff1d(np.flatnonzero(removed), skip), r, c] = 2.5
    _stamp(X, kept_poison)
    drop, [pair] = _check(X, y, keep, look)
    assert len(pair["features"]) == 3
    assert pair["share"] == 0.0 and not pair["found"]
    assert not drop.any()


def test_groups_too_small_to_judge_are_not_examined():
    X, y, keep, look, _, _ = _scene(removed_poison=MIN_GROUP - 1)
    drop, pairs = _check(X, y, keep, look)
    assert pairs == []
    assert not drop.any()


@pytest.mark.parametrize("channel", [0, 2])
def test_a_trigger_in_one_channel_is_found_there(channel):
    X, y, keep, look, removed, kept_poison = _scene(trigger=False)
    rgb = np.repeat(X[..., None], 3, axis=-1)
    for r, c in TRIGGER:
        rgb[removed | kept_poison, r, c, channel] = 2.5
    drop, [pair] = trigger_check(prepare_data(rgb, y, 2, "nhwc"), keep, look)
    np.testing.assert_array_equal(drop, removed | kept_poison)
    assert sorted(pair["features"]) == sorted((channel, r, c) for r, c in TRIGGER)
