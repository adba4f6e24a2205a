"""The vote stage: counting rules, and the voter on its own."""

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier

from sklearn_ispl import BoostedComponentVoter
from sklearn_ispl._vote import (
    balanced_subsample,
    check_components,
    competent_vote,
    component_vote,
    sample_vote,
)

from .conftest import flipped_labels


class TestSampleVote:
    def test_modal_vote_decides(self):
        y = np.array([0, 1, 2])
        predictions = np.array([[0, 1, 1], [0, 0, 2], [1, 0, 2], [0, 0, 2]])
        keep, scores = sample_vote(predictions, y, 2, np.random.RandomState(0))
        np.testing.assert_array_equal(keep, [True, False, True])
        np.testing.assert_allclose(scores, [0.75, 0.25, 0.75])

    def test_winner_needs_min_votes(self):
        y = np.array([0])
        predictions = np.array([[0], [1], [2], [3]])  # four-way tie, one vote each
        keep, _ = sample_vote(predictions, y, 2, np.random.RandomState(0))
        assert not keep[0]

    def test_ties_are_broken_at_random(self):
        y = np.zeros(4000, dtype=int)
        predictions = np.vstack([np.zeros(4000, int)] * 2 + [np.ones(4000, int)] * 2)
        keep, scores = sample_vote(predictions, y, 2, np.random.RandomState(0))
        np.testing.assert_allclose(scores, 0.5)
        assert 0.45 < keep.mean() < 0.55

    def test_min_votes_capped_by_voters(self):
        keep, _ = sample_vote(
            np.array([[1]]), np.array([1]), 2, np.random.RandomState(0)
        )
        assert keep[0]


def test_component_vote_is_size_weighted():
    y = np.array([0] * 6 + [1] * 4)
    components = [np.arange(6), np.arange(6, 10)]
    # Learner 0 (weight 6) supports component 0 only; learner 1 (weight 4)
    # supports both.
    predictions = np.array([[0] * 6 + [0] * 4, [0] * 6 + [1] * 4])
    keep, scores = component_vote(predictions, components, y)
    np.testing.assert_allclose(scores, [1.0] * 6 + [0.4] * 4)
    np.testing.assert_array_equal(keep, [True] * 6 + [False] * 4)


class TestCompetentVote:
    # Four samples of class 0, four of class 1; component 0 holds classes 0
    # only, component 1 both, component 2 class 1 only.
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    components = [np.array([0, 1]), np.array([2, 4]), np.array([5, 6])]

    def test_only_competent_outsiders_judge(self):
        # Learner 2 never saw class 0 and calls everything 1: it must not
        # judge the class-0 samples. Learner 0 knows class 0 but not 1.
        predictions = np.array(
            [
                [0, 0, 0, 0, 0, 0, 0, 0],
                [0, 0, 0, 1, 1, 1, 1, 0],
                [1, 1, 1, 1, 1, 1, 1, 1],
            ]
        )
        keep, scores = competent_vote(predictions, self.components, self.y, 2, 0.5, 0.6)
        # Sample 3 (class 0): judges are learners 0 and 1 (outsiders knowing
        # class 0); they split 0 / 1, so no 60% agreement on another label.
        # Sample 7 (class 1): judges are learners 1 and 2; learner 1 says 0.
        np.testing.assert_array_equal(
            keep, [True, True, True, True, True, True, True, True]
        )
        np.testing.assert_allclose(scores[[3, 7]], [0.5, 0.5])
        # Sample 0 is judged by learner 1 only (learner 0 trained on it).
        assert scores[0] == 1.0

    def test_agreement_on_another_label_removes(self):
        predictions = np.array(
            [
                [0, 0, 0, 1, 0, 0, 0, 0],
                [0, 0, 0, 1, 1, 1, 1, 1],
                [1, 1, 1, 1, 1, 1, 1, 1],
            ]
        )
        keep, scores = competent_vote(predictions, self.components, self.y, 2, 0.5, 0.6)
        # Both judges of sample 3 (learners 0 and 1) call it class 1.
        assert not keep[3]
        assert scores[3] == 0.0
        assert keep[[0, 1, 2, 4, 5, 6, 7]].all()

    def test_falls_back_to_all_outsiders(self):
        # Samples 0 and 1 are in component 0, the only one that knows class
        # 0 well enough; the others (outsiders) still judge them.
        components = [np.array([0, 1]), np.array([2, 4, 5]), np.array([6, 7])]
        predictions = np.array([[1] * 8, [1] * 8, [1] * 8])
        keep, scores = competent_vote(predictions, components, self.y, 2, 1.0, 0.6)
        assert not keep[:2].any()
        np.testing.assert_allclose(scores[:2], 0.0)
        # A sample no learner can judge is kept.
        every = [np.arange(8)]
        keep, scores = competent_vote(predictions[:1], every, self.y, 2, 1.0, 0.6)
        assert keep.all()


def test_check_components_accepts_labels_lists_and_masks():
    labels = np.array([0, 0, 1, -1, 1])
    out = check_components(labels, 5)
    assert [c.tolist() for c in out] == [[0, 1], [2, 4]]
    mask = np.array([True, False, False, True, False])
    out = check_components([mask, [4, 2, 2]], 5)
    assert [c.tolist() for c in out] == [[0, 3], [2, 4]]


@pytest.fixture(scope="module")
def label_noise():
    return flipped_labels(400, 2, 0.1, seed=1, n_features=8, class_sep=2.5)


@pytest.mark.parametrize("voting", ["sample", "component"])
def test_voter_rejects_a_poisoned_component(label_noise, voting):
    """Given the true split, the vote rejects the component of flipped labels."""
    X, y, flipped = label_noise
    clean = np.flatnonzero(~flipped)
    components = [clean[::3], clean[1::3], clean[2::3], np.flatnonzero(flipped)]
    voter = BoostedComponentVoter(
        SGDClassifier(loss="log_loss"), n_epochs=5, voting=voting, random_state=0
    ).fit(X, y, components=components)
    assert voter.keep_mask_[flipped].mean() < 0.1
    assert voter.keep_mask_[~flipped].mean() > 0.9
    assert voter.predictions_.shape == (4, len(y))
    assert len(voter.components_) == 4


def test_voter_fit_resample_with_component_labels(label_noise):
    X, y, _ = label_noise
    labels = np.arange(len(y)) % 4
    voter = BoostedComponentVoter(
        SGDClassifier(loss="log_loss"), n_epochs=3, random_state=0
    )
    X_kept, y_kept = voter.fit_resample(X, y, components=labels)
    np.testing.assert_array_equal(X_kept, X[voter.keep_mask_])
    assert len(voter.components_) == 4


@pytest.mark.parametrize("seed", range(3))
def test_balanced_subsample_fills_rare_classes_first(seed):
    y = np.repeat([0, 1, 2, 3], [5, 100, 40, 300])
    rows = np.random.RandomState(seed).permutation(len(y))[:400]
    picked = balanced_subsample(rows, y, 100, np.random.RandomState(seed))
    assert len(picked) == 100 and len(np.unique(picked)) == 100
    assert np.isin(picked, rows).all()
    have = np.bincount(y[rows], minlength=4)
    got = np.bincount(y[picked], minlength=4)
    # Classes short of an even share give every row; the others split the
    # rest evenly (within one row).
    short = have < got.max()
    np.testing.assert_array_equal(got[short], have[short])
    assert got[~short].max() - got[~short].min() <= 1


class TestMaxSamples:
    @pytest.fixture
    def trained_rows(self, monkeypatch):
        """Rows each component learner trains on, in build order."""
        from sklearn_ispl import _vote

        rows = []
        real = _vote.build_learner

        def build(*args, **kwargs):
            learner = real(*args, **kwargs)
            fit = learner.fit_epochs

            def fit_epochs(indices, epochs):
                rows.append(np.asarray(indices).copy())
                return fit(indices, epochs)

            learner.fit_epochs = fit_epochs
            return learner

        monkeypatch.setattr(_vote, "build_learner", build)
        return rows

    @pytest.mark.parametrize(
        "max_samples, sizes", [(30, [30, 30, 20]), (0.5, [25, 50, 10])]
    )
    def test_learners_train_on_a_subsample_of_their_component(
        self, label_noise, trained_rows, max_samples, sizes
    ):
        X, y, _ = label_noise
        components = [np.arange(0, 50), np.arange(50, 150), np.arange(150, 170)]
        voter = BoostedComponentVoter(
            SGDClassifier(loss="log_loss"),
            n_epochs=1,
            max_samples=max_samples,
            random_state=0,
            # One task at a time: the spy records trainings in call order.
            n_jobs=1,
        ).fit(X, y, components=components)
        assert [len(r) for r in trained_rows] == sizes
        for rows, comp in zip(trained_rows, components, strict=True):
            assert np.isin(rows, comp).all() and len(np.unique(rows)) == len(rows)
        # Every learner still votes on every sample.
        assert voter.predictions_.shape == (3, len(y))

    def test_a_cap_above_every_component_changes_nothing(self, label_noise):
        X, y, _ = label_noise
        labels = np.arange(len(y)) % 4

        def fit(max_samples):
            return BoostedComponentVoter(
                SGDClassifier(loss="log_loss"),
                n_epochs=3,
                max_samples=max_samples,
                random_state=0,
            ).fit(X, y, components=labels)

        np.testing.assert_array_equal(fit(None).predictions_, fit(len(y)).predictions_)
        np.testing.assert_array_equal(fit(None).predictions_, fit(1.0).predictions_)

    @pytest.mark.parametrize("bad", [0, -3, 1.5, 0.0, "all"])
    def test_bad_max_samples_is_refused_before_training(
        self, label_noise, trained_rows, bad
    ):
        X, y, _ = label_noise
        voter = BoostedComponentVoter(SGDClassifier(loss="log_loss"), max_samples=bad)
        with pytest.raises(ValueError, match="max_samples"):
            voter.fit(X, y, components=np.arange(len(y)) % 4)
        assert trained_rows == []
