"""Tests for sklearn_ispl.metrics."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from sklearn_ispl.attacks import BackdoorAttack
from sklearn_ispl.metrics import (
    clean_accuracy,
    clean_accuracy_scorer,
    filter_report,
    make_attack_success_scorer,
    targeted_misclassification_rate,
)


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    # Small logistic regressions are many times slower when BLAS threads
    # compete for a couple of cores; one thread keeps the module fast.
    with threadpool_limits(limits=1):
        yield


def _reference_rate(y_true, y_clean, y_triggered, source, target):
    """Eq. 7 written as a plain loop over the source class."""
    n_source = hits = 0
    for truth, clean, triggered in zip(y_true, y_clean, y_triggered, strict=True):
        if truth == source:
            n_source += 1
            hits += clean == source and triggered == target
    return hits / n_source


class TestCleanAccuracy:
    def test_matches_mean(self):
        rng = np.random.RandomState(0)
        y_true, y_pred = rng.randint(0, 4, 50), rng.randint(0, 4, 50)
        assert clean_accuracy(y_true, y_pred) == pytest.approx(
            np.mean(y_true == y_pred)
        )
        assert clean_accuracy(["a", "b"], ["a", "a"]) == 0.5

    @pytest.mark.parametrize(
        ("y_true", "y_pred", "match"),
        [
            ([0, 1], [0], "same length"),
            ([], [], "empty"),
            ([[0, 1]], [[0, 1]], "1-D"),
        ],
    )
    def test_errors(self, y_true, y_pred, match):
        with pytest.raises(ValueError, match=match):
            clean_accuracy(y_true, y_pred)


class TestTargetedMisclassificationRate:
    def test_denominator_is_whole_source_class(self):
        # 4 source images: one already misclassified while clean, two
        # flipped to the target by the trigger, one resisting it.
        y_true = [0, 0, 0, 0, 1, 2]
        y_clean = [0, 0, 0, 1, 1, 2]
        y_triggered = [2, 2, 0, 2, 2, 2]
        rate = targeted_misclassification_rate(y_true, y_clean, y_triggered, 0, 2)
        assert rate == 2 / 4

    def test_matches_reference_on_random_labels(self):
        rng = np.random.RandomState(0)
        for _ in range(20):
            y_true, y_clean, y_triggered = rng.randint(0, 3, size=(3, 40))
            y_true[0] = 1  # make sure the source class occurs
            expected = _reference_rate(y_true, y_clean, y_triggered, 1, 2)
            assert targeted_misclassification_rate(
                y_true, y_clean, y_triggered, 1, 2
            ) == pytest.approx(expected)

    def test_other_classes_ignored(self):
        y_true = np.array([0, 0, 1, 1])
        y_clean = np.array([0, 0, 1, 1])
        base = targeted_misclassification_rate(y_true, y_clean, [2, 0, 0, 0], 0, 2)
        changed = targeted_misclassification_rate(y_true, y_clean, [2, 0, 2, 2], 0, 2)
        assert base == changed == 0.5

    def test_string_labels(self):
        rate = targeted_misclassification_rate(
            ["cat", "cat", "dog"],
            ["cat", "cat", "dog"],
            ["dog", "cat", "dog"],
            "cat",
            "dog",
        )
        assert rate == 0.5

    def test_source_absent(self):
        with pytest.raises(ValueError, match="source=5 does not occur"):
            targeted_misclassification_rate([0, 1], [0, 1], [0, 1], 5, 1)

    def test_length_mismatch(self):
        with pytest.raises(ValueError, match="same length"):
            targeted_misclassification_rate([0, 1], [0, 1], [0], 0, 1)


class TestFilterReport:
    def test_small_example(self):
        poison = np.array([True, True, True, False, False, False, False])
        keep = np.array([False, False, True, False, True, True, True])
        report = filter_report(poison, keep)
        assert report == {
            "n_samples": 7,
            "n_poison": 3,
            "n_clean": 4,
            "n_removed": 3,
            "true_positives": 2,
            "false_positives": 1,
            "false_negatives": 1,
            "precision": pytest.approx(2 / 3),
            "recall": pytest.approx(2 / 3),
            "false_positive_rate": pytest.approx(1 / 4),
            "false_negative_rate": pytest.approx(1 / 3),
        }

    def test_random_masks_against_counts(self):
        rng = np.random.RandomState(1)
        poison, keep = rng.rand(2, 200) < [[0.1], [0.8]]
        report = filter_report(poison, keep)
        fp = sum(p == 0 and k == 0 for p, k in zip(poison, keep, strict=True))
        fn = sum(p == 1 and k == 1 for p, k in zip(poison, keep, strict=True))
        assert report["false_positives"] == fp
        assert report["false_negatives"] == fn
        assert report["false_positive_rate"] == pytest.approx(fp / (~poison).sum())
        assert report["recall"] == pytest.approx(1 - report["false_negative_rate"])
        assert all(type(report[k]) is int for k in ("n_samples", "false_positives"))
        assert type(report["precision"]) is float

    def test_nothing_removed(self):
        report = filter_report([True, False], [True, True])
        assert report["n_removed"] == 0
        assert report["precision"] == 1.0 and report["recall"] == 0.0

    def test_no_poison(self):
        report = filter_report([False, False], [False, True])
        assert report["recall"] == 1.0 and report["false_negative_rate"] == 0.0
        assert report["precision"] == 0.0 and report["false_positive_rate"] == 0.5

    def test_all_poison(self):
        report = filter_report([True, True], [True, False])
        assert report["false_positive_rate"] == 0.0
        assert report["false_negative_rate"] == 0.5

    def test_inputs_unmodified(self):
        poison = np.array([True, False, True])
        keep = np.array([False, True, True])
        before = poison.copy(), keep.copy()
        filter_report(poison, keep)
        np.testing.assert_array_equal(poison, before[0])
        np.testing.assert_array_equal(keep, before[1])

    @pytest.mark.parametrize(
        ("poison", "keep", "match"),
        [
            ([0, 1], [True, True], "poison_mask must be a boolean mask"),
            ([True, False], [0, 1], "keep_mask must be a boolean mask"),
            ([True, False], [True], "same length"),
            ([[True]], [[True]], "1-D"),
        ],
    )
    def test_errors(self, poison, keep, match):
        with pytest.raises(ValueError, match=match):
            filter_report(poison, keep)


@pytest.fixture(scope="module")
def digits_attack():
    """Digits scaled to [0, 1], split, with an X trigger in a blank corner."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16, y, test_size=0.3, random_state=0, stratify=y
    )
    attack = BackdoorAttack(
        source=0,
        target=1,
        trigger="pattern",
        position=(1, 1),
        color=1.0,
        eps=0.3,
        image_shape=(8, 8),
        random_state=0,
    )
    X_poisoned, y_poisoned, poison_mask = attack.poison(X_train, y_train)
    return dict(
        attack=attack,
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        X_poisoned=X_poisoned,
        y_poisoned=y_poisoned,
        poison_mask=poison_mask,
    )


@pytest.fixture(scope="module")
def fitted_models(digits_attack):
    d = digits_attack
    clean = LogisticRegression(max_iter=500).fit(d["X_train"], d["y_train"])
    poisoned = LogisticRegression(max_iter=500).fit(d["X_poisoned"], d["y_poisoned"])
    return clean, poisoned


class TestScorers:
    def test_attack_scorer_is_negated_rate(self, digits_attack, fitted_models):
        d, scorer = digits_attack, make_attack_success_scorer(digits_attack["attack"])
        for model in fitted_models:
            X_test = d["X_test"].copy()
            expected = targeted_misclassification_rate(
                d["y_test"],
                model.predict(X_test),
                model.predict(d["attack"].apply_trigger(X_test)),
                0,
                1,
            )
            assert scorer(model, X_test, d["y_test"]) == pytest.approx(-expected)
            np.testing.assert_array_equal(X_test, d["X_test"])  # not modified

    def test_poisoned_model_scores_worse(self, digits_attack, fitted_models):
        clean, poisoned = fitted_models
        scorer = make_attack_success_scorer(digits_attack["attack"])
        clean_score = scorer(clean, digits_attack["X_test"], digits_attack["y_test"])
        poisoned_score = scorer(
            poisoned, digits_attack["X_test"], digits_attack["y_test"]
        )
        assert -1 <= poisoned_score <= 0 and -1 <= clean_score <= 0
        # The backdoor works on a linear model: it must show in the score.
        assert poisoned_score < clean_score - 0.5

    def test_clean_accuracy_scorer(self, digits_attack, fitted_models):
        model = fitted_models[1]
        X_test, y_test = digits_attack["X_test"], digits_attack["y_test"]
        assert clean_accuracy_scorer(model, X_test, y_test) == pytest.approx(
            clean_accuracy(y_test, model.predict(X_test))
        )

    def test_grid_search(self, digits_attack):
        d = digits_attack
        pipe = make_pipeline(FunctionTransformer(), LogisticRegression(max_iter=300))
        attack_scorer = make_attack_success_scorer(d["attack"])
        grid = {"logisticregression__C": [0.01, 1.0]}
        cv = StratifiedKFold(n_splits=3)
        search = GridSearchCV(
            pipe,
            grid,
            scoring={"clean": clean_accuracy_scorer, "neg_asr": attack_scorer},
            refit="clean",
            cv=cv,
            error_score="raise",
        ).fit(d["X_poisoned"], d["y_poisoned"])
        results = search.cv_results_
        assert np.all(results["mean_test_neg_asr"] >= -1)
        assert np.all(results["mean_test_neg_asr"] <= 0)
        assert np.all(results["mean_test_clean"] > 0.5)
        assert (
            search.best_params_["logisticregression__C"]
            == grid["logisticregression__C"][int(np.argmax(results["mean_test_clean"]))]
        )

        # Recompute one cell of the table by hand.
        train, test = next(cv.split(d["X_poisoned"], d["y_poisoned"]))
        model = clone(pipe).set_params(logisticregression__C=1.0)
        model.fit(d["X_poisoned"][train], d["y_poisoned"][train])
        expected = attack_scorer(model, d["X_poisoned"][test], d["y_poisoned"][test])
        assert results["split0_test_neg_asr"][1] == pytest.approx(expected)

    def test_grid_search_over_filter_pipeline(self, digits_attack):
        imblearn = pytest.importorskip("imblearn")
        from imblearn.pipeline import make_pipeline as make_imb_pipeline

        d = digits_attack
        trigger_pixels = d["attack"].trigger_pixels((8, 8))
        flat = trigger_pixels[:, 0] * 8 + trigger_pixels[:, 1]

        def drop_triggered(X, y, enabled):
            # An oracle filter: drops every training image carrying the trigger.
            if not enabled:
                return X, y
            keep = ~np.all(X[:, flat] == 1.0, axis=1)
            return X[keep], y[keep]

        pipe = make_imb_pipeline(
            imblearn.FunctionSampler(func=drop_triggered, validate=False),
            LogisticRegression(max_iter=300),
        )
        search = GridSearchCV(
            pipe,
            {"functionsampler__kw_args": [{"enabled": False}, {"enabled": True}]},
            scoring={
                "clean": clean_accuracy_scorer,
                "neg_asr": make_attack_success_scorer(d["attack"]),
            },
            refit="clean",
            cv=3,
            error_score="raise",
        ).fit(d["X_poisoned"], d["y_poisoned"])
        unfiltered, filtered = search.cv_results_["mean_test_neg_asr"]
        assert filtered > unfiltered + 0.5

    def test_scorer_pickles(self, digits_attack, fitted_models):
        scorer = make_attack_success_scorer(digits_attack["attack"])
        restored = pickle.loads(pickle.dumps(scorer))
        args = (fitted_models[1], digits_attack["X_test"], digits_attack["y_test"])
        assert restored(*args) == scorer(*args)
        assert "make_attack_success_scorer(BackdoorAttack(" in repr(scorer)

    def test_bad_attack(self):
        with pytest.raises(ValueError, match="apply_trigger"):
            make_attack_success_scorer(object())
