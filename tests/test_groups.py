"""The group decision's rule: which (label, look) groups are flagged and
which samples leave with them."""

import numpy as np
import pytest

from sklearn_ispl.experimental._groups import poison_groups


def _probabilities():
    """Three classes of 100 agreeing samples, and planted disagreements."""
    y, rows = [], []

    def add(label, proba, n=1):
        y.extend([label] * n)
        rows.extend([proba] * n)

    for label in range(3):
        proba = [0.01, 0.01, 0.01]
        proba[label] = 0.98
        add(label, proba, 100)
    # Label 1, confidently class 0: a poison-like group.
    add(1, [0.99, 0.005, 0.005], 16)
    add(1, [0.8, 0.15, 0.05], 4)
    # Label 2 that looks like class 0 without confidence: look-alikes.
    add(2, [0.6, 0.1, 0.3], 20)
    # Confident, but too few to be a group.
    add(0, [0.01, 0.01, 0.98], 5)
    # Label 1 pulled towards class 2, still leaning to class 0 over 1 ...
    add(1, [0.3, 0.2, 0.5])
    # ... and one that leans to its label over class 0.
    add(1, [0.1, 0.3, 0.6])
    # Label 2 that half looks like class 0: the look-alikes' continuum.
    add(2, [0.3, 0.1, 0.6], 30)
    return np.array(y), np.array(rows)


def test_flags_only_groups_of_confident_contradictions():
    y, proba = _probabilities()
    groups, removed = poison_groups(y, proba, 0.97, 0.7, 10, 3.0)
    assert groups == [
        # 20 samples of label 1 lean to class 0, 2 half do: 20 / (2 + 1).
        {
            "label": 1,
            "look": 0,
            "size": 20,
            "share": 0.8,
            "isolation": 6.6667,
            "blind_isolation": None,
            "flagged": True,
        },
        # 20 lean to class 0 within a crowd of 30 that half do.
        {
            "label": 2,
            "look": 0,
            "size": 20,
            "share": 0.0,
            "isolation": 0.6452,
            "blind_isolation": None,
            "flagged": False,
        },
    ]
    expected = np.zeros(len(y), dtype=bool)
    expected[300:320] = True  # the flagged group
    expected[345] = True  # its label, more likely its look than its label
    np.testing.assert_array_equal(removed, expected)


@pytest.mark.parametrize(
    "min_share, min_size, flagged",
    [(0.8, 10, True), (0.81, 10, False), (0.7, 21, False), (0.7, 5, True)],
)
def test_share_and_size_bounds_are_inclusive(min_share, min_size, flagged):
    y, proba = _probabilities()
    groups, removed = poison_groups(y, proba, 0.97, min_share, min_size)
    first = {(g["label"], g["look"]): g["flagged"] for g in groups}
    assert first.get((1, 0), False) is flagged
    assert bool(removed[300:320].all()) is flagged
    # The small confident group (0, 2) only counts from size 5.
    assert ((0, 2) in first) is (min_size <= 5)


def test_agreement_everywhere_removes_nothing():
    y = np.repeat(np.arange(3), 20)
    proba = np.full((60, 3), 0.01)
    proba[np.arange(60), y] = 0.98
    groups, removed = poison_groups(y, proba, 0.97, 0.7, 10)
    assert groups == [] and not removed.any()


def _unconfident_cluster(n_between):
    """Label 1 with a group of 15 that look like class 0 without confidence,
    and ``n_between`` samples of label 1 that half look like class 0."""
    y = np.repeat([0, 1], 100)
    proba = np.tile([0.01, 0.99], (200, 1))
    proba[:100] = [0.99, 0.01]
    y = np.concatenate([y, np.ones(15 + n_between, dtype=int)])
    proba = np.concatenate(
        [proba, np.tile([0.9, 0.1], (15, 1)), np.tile([0.2, 0.8], (n_between, 1))]
    )
    return y, proba


@pytest.mark.parametrize(
    "n_between, min_isolation, flagged",
    [
        (0, 3.0, True),  # a cluster of its own: isolation 15
        (4, 3.0, True),  # 15 / 5 = 3, the bound is inclusive
        (5, 3.0, False),  # 15 / 6 = 2.5
        (0, np.inf, False),  # by the share of confident members only
    ],
)
def test_isolated_groups_are_flagged_without_confidence(
    n_between, min_isolation, flagged
):
    y, proba = _unconfident_cluster(n_between)
    groups, removed = poison_groups(y, proba, 0.97, 0.7, 10, min_isolation)
    assert [(g["label"], g["look"], g["share"]) for g in groups] == [(1, 0, 0.0)]
    assert groups[0]["flagged"] is flagged
    assert bool(removed[200:215].all()) is flagged
    # The samples that only half look like class 0 stay in either case.
    assert not removed[215:].any()


def test_default_flags_groups_whose_median_member_is_a_near_certain_contradiction():
    """With its defaults the group decision flags a group when at least half
    of it is a contradiction of 0.997 or more, however unsure the rest is,
    and leaves a group of look-alikes that are merely confident."""
    from sklearn_ispl.experimental import GroupDecision

    stage = GroupDecision()
    y = np.repeat([0, 1, 2], 100)
    proba = np.full((300, 3), 0.001)
    proba[np.arange(300), y] = 0.998
    # Label 1: 10 near-certain class-0 images and 8 unsure ones (poison whose
    # trigger blurs part of it): share 10 / 18 at 0.997, 10 / 18 at 0.97.
    near = np.tile([0.9985, 0.001, 0.0005], (10, 1))
    unsure = np.tile([0.8, 0.15, 0.05], (8, 1))
    # Label 2: 20 look-alikes of class 0, confident but not near-certain.
    alike = np.tile([0.99, 0.001, 0.009], (20, 1))
    # Samples of labels 1 and 2 that half look like class 0: neither group
    # stands apart from its label (isolation under 3), so only the share of
    # near-certain members can flag it.
    half_1 = np.tile([0.3, 0.6, 0.1], (10, 1))
    half_2 = np.tile([0.3, 0.1, 0.6], (10, 1))
    y = np.concatenate(
        [y, np.ones(18, dtype=int), np.full(20, 2), np.ones(10, int), np.full(10, 2)]
    )
    proba = np.concatenate([proba, near, unsure, alike, half_1, half_2])
    groups, removed = poison_groups(
        y,
        proba,
        stage.confidence,
        stage.min_share,
        stage.min_size,
        stage.min_isolation,
    )
    flagged = {(g["label"], g["look"]): g["flagged"] for g in groups}
    assert flagged == {(1, 0): True, (2, 0): False}
    assert removed[300:318].all() and not removed[318:].any()
    # The earlier thresholds (0.97 for 70% of the group) read it the other
    # way round: the poison-like group under its share, the look-alikes over.
    groups, _ = poison_groups(y, proba, 0.97, 0.7, 10, stage.min_isolation)
    flagged = {(g["label"], g["look"]): g["flagged"] for g in groups}
    assert flagged == {(1, 0): False, (2, 0): True}


def _blurred_cluster(n_core, n_fringe):
    """Label 1 with a group of 15 that the refine models half blur (their
    isolation 15 / 11, under 3) and a trigger-blind view in which ``n_core``
    of the label's samples look like class 0 and ``n_fringe`` half do: the
    group's 15 first, then label-1 samples the refine models call 1 (poison
    whose trigger they learned)."""
    y, proba = _unconfident_cluster(10)
    blind = np.zeros_like(proba)
    blind[np.arange(len(y)), y] = 1.0
    ones = np.concatenate([np.arange(200, 215), np.arange(100, 200)])
    blind[ones[: n_core + n_fringe]] = [0.4, 0.6]  # the fringe
    blind[ones[:n_core]] = [0.8, 0.2]  # the core
    return y, proba, blind


@pytest.mark.parametrize(
    "n_core, n_fringe, min_blind_isolation, flagged",
    [
        (15, 0, 1.5, True),  # a cluster of its own in the blind view: 15
        (15, 9, 1.5, True),  # 15 / 10, the bound is inclusive
        (15, 10, 1.5, False),  # 15 / 11: a continuum
        (15, 0, np.inf, False),  # the blind view not read
        (9, 0, 1.5, False),  # fewer than min_size samples: no cluster
        (20, 2, 1.5, True),  # the judge's cluster reaches beyond the group
    ],
)
def test_blind_isolation_flags_what_the_refine_models_blur(
    n_core, n_fringe, min_blind_isolation, flagged
):
    y, proba, blind = _blurred_cluster(n_core, n_fringe)
    groups, removed = poison_groups(
        y, proba, 0.97, 0.7, 10, 3.0, blind, min_blind_isolation
    )
    (group,) = groups
    assert (group["label"], group["look"], group["isolation"]) == (1, 0, 1.3636)
    assert group["blind_isolation"] == round(n_core / (n_fringe + 1), 4)
    assert group["flagged"] is flagged
    expected = np.zeros(len(y), dtype=bool)
    if flagged:
        # The group's members, and every sample of its label the judge
        # takes for class 0 (not those it only half does).
        expected[200:215] = True
        expected[(y == 1) & (blind[:, 0] >= 0.5)] = True
    np.testing.assert_array_equal(removed, expected)
    assert removed[100:200].sum() == max(0, n_core - 15) * flagged


def test_blind_isolation_is_none_without_a_blind_view():
    y, proba, _ = _blurred_cluster(15, 0)
    (group,), removed = poison_groups(y, proba, 0.97, 0.7, 10, 3.0)
    assert group["blind_isolation"] is None and not group["flagged"]
    assert not removed.any()
