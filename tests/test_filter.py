"""ISPLFilter end to end: the defense works, and behaves as an estimator."""

import numpy as np
import pytest
from imblearn.pipeline import make_pipeline
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import GridSearchCV

from sklearn_ispl import BoostedComponentVoter, ISPLFilter, SelfTraining
from sklearn_ispl.experimental import (
    GroupDecision,
    GroupTriggerTest,
    LabelCompatibilityTest,
    Rescue,
    StampedTriggerCheck,
    TriggerBlindJudge,
)
from sklearn_ispl.metrics import targeted_misclassification_rate

from .conftest import flipped_labels, linear_ispl, tiny_ispl

_linear = linear_ispl


def _asr(clf, X, y, attack):
    flat = X.reshape(len(X), -1)
    triggered = attack.apply_trigger(X).reshape(len(X), -1)
    return targeted_misclassification_rate(
        y, clf.predict(flat), clf.predict(triggered), attack.source, attack.target
    )


@pytest.fixture(scope="module")
def fitted_on_digits(poisoned_digits):
    X, y, _, _ = poisoned_digits
    # The default: schedule="auto" resolves to "small" on digits.
    return ISPLFilter(random_state=0).fit(X, y)


class TestDefenseWorks:
    def test_removes_the_poison(self, fitted_on_digits, poisoned_digits):
        _, _, poison, _ = poisoned_digits
        kept = fitted_on_digits.keep_mask_
        assert poison.sum() >= 30
        assert (kept & poison).sum() <= 2, "poison kept"
        clean_removed = (~kept & ~poison).sum() / (~poison).sum()
        assert clean_removed <= 0.10, f"{clean_removed:.1%} of clean removed"

    def test_poison_concentrates_in_few_components(
        self, fitted_on_digits, poisoned_digits
    ):
        _, _, poison, _ = poisoned_digits
        ispl = fitted_on_digits
        for run in np.unique(ispl.component_runs_):
            comps = [
                c
                for c, r in zip(ispl.components_, ispl.component_runs_, strict=True)
                if r == run
            ]
            shares = sorted((poison[c].sum() for c in comps), reverse=True)
            # Three components of eight hold most of the poison of the run,
            # and several hold none.
            assert sum(shares[:3]) >= 0.85 * poison.sum()
            assert shares.count(0) >= 3

    def test_poison_gets_low_scores(self, fitted_on_digits, poisoned_digits):
        _, _, poison, _ = poisoned_digits
        scores = fitted_on_digits.scores_
        assert np.median(scores[poison]) < 0.5 < np.median(scores[~poison])

    def test_classifier_on_kept_data_resists_the_attack(
        self, fitted_on_digits, poisoned_digits
    ):
        X, y, poison, attack = poisoned_digits
        rng = np.random.RandomState(1)
        test = rng.rand(len(y)) < 0.3
        # Evaluate on clean test samples with their true labels.
        clean_test = test & ~poison
        train = ~test
        flat = X.reshape(len(X), -1)
        on_all = LogisticRegression(max_iter=3000).fit(flat[train], y[train])
        kept = train & fitted_on_digits.keep_mask_
        on_kept = LogisticRegression(max_iter=3000).fit(flat[kept], y[kept])
        asr_all = _asr(on_all, X[clean_test], y[clean_test], attack)
        asr_kept = _asr(on_kept, X[clean_test], y[clean_test], attack)
        assert asr_all > 0.5
        assert asr_kept < 0.1

    def test_fitted_attributes(self, fitted_on_digits, poisoned_digits):
        X, y, _, _ = poisoned_digits
        ispl = fitted_on_digits
        n = len(y)
        assert ispl.keep_mask_.shape == (n,) and ispl.keep_mask_.dtype == bool
        np.testing.assert_array_equal(
            ispl.sample_indices_, np.flatnonzero(ispl.keep_mask_)
        )
        assert ispl.scores_.shape == (n,)
        assert np.all((ispl.scores_ >= 0) & (ispl.scores_ <= 1))
        assert len(ispl.components_) == len(ispl.component_runs_)
        # Each run partitions the whole training set.
        for run in np.unique(ispl.component_runs_):
            idx = np.concatenate(
                [
                    c
                    for c, r in zip(ispl.components_, ispl.component_runs_, strict=True)
                    if r == run
                ]
            )
            np.testing.assert_array_equal(np.sort(idx), np.arange(n))
        np.testing.assert_array_equal(ispl.classes_, np.arange(10))
        assert ispl.n_features_in_ == 64
        assert ispl.input_layout_ == "nhw"
        assert ispl.vote_keep_mask_.shape == (n,)
        assert np.all(np.isfinite(ispl.refine_scores_))
        proba = ispl.refine_proba_
        assert proba.shape == (n, 10)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
        # The support of each label is read from these probabilities.
        np.testing.assert_array_equal(
            ispl.refine_scores_, proba[np.arange(n), np.searchsorted(ispl.classes_, y)]
        )

    def test_schedule_records_what_ran(self, fitted_on_digits):
        from sklearn_ispl import SCHEDULES

        record = fitted_on_digits.schedule_
        small = SCHEDULES["small"]
        assert record["schedule"] == "small"
        assert (
            record["n_runs"]
            == small["n_runs"]
            == len(np.unique(fitted_on_digits.component_runs_))
        )
        assert record["voter__n_epochs"] == small["voter"]["n_epochs"]
        assert record["refiner__n_rounds"] == small["refiner"]["n_rounds"]
        assert record["extra_stages"] == []
        assert fitted_on_digits.extra_stages_ == []
        # The constructor's parameters are left as given.
        assert fitted_on_digits.n_runs is None and fitted_on_digits.voter is None


def _small(**params):
    """Few epochs, but enough for learners that predict better than chance."""
    settings = dict(
        n_components=3,
        warmup_epochs=3,
        epochs_per_iteration=2,
        voter=BoostedComponentVoter(n_epochs=8),
        refiner__n_rounds=2,
        refiner__n_epochs=2,
    )
    settings.update(params)
    return tiny_ispl(**settings)


def test_fit_resample_returns_the_kept_rows(poisoned_digits):
    X, y, _, _ = poisoned_digits
    ispl = _small()
    X_kept, y_kept = ispl.fit_resample(X, y)
    np.testing.assert_array_equal(X_kept, X[ispl.keep_mask_])
    np.testing.assert_array_equal(y_kept, y[ispl.keep_mask_])
    assert 0 < len(y_kept) <= len(y)


def test_random_state_fixes_the_result(poisoned_digits):
    X, y, _, _ = poisoned_digits
    a = _small(random_state=3).fit(X, y)
    b = _small(random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.keep_mask_, b.keep_mask_)
    np.testing.assert_array_equal(a.scores_, b.scores_)
    c = _small(random_state=4).fit(X, y)
    assert not all(
        np.array_equal(p, q) for p, q in zip(a.components_, c.components_, strict=False)
    )


def test_n_jobs_does_not_change_the_result(poisoned_digits):
    X, y, _, _ = poisoned_digits
    a = _linear(random_state=5).fit(X, y)
    b = _linear(random_state=5, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(a.keep_mask_, b.keep_mask_)
    np.testing.assert_array_equal(a.scores_, b.scores_)


class TestEstimatorAPI:
    def test_nested_params(self):
        voter = BoostedComponentVoter(n_epochs=7)
        ispl = ISPLFilter(voter=voter)
        params = ispl.get_params()
        assert params["voter__n_epochs"] == 7
        ispl.set_params(voter__voting="component", expansion=0.5)
        assert ispl.get_params()["voter__voting"] == "component"
        assert ispl.expansion == 0.5
        # The object passed in is never changed: nested settings are applied
        # to a copy at fit time.
        assert voter.voting == "sample"
        cloned = clone(ispl)
        assert cloned.voter is not ispl.voter
        assert cloned.get_params()["voter__voting"] == "component"

    def test_nested_params_with_every_default_in_place(self):
        ispl = ISPLFilter()
        ispl.set_params(voter__n_epochs=5, weak_learner__lr=0.01, refiner__n_rounds=2)
        params = clone(ispl).get_params(deep=False)
        assert params["voter__n_epochs"] == 5
        assert params["weak_learner__lr"] == 0.01
        assert params["refiner__n_rounds"] == 2
        assert ispl.voter is None and ispl.weak_learner is None
        with pytest.raises(ValueError, match="no parameter 'nope'"):
            ISPLFilter(nope=1).fit(np.zeros((20, 4)), np.arange(20) % 2)
        with pytest.raises(ValueError, match="Invalid parameter"):
            ispl.set_params(nope=1)

    def test_explicit_values_win_over_the_schedule(self, poisoned_digits):
        X, y, _, _ = poisoned_digits
        rows = np.random.RandomState(0).choice(len(y), 300, replace=False)
        ispl = ISPLFilter(
            schedule="medium",
            n_runs=1,
            n_components=2,
            warmup_epochs=1,
            epochs_per_iteration=1,
            voter__n_epochs=1,
            refiner__n_rounds=1,
            refiner__n_epochs=1,
            extra_stages=[],
            random_state=0,
        ).fit(X[rows], y[rows])
        record = ispl.schedule_
        assert record["schedule"] == "medium"
        assert (record["n_runs"], record["warmup_epochs"]) == (1, 1)
        assert record["voter__n_epochs"] == 1 and record["refiner__n_rounds"] == 1
        # Not given: the schedule's.
        assert record["refiner__n_folds"] == 2 and record["refiner__keep_ratio"] == 0.3
        assert record["weak_learner"]["params"]["module__n_filters"] == 16
        # The default network, sized from the data, in the schedule's precision.
        refine_params = record["refine_learner"]["params"]
        assert refine_params["module__precision"] == "auto"
        assert "module__n_filters" not in refine_params
        assert record["extra_stages"] == [] and ispl.extra_stages_ == []

    @pytest.mark.parametrize(
        "n, name", [(100, "small"), (2999, "small"), (3000, "medium"), (20000, "large")]
    )
    def test_auto_resolves_by_sample_count(self, n, name):
        from sklearn_ispl._schedules import resolve_schedule_name

        assert resolve_schedule_name("auto", n) == name
        assert resolve_schedule_name("paper", n) == "paper"

    @pytest.mark.parametrize(
        "n, epochs", [(20000, 3), (30000, 2), (45000, 1), (60000, 1), (200000, 1)]
    )
    def test_large_refine_rounds_read_as_many_samples_on_any_size(self, n, epochs):
        from sklearn_ispl import SCHEDULES

        refiner = SCHEDULES["large"]["refiner"](n)
        assert refiner["n_epochs"] == epochs
        assert (refiner["n_rounds"], refiner["n_folds"]) == (3, 2)

    def test_large_refiner_is_resolved_for_the_data_size(self):
        from sklearn_ispl._schedules import resolve_settings
        from sklearn_ispl._validation import prepare_data

        rng = np.random.RandomState(0)
        X, y = rng.rand(300, 1, 8, 8).astype(np.float32), np.arange(300) % 3
        data = prepare_data(X, y, 3, "nchw")
        record = resolve_settings(ISPLFilter(schedule="large"), data)["record"]
        assert record["refiner__n_epochs"] == 200
        given = ISPLFilter(schedule="large", refiner__n_epochs=2)
        assert resolve_settings(given, data)["record"]["refiner__n_epochs"] == 2

    def test_paper_schedule_is_appendix_b1(self):
        import torch

        from sklearn_ispl import SCHEDULES

        paper = SCHEDULES["paper"]
        assert (paper["n_runs"], paper["n_components"]) == (3, 8)
        assert (paper["warmup_epochs"], paper["epochs_per_iteration"]) == (8, 4)
        assert (paper["expansion"], paper["momentum"]) == (0.25, 0.9)
        assert paper["class_floor"] == 0.125
        assert paper["voter"] == {"n_epochs": 40, "voting": "sample", "min_votes": 2}
        assert paper["refiner"] == {"n_rounds": 20, "n_epochs": 5, "momentum": 0.8}
        assert paper["weak_learner"]["optimizer"] is torch.optim.SGD
        assert paper["extra_stages"]() == []

    def test_group_decision_follows_the_stages_that_give_samples_back(self):
        from sklearn_ispl import SCHEDULES

        medium = SCHEDULES["medium"]["extra_stages"]()
        large = SCHEDULES["large"]["extra_stages"]()
        # The group trigger test and the label compatibility test read the
        # groups the decision measured.
        assert [type(s) for s in medium] == [
            Rescue,
            GroupDecision,
            LabelCompatibilityTest,
        ]
        assert [type(s) for s in large] == [
            TriggerBlindJudge,
            GroupDecision,
            GroupTriggerTest,
        ]
        assert medium[1].mode == large[1].mode == "add"
        # Each call builds fresh stages: fits never share fitted state.
        assert SCHEDULES["medium"]["extra_stages"]()[0] is not medium[0]

    def test_weak_learner_params_reachable(self):
        from sklearn_ispl import make_weak_learner

        net = make_weak_learner((1, 8, 8), 10)
        ispl = ISPLFilter(weak_learner=net)
        ispl.set_params(weak_learner__lr=0.01, weak_learner__module__n_filters=8)
        assert ispl.get_params()["weak_learner__lr"] == 0.01
        assert ispl.get_params()["weak_learner__module__n_filters"] == 8
        assert net.lr == 1e-3

    def test_has_no_transform(self):
        # imbalanced-learn's Pipeline would call fit_transform and misalign y.
        for est in (ISPLFilter(), BoostedComponentVoter()):
            assert not hasattr(est, "transform")
            assert not hasattr(est, "fit_transform")

    def test_init_only_stores(self):
        learner = SGDClassifier()
        ispl = ISPLFilter(weak_learner=learner, expansion=7)  # invalid, not checked
        assert ispl.weak_learner is learner and ispl.expansion == 7

    @pytest.mark.parametrize(
        "params, match",
        [
            ({"expansion": 0.0}, "expansion"),
            ({"expansion": 1.5}, "expansion"),
            ({"momentum": 1.0}, "momentum"),
            ({"n_runs": 0}, "n_runs"),
            ({"voter": LogisticRegression()}, "voter"),
            ({"weak_learner": LogisticRegression()}, "weak_learner"),
            ({"device": "tpu"}, "device"),
            ({"image_shape": (8, -8)}, "image_shape"),
        ],
    )
    def test_bad_params_are_named(self, params, match, poisoned_digits):
        X, y, _, _ = poisoned_digits
        with pytest.raises(ValueError, match=match):
            tiny_ispl(**params).fit(X, y)


def test_grid_search_reaches_nested_settings_with_every_default(poisoned_digits):
    X, y, _, _ = poisoned_digits
    rows = np.random.RandomState(0).choice(len(y), 400, replace=False)
    pipe = make_pipeline(
        ISPLFilter(
            n_runs=1,
            n_components=2,
            warmup_epochs=1,
            epochs_per_iteration=1,
            refiner__n_rounds=1,
            refiner__n_epochs=1,
            random_state=0,
        ),
        LogisticRegression(max_iter=300),
    )
    grid = {
        "isplfilter__voter__n_epochs": [1, 2],
        "isplfilter__weak_learner__lr": [1e-3, 1e-2],
    }
    search = GridSearchCV(pipe, grid, cv=2).fit(X[rows].reshape(400, -1), y[rows])
    assert len(search.cv_results_["params"]) == 4
    best = search.best_estimator_[0]
    record = best.schedule_
    assert (
        record["voter__n_epochs"] == search.best_params_["isplfilter__voter__n_epochs"]
    )
    best_lr = search.best_params_["isplfilter__weak_learner__lr"]
    assert record["weak_learner"]["params"]["lr"] == best_lr
    assert best.voter is None and best.weak_learner is None


def test_in_pipeline_with_grid_search(poisoned_digits):
    X, y, _, _ = poisoned_digits
    flat = X.reshape(len(X), -1) / 16
    yy = y
    pipe = make_pipeline(_linear(image_shape=(8, 8)), LogisticRegression(max_iter=500))
    pipe.fit(flat, yy)
    assert pipe.predict(flat).shape == yy.shape
    search = GridSearchCV(
        pipe,
        {"isplfilter__expansion": [0.25, 0.5], "isplfilter__refiner__n_rounds": [0, 1]},
        cv=2,
    )
    search.fit(flat, yy)
    assert set(search.best_params_) == {
        "isplfilter__expansion",
        "isplfilter__refiner__n_rounds",
    }
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ > 0.8


def test_cnn_filter_in_pipeline(poisoned_digits):
    X, y, _, _ = poisoned_digits
    pipe = make_pipeline(_small(), LogisticRegression(max_iter=500))
    flat_clf = make_pipeline(
        _small(image_shape=(8, 8)), LogisticRegression(max_iter=500)
    )
    flat = X.reshape(len(X), -1)
    flat_clf.fit(flat, y)
    # The filter acts in fit only: predict sees every sample.
    assert flat_clf.predict(flat).shape == y.shape
    assert flat_clf[0].keep_mask_.sum() < len(y)
    assert pipe[0].get_params()["voter__n_epochs"] == 8


def test_sklearn_weak_learner_on_tabular_data():
    """The same defense on rows, with a linear model as the weak learner."""
    X, y_noisy, flipped = flipped_labels(
        600, 3, 0.08, seed=0, n_features=10, class_sep=2.0
    )
    ispl = ISPLFilter(
        weak_learner=SGDClassifier(loss="log_loss", alpha=1e-3),
        n_runs=2,
        n_components=4,
        voter=BoostedComponentVoter(n_epochs=5),
        refiner__n_rounds=3,
        refiner__n_epochs=2,
        random_state=0,
    ).fit(X, y_noisy)
    assert ispl.input_layout_ == "tabular"
    removed = ~ispl.keep_mask_
    # Flipped labels are removed far more often than correct ones.
    assert removed[flipped].mean() > 0.6
    assert removed[~flipped].mean() < 0.2


def test_failed_refit_leaves_nothing_that_looks_fitted(poisoned_digits):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    X, y, _, _ = poisoned_digits
    ispl = _linear(n_runs=1).fit(X, y)
    check_is_fitted(ispl)
    with pytest.raises(ValueError, match="NaN"):
        ispl.fit(np.full_like(X, np.nan), y)
    with pytest.raises(NotFittedError):
        check_is_fitted(ispl)
    assert not [a for a in vars(ispl) if a.endswith("_") and not a.startswith("_")]


def test_warns_when_most_samples_are_removed(monkeypatch, poisoned_digits):
    import sklearn_ispl._refine as refine_module

    X, y, _, _ = poisoned_digits

    def remove_all(data, *args):
        nan = np.full(len(data), np.nan)
        return np.zeros(len(data), dtype=bool), nan, np.full((len(data), 10), np.nan)

    monkeypatch.setattr(refine_module, "self_train", remove_all)
    ispl = ISPLFilter(
        weak_learner=SGDClassifier(loss="log_loss"),
        n_runs=1,
        n_components=2,
        warmup_epochs=1,
        epochs_per_iteration=1,
        voter=BoostedComponentVoter(n_epochs=1),
        refiner__n_rounds=1,
        random_state=0,
    )
    with pytest.warns(UserWarning, match="kept only 0 of"):
        ispl.fit(X.reshape(len(X), -1), y)


def test_refine_settings_reach_the_refine_stage(monkeypatch, poisoned_digits):
    import sklearn_ispl._refine as refine_module

    X, y, _, _ = poisoned_digits
    calls = []
    real = refine_module.self_train

    def spy(data, weak_learner, keep, seed, device, *args):
        calls.append((weak_learner, args))
        return real(data, weak_learner, keep, seed, device, *args)

    monkeypatch.setattr(refine_module, "self_train", spy)
    refine_model = SGDClassifier(loss="log_loss", alpha=1e-2)
    ispl = _linear(
        n_runs=1,
        refiner__learner=refine_model,
        refiner__n_folds=3,
        refiner__keep_ratio=0.4,
        n_jobs=2,
    ).fit(X, y)
    (learner, args) = calls[0]
    assert learner is refine_model
    assert args[-4:-2] == (3, 0.4)
    assert args[-2].all()  # no extra stage narrows what it trains on
    assert args[-1] == 2  # the fold models train side by side
    # The relaxed rule keeps at least what the argmax rule keeps.
    strict = _linear(n_runs=1, refiner__learner=refine_model, refiner__n_folds=3)
    strict.fit(X, y)
    assert (ispl.keep_mask_ >= strict.keep_mask_).all()
    # The refine learner is a parameter, not fitted in place.
    assert not hasattr(refine_model, "coef_")


@pytest.mark.parametrize(
    "params, match",
    [
        ({"refiner__n_folds": 0}, "refiner__n_folds"),
        ({"refiner__n_folds": 11}, "refiner__n_folds=11 is larger"),
        ({"refiner__keep_ratio": 0.0}, "refiner__keep_ratio"),
        ({"refiner__keep_ratio": 1.5}, "refiner__keep_ratio"),
        ({"refiner__learner": "cnn"}, "refiner__learner"),
        ({"refiner__learner": SGDClassifier}, "refiner__learner must be an"),
        ({"refiner__n_rounds": True}, "refiner__n_rounds must be a number"),
        ({"refiner__bogus": 1}, "refiner__bogus"),
        ({"refiner": SelfTraining(momentum=1.0)}, "refiner__momentum"),
        ({"voter__n_epochs": 0}, "voter__n_epochs"),
        ({"voter__n_epochs": "x"}, "voter__n_epochs"),
        ({"voter__n_epochs": True}, "voter__n_epochs must be a number"),
        ({"voter__voting": "bogus"}, "voter__voting"),
        ({"voter__min_votes": 0}, "voter__min_votes"),
        ({"voter__min_votes": -5}, "voter__min_votes"),
        ({"voter__competence": 7}, "voter__competence"),
        ({"voter__max_samples": -3}, "voter__max_samples"),
        ({"voter": BoostedComponentVoter(n_epochs=0)}, "voter__n_epochs"),
        ({"weak_learner__bogus": 1}, "weak_learner__bogus"),
        ({"n_runs": True}, "n_runs must be a number"),
        ({"n_jobs": 0}, "n_jobs=0"),
        ({"schedule": "fastest"}, "schedule"),
        ({"extra_stages": [LogisticRegression()]}, "extra_stages\\[0\\]"),
        ({"extra_stages": [Rescue(n_epochs=-1)]}, "extra_stages\\[0\\]__n_epochs"),
        ({"extra_stages": [Rescue(n_epochs=True)]}, "n_epochs"),
        ({"extra_stages": [Rescue(bounds=(0.5, 0.2))]}, "bounds"),
        ({"extra_stages": [Rescue(bounds=(0.1,))]}, "bounds"),
        ({"extra_stages": [Rescue(bounds=(False, 0.5))]}, "bounds"),
        ({"extra_stages": [Rescue(min_support=1.5)]}, "min_support"),
        ({"extra_stages": [TriggerBlindJudge(n_neighbors=0)]}, "n_neighbors"),
        ({"extra_stages": [TriggerBlindJudge(n_neighbors=2.5)]}, "n_neighbors"),
        ({"extra_stages": [TriggerBlindJudge(veto="yes")]}, "veto"),
        ({"extra_stages": [StampedTriggerCheck(mode="yes")]}, "mode"),
        ({"extra_stages": [StampedTriggerCheck(mode=True)]}, "mode"),
        ({"extra_stages": [GroupDecision(mode="keep")]}, "mode"),
        ({"extra_stages": [GroupDecision(min_share=0)]}, "min_share"),
        ({"extra_stages": [GroupDecision(confidence=1.5)]}, "confidence"),
        ({"extra_stages": [GroupDecision(min_size=0)]}, "min_size"),
        ({"extra_stages": [GroupDecision(min_isolation=0)]}, "min_isolation"),
        (
            {"extra_stages": [GroupDecision(min_blind_isolation=0)]},
            "min_blind_isolation",
        ),
        ({"extra_stages": [GroupTriggerTest(n_epochs=0)]}, "n_epochs"),
        ({"extra_stages": [GroupTriggerTest(n_candidates=-1)]}, "n_candidates"),
        ({"extra_stages": [GroupTriggerTest(min_separation=0.4)]}, "min_separation"),
        ({"extra_stages": [GroupTriggerTest(n_rounds=0)]}, "n_rounds"),
        ({"extra_stages": [GroupTriggerTest(threshold=0)]}, "threshold"),
    ],
)
def test_bad_nested_settings_are_refused_before_training(params, match, monkeypatch):
    import sklearn_ispl._partition as partition_module

    def trained(*args):
        raise AssertionError("a learner was trained before the settings were checked")

    monkeypatch.setattr(partition_module, "ispl_run", trained)
    X = np.zeros((20, 4))
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match=match):
        _linear(**params).fit(X, y)


class TestPartitionSamples:
    def test_partition_runs_on_a_stratified_draw_and_all_are_judged(
        self, poisoned_digits
    ):
        X, y, _, _ = poisoned_digits
        ispl = _linear(partition_samples=600).fit(X, y)
        runs = ispl.component_runs_
        in_run = [
            np.sort(
                np.concatenate([ispl.components_[i] for i in np.flatnonzero(runs == r)])
            )
            for r in range(2)
        ]
        for rows in in_run:
            assert len(rows) == len(np.unique(rows)) == 600
            # Each class's share of the draw is its share of the data.
            np.testing.assert_allclose(
                np.bincount(y[rows], minlength=10) / 600,
                np.bincount(y, minlength=10) / len(y),
                atol=2 / 600,
            )
        np.testing.assert_array_equal(in_run[0], in_run[1])
        # Every sample is voted on and judged by the refine stage.
        assert ispl.predictions_.shape == (len(ispl.components_), len(y))
        assert np.isfinite(ispl.scores_).all()
        assert np.isfinite(ispl.refine_scores_).all()

    def test_flipped_labels_outside_the_draw_are_removed(self):
        X, y, flipped = flipped_labels(
            1000, 3, 0.1, seed=1, n_features=8, n_clusters_per_class=1, class_sep=2.5
        )
        ispl = _linear(partition_samples=0.3).fit(X, y)
        drawn = np.zeros(len(y), dtype=bool)
        drawn[np.concatenate(ispl.components_)] = True
        assert drawn.sum() == 300
        outside = flipped & ~drawn
        assert outside.sum() >= 50
        assert ispl.keep_mask_[outside].mean() <= 0.05
        assert ispl.keep_mask_[~flipped].mean() >= 0.95

    @pytest.mark.parametrize("every", [1.0, 5000])
    def test_a_draw_of_everything_is_the_paper(self, poisoned_digits, every):
        X, y, _, _ = poisoned_digits
        a = _linear(n_runs=1).fit(X, y)
        b = _linear(n_runs=1, partition_samples=every).fit(X, y)
        np.testing.assert_array_equal(a.keep_mask_, b.keep_mask_)
        np.testing.assert_array_equal(a.scores_, b.scores_)

    @pytest.mark.parametrize("bad", [0, -5, 0.0, 1.5, "half"])
    def test_bad_values_are_refused(self, bad):
        X = np.zeros((20, 4))
        y = np.arange(20) % 2
        with pytest.raises(ValueError, match="partition_samples"):
            _linear(partition_samples=bad).fit(X, y)

    def test_a_draw_smaller_than_the_components_is_refused_before_training(
        self, monkeypatch, poisoned_digits
    ):
        import sklearn_ispl._partition as partition_module

        monkeypatch.setattr(
            partition_module, "run_tasks", lambda *a, **k: pytest.fail("trained")
        )
        X, y, _, _ = poisoned_digits
        with pytest.raises(ValueError, match="partition_samples gives 3 samples"):
            _linear(partition_samples=3).fit(X, y)
