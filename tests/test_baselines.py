"""Baseline defenses: they work, they agree with ART, they behave as filters."""

import sys

import numpy as np
import pytest
import torch
from imblearn.pipeline import Pipeline
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import GridSearchCV, cross_val_score
from threadpoolctl import threadpool_limits
from torch import nn

from sklearn_ispl import (
    ActivationClusteringFilter,
    BoostedComponentVoter,
    ConfidentLearningFilter,
    ISPLFilter,
    ITLMFilter,
    SpectralSignatureFilter,
    make_weak_learner,
)
from sklearn_ispl._learners import build_learner
from sklearn_ispl._validation import check_filter_input, prepare_data
from sklearn_ispl.baselines import _itlm
from sklearn_ispl.baselines._activation_clustering import (
    cluster_class,
    flag_clusters,
)
from sklearn_ispl.baselines._features import (
    extract_features,
    learned_features,
    resolve_feature_layer,
)
from sklearn_ispl.baselines._spectral import n_to_remove, spectral_signature_scores
from sklearn_ispl.datasets import load_digits_images
from sklearn_ispl.metrics import filter_report

EPOCHS = 5  # the trigger dominates the representation after a few epochs
SEED = 0
TARGET = 8


def _learner_seed(random_state):
    """The seed SpectralSignatureFilter and ActivationClusteringFilter give
    their weak learner: the first draw of ``check_random_state(random_state)``."""
    return np.random.RandomState(random_state).randint(np.iinfo(np.int32).max)


def _prepare(estimator, X, y):
    X, y_enc = check_filter_input(estimator, X, y)
    return prepare_data(X, y_enc, len(estimator.classes_), estimator.input_layout_)


@pytest.fixture(scope="module")
def patched_digits(poisoned_digits):
    """The conftest's backdoor with a larger bright 3x3 patch on the trigger.

    36 zeros relabelled 8: 17% of the target class. The patch makes the
    trigger dominate a small CNN's representation after a few epochs.
    """
    X, y, poison, _ = poisoned_digits
    X = X.copy()
    X[poison, 5:8, 0:3] = 16
    return X, y, poison


@pytest.fixture(scope="module")
def trained(patched_digits):
    """A CNN trained as the representation filters train theirs, and its features."""
    X, y, _ = patched_digits
    data = _prepare(SpectralSignatureFilter(), X, y)
    learner = build_learner(None, data, _learner_seed(SEED), "cpu")
    layer, read = resolve_feature_layer(learner.estimator.module_, None)
    learner.fit_epochs(np.arange(len(data)), EPOCHS)
    return data, learner, extract_features(learner, layer, read)


@pytest.fixture(scope="module")
def noisy_digits():
    """Digits with 10% of the labels flipped to another class."""
    X, y = load_digits_images()
    rng = np.random.RandomState(0)
    flipped = rng.rand(len(y)) < 0.10
    y_noisy = np.where(flipped, (y + rng.randint(1, 10, len(y))) % 10, y)
    return X, y_noisy, flipped


def _by_class(values, y, n_classes):
    return [values[y == k] for k in range(n_classes)]


def _varying(features):
    """Drop constant columns, as ActivationClusteringFilter does before reducing."""
    features = np.asarray(features, dtype=np.float64)
    return features[:, np.ptp(features, axis=0) > 0]


def _art_classifier(learner):
    """ART's PyTorchClassifier around our trained CNN, cut after the feature layer.

    ART reads the last layer of the classifier (``layer_names[-1]``): here the
    ReLU after the hidden dense layer, the filters' default features.
    """
    from art.estimators.classification import PyTorchClassifier

    module = learner.estimator.module_
    body = nn.Sequential(module.features, module.head[0], module.head[1]).eval()
    return PyTorchClassifier(
        body,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(learner.X.shape[1:]),
        nb_classes=learner.n_classes,
    )


# --------------------------------------------------------------------------
# Spectral Signatures


@pytest.fixture(scope="module")
def ss_fitted(patched_digits):
    X, y, _ = patched_digits
    ss = SpectralSignatureFilter(n_epochs=EPOCHS, removal_rate=0.25, random_state=SEED)
    return ss.fit(X, y)


class TestSpectralSignature:
    def test_removes_the_poison(self, ss_fitted, patched_digits):
        _, y, poison = patched_digits
        report = filter_report(poison, ss_fitted.keep_mask_)
        assert report["recall"] >= 0.9, report
        # The poison is where the class's top direction points.
        in_target = y == TARGET
        assert np.median(ss_fitted.scores_[poison]) < np.median(
            ss_fitted.scores_[in_target & ~poison]
        )

    def test_removes_the_rate_of_every_class(self, ss_fitted, patched_digits):
        _, y, _ = patched_digits
        for k in range(10):
            rows = y == k
            assert (~ss_fitted.keep_mask_[rows]).sum() == n_to_remove(rows.sum(), 0.25)
            # The removed are the lowest scores of their class.
            removed = ss_fitted.scores_[rows & ~ss_fitted.keep_mask_]
            kept = ss_fitted.scores_[rows & ss_fitted.keep_mask_]
            assert removed.max() <= kept.min()

    def test_fit_is_the_features_plus_the_scores(self, ss_fitted, trained):
        data, _, features = trained
        keep = np.ones(len(data), dtype=bool)
        for k in range(data.n_classes):
            rows = np.flatnonzero(data.y == k)
            scores = spectral_signature_scores(features[rows], centre=True)
            np.testing.assert_allclose(-ss_fitted.scores_[rows], scores, rtol=1e-6)
            keep[rows[np.argsort(-scores)[: n_to_remove(len(rows), 0.25)]]] = False
        np.testing.assert_array_equal(ss_fitted.keep_mask_, keep)

    def test_scores_by_hand(self):
        rng = np.random.RandomState(0)
        rows = rng.normal(size=(50, 4)) + [5.0, 0, 0, 0]
        rows[:5, 1] += 10.0  # five outliers along axis 1
        centred = rows - rows.mean(axis=0)
        v = np.linalg.svd(centred)[2][0]
        np.testing.assert_allclose(
            spectral_signature_scores(rows), (centred @ v) ** 2, rtol=1e-10
        )
        np.testing.assert_allclose(
            spectral_signature_scores(rows, centre=False), (rows @ v) ** 2, rtol=1e-10
        )
        assert set(np.argsort(-spectral_signature_scores(rows))[:5]) == set(range(5))

    def test_n_to_remove(self):
        assert n_to_remove(20, 0.15) == 3  # 0.15 * 20 is 3.0000000000000004
        assert n_to_remove(21, 0.15) == 4
        assert n_to_remove(7, 0.0) == 0
        assert n_to_remove(1, 0.15) == 1


class TestSpectralSignatureAgreesWithART:
    """Same features into ART's SpectralSignatureDefense.

    ART projects the uncentred features on the singular vector of the centred
    ones; the paper (Tran et al., Algorithm 1) projects the centred features.
    Ours with ``centre=False`` is ART; ``centre=True`` (default) is the paper.
    """

    @pytest.fixture(scope="class")
    def art_result(self, trained):
        pytest.importorskip("art")
        from art.defences.detector.poison import SpectralSignatureDefense

        data, learner, _ = trained
        classifier = _art_classifier(learner)
        defence = SpectralSignatureDefense(
            classifier,
            data.X,
            data.y,
            expected_pp_poison=0.25,
            eps_multiplier=1.0,
        )
        with threadpool_limits(limits=1, user_api="blas"):
            _, is_clean = defence.detect_poison()
        activations = classifier.get_activations(
            data.X, layer=len(classifier.layer_names) - 1, batch_size=128
        )
        return np.asarray(is_clean, dtype=bool), activations

    def test_same_features(self, art_result, trained):
        _, _, features = trained
        np.testing.assert_allclose(art_result[1], features, atol=1e-5)

    def test_uncentred_scores_are_arts(self, trained):
        pytest.importorskip("art")
        from art.defences.detector.poison import SpectralSignatureDefense

        data, _, features = trained
        for rows in _by_class(features, data.y, data.n_classes):
            with threadpool_limits(limits=1, user_api="blas"):
                art = SpectralSignatureDefense.spectral_signature_scores(rows)
            np.testing.assert_allclose(
                spectral_signature_scores(rows, centre=False),
                art[:, 0] ** 2,
                rtol=1e-4,
                atol=1e-6,
            )

    def test_flagged_sets(self, art_result, trained, patched_digits):
        _, _, poison = patched_digits
        data, _, features = trained
        art_keep = art_result[0]
        keeps = {}
        for centre in (True, False):
            keep = np.ones(len(data), dtype=bool)
            for k in range(data.n_classes):
                rows = np.flatnonzero(data.y == k)
                scores = spectral_signature_scores(features[rows], centre)
                top = np.argsort(-scores)[: n_to_remove(len(rows), 0.25)]
                keep[rows[top]] = False
            keeps[centre] = keep
        # centre=False is ART's ranking; the count can differ by one sample
        # per class (ART cuts at a quantile, we take ceil(rate * n)).
        for k in range(data.n_classes):
            rows = data.y == k
            assert (keeps[False][rows] != art_keep[rows]).sum() <= 1
        # Measured: ART and centre=False remove all 36 poisoned samples,
        # centre=True too; the two rankings disagree on some clean samples.
        for keep in (art_keep, keeps[True], keeps[False]):
            assert filter_report(poison, keep)["recall"] >= 0.9
        assert (keeps[True] != art_keep).sum() > (keeps[False] != art_keep).sum()


# --------------------------------------------------------------------------
# Activation Clustering


@pytest.fixture(scope="module")
def ac_fitted(patched_digits):
    X, y, _ = patched_digits
    ac = ActivationClusteringFilter(n_epochs=EPOCHS, random_state=SEED)
    return ac.fit(X, y)


class TestActivationClustering:
    def test_removes_the_poison(self, ac_fitted, patched_digits):
        _, y, poison = patched_digits
        assert filter_report(poison, ac_fitted.keep_mask_)["recall"] >= 0.9
        # In the target class, the removed cluster is the poison.
        removed_target = ~ac_fitted.keep_mask_ & (y == TARGET)
        assert poison[removed_target].mean() >= 0.8
        assert ac_fitted.scores_[poison].max() < 0.3

    def test_smaller_removes_a_cluster_of_every_class(self, ac_fitted, patched_digits):
        _, y, _ = patched_digits
        for k, flagged in enumerate(ac_fitted.flagged_clusters_):
            rows = y == k
            sizes = np.bincount(ac_fitted.clusters_[rows], minlength=2)
            np.testing.assert_array_equal(flagged, [np.argmin(sizes)])
            assert (~ac_fitted.keep_mask_[rows]).sum() == sizes.min()

    @pytest.mark.parametrize("analysis", ["relative-size", "silhouette"])
    def test_size_rules_spare_even_splits(self, analysis, trained, patched_digits):
        _, _, poison = patched_digits
        data, _, features = trained
        ac = ActivationClusteringFilter(analysis=analysis)
        flags, clusters, _, silhouettes = ac._cluster(
            features, data.y, data.n_classes, np.random.RandomState(SEED)
        )
        keep = np.ones(len(data), dtype=bool)
        for k, flagged in enumerate(flags):
            keep[(data.y == k) & np.isin(clusters, flagged)] = False
        report = filter_report(poison, keep)
        assert report["recall"] >= 0.9
        # Most classes split evenly and are left alone.
        assert report["false_positives"] <= 0.1 * report["n_clean"]
        assert np.isnan(silhouettes).all() == (analysis != "silhouette")

    def test_flag_rules_by_hand(self):
        labels = np.array([0] * 7 + [1] * 3)
        two_blobs = (
            np.r_[np.zeros((7, 2)), np.ones((3, 2))] + np.arange(10)[:, None] * 1e-3
        )
        assert list(flag_clusters(labels, two_blobs, 2, "smaller")[0]) == [1]
        # share 0.3 < 0.35; but not below 0.3
        assert list(flag_clusters(labels, two_blobs, 2, "relative-size")[0]) == [1]
        assert not len(flag_clusters(labels, two_blobs, 2, "relative-size", 0.3)[0])
        flagged, silhouette = flag_clusters(labels, two_blobs, 2, "silhouette")
        assert list(flagged) == [1] and silhouette > 0.9
        noise = np.random.RandomState(0).normal(size=(10, 2))
        flagged, silhouette = flag_clusters(labels, noise, 2, "silhouette", 0.35, 0.9)
        assert not len(flagged) and silhouette < 0.9
        # k-means found one cluster: nothing to flag.
        assert not len(flag_clusters(np.zeros(5, int), noise[:5], 2, "smaller")[0])

    def test_constant_first_feature(self):
        # scikit-learn's FastICA returns NaN when column 0 is constant (a
        # dead ReLU); the filter drops constant columns first.
        rng = np.random.RandomState(0)
        features = np.c_[np.zeros(60), rng.normal(size=(60, 30))]
        for reduction in ("ica", "pca"):
            labels, reduced = cluster_class(
                features, 10, reduction, 2, np.random.RandomState(0)
            )
            assert np.isfinite(reduced).all() and reduced.shape == (60, 10)


class TestActivationClusteringAgreesWithART:
    """Same features, same clustering seed: ART's clusters and flags."""

    @pytest.mark.parametrize(
        "reduction, art_reduce", [("pca", "PCA"), ("ica", "FastICA")]
    )
    def test_same_clusters(self, reduction, art_reduce, trained):
        pytest.importorskip("art")
        from art.defences.detector.poison.activation_defence import (
            cluster_activations,
        )

        data, _, features = trained
        # Three classes, the target among them: FastICA takes its 1000
        # iterations when it does not converge.
        per_class = _by_class(features, data.y, data.n_classes)[TARGET - 2 :]
        with threadpool_limits(limits=1, user_api="blas"):
            # ART's ICA and k-means draw from numpy's global generator in
            # turn, class after class; ours from one generator the same way.
            np.random.seed(7)  # noqa: NPY002
            art_clusters, _ = cluster_activations(
                [_varying(f) for f in per_class],
                nb_clusters=2,
                nb_dims=10,
                reduce=art_reduce,
            )
            rng = np.random.RandomState(7)
            clusters = [cluster_class(f, 10, reduction, 2, rng)[0] for f in per_class]
        for art, ours in zip(art_clusters, clusters, strict=True):
            np.testing.assert_array_equal(art, ours)

    @pytest.mark.parametrize("analysis", ["smaller", "relative-size", "silhouette"])
    def test_same_flags(self, analysis, trained):
        pytest.importorskip("art")
        from art.defences.detector.poison.clustering_analyzer import (
            ClusteringAnalyzer,
        )

        data, _, features = trained
        flags, clusters, _, _ = ActivationClusteringFilter(analysis=analysis)._cluster(
            features, data.y, data.n_classes, np.random.RandomState(7)
        )
        analyzer = ClusteringAnalyzer()
        n_flagged = 0
        for k, flagged in enumerate(flags):
            labels = clusters[data.y == k]
            ours_poison = np.isin(labels, flagged)
            n_flagged += bool(len(flagged))
            # One class per call: ART's relative-size report raises
            # ValueError for a class with no small cluster (it tests
            # `cluster_id in np.where(...)`, an empty array).
            if analysis == "smaller":
                art_clean, summary, _ = analyzer.analyze_by_size([labels])
            elif analysis == "relative-size":
                if not len(flagged):
                    with pytest.raises(ValueError, match="truth value"):
                        analyzer.analyze_by_relative_size([labels])
                    continue
                art_clean, summary, _ = analyzer.analyze_by_relative_size([labels])
            else:
                reduced = cluster_class(
                    features[data.y == k], 10, "pca", 2, np.random.RandomState(0)
                )[1]
                art_clean, summary, report = analyzer.analyze_by_silhouette_score(
                    [labels], [reduced]
                )
                # ART marks a suspicious class in its report. The labels it
                # returns for the large cluster of such a class come from
                # np.empty, and its summary marks no cluster, so only the
                # small cluster's labels can be compared.
                assert report["class_0"]["suspicious"] == bool(len(flagged))
                assert (art_clean[0][ours_poison] == 0).all()
                continue
            np.testing.assert_array_equal(art_clean[0] == 0, ours_poison)
            np.testing.assert_array_equal(
                np.flatnonzero(summary[0] == 1), np.sort(flagged)
            )
        # Measured: "smaller" flags a cluster in all 10 classes; the size
        # rules only in the 5 classes with a cluster under 35%, the target
        # among them.
        assert n_flagged == (10 if analysis == "smaller" else 5)

    def test_activation_defence_end_to_end(self, trained, patched_digits):
        """ART's ActivationDefence on our trained CNN flags what we flag."""
        pytest.importorskip("art")
        from art.defences.detector.poison import ActivationDefence

        _, _, poison = patched_digits
        data, learner, features = trained
        defence = ActivationDefence(_art_classifier(learner), data.X, data.y)
        with threadpool_limits(limits=1, user_api="blas"):
            np.random.seed(3)  # noqa: NPY002
            _, is_clean = defence.detect_poison(
                nb_clusters=2, nb_dims=10, reduce="PCA", cluster_analysis="smaller"
            )
            flags, clusters, _, _ = ActivationClusteringFilter()._cluster(
                features, data.y, data.n_classes, np.random.RandomState(3)
            )
        keep = np.ones(len(data), dtype=bool)
        for k, flagged in enumerate(flags):
            keep[(data.y == k) & np.isin(clusters, flagged)] = False
        art_keep = np.asarray(is_clean, dtype=bool)
        np.testing.assert_array_equal(keep, art_keep)
        assert filter_report(poison, art_keep)["recall"] >= 0.9


# --------------------------------------------------------------------------
# Features


class TinyNet(nn.Module):
    """A module the filters do not know: features are the last Linear's input."""

    def __init__(self, input_shape, n_classes):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(int(np.prod(input_shape)), 16), nn.Tanh()
        )
        self.out = nn.Linear(16, n_classes)

    def forward(self, X):
        return self.out(self.body(X))


class TestFeatures:
    @pytest.fixture(scope="class")
    def small(self):
        X, y = load_digits_images()
        return X[:200], y[:200]

    def test_unknown_layer_lists_valid_names(self, small):
        ss = SpectralSignatureFilter(n_epochs=0, feature_layer="head.7")
        with pytest.raises(ValueError, match="'head.7' is not a submodule") as err:
            ss.fit(*small)
        assert "'head.1'" in str(err.value) and "'features.0'" in str(err.value)

    def test_named_layer(self, small):
        data = _prepare(SpectralSignatureFilter(), *small)
        # The flattened conv output: 64 maps of 2x2.
        assert learned_features(None, data, 0, "cpu", 0, "features").shape == (
            200,
            256,
        )
        assert learned_features(None, data, 0, "cpu", 0, None).shape == (200, 128)

    def test_unknown_module_reads_last_linear_input(self, small):
        data = _prepare(SpectralSignatureFilter(), *small)
        net = make_weak_learner(data.input_shape, 10, module=TinyNet)
        features = learned_features(net, data, 0, "cpu", 1, None)
        assert features.shape == (200, 16)
        assert np.abs(features).max() <= 1.0  # after the Tanh

    def test_sklearn_learner_uses_standardised_rows(self, small):
        X, y = small
        data = _prepare(SpectralSignatureFilter(), X, y)
        sgd = SGDClassifier(loss="log_loss")
        np.testing.assert_array_equal(
            learned_features(sgd, data, 0, "cpu", 3, None), data.X_flat
        )
        with pytest.raises(ValueError, match="needs a neural-network weak learner"):
            ActivationClusteringFilter(sgd, feature_layer="head.1").fit(X, y)

    def test_extraction_restores_training_mode(self, small):
        data = _prepare(SpectralSignatureFilter(), *small)
        learner = build_learner(None, data, 0, "cpu")
        module = learner.estimator.module_
        module.train()
        layer, read = resolve_feature_layer(module, None)
        with torch.no_grad():
            expected = module.head[1](module.head[0](module.features(learner.X)))
        # Batched and whole-array convolutions round differently: values near
        # zero differ by float32 rounding, so an absolute tolerance too.
        np.testing.assert_allclose(
            extract_features(learner, layer, read, batch_size=64),
            expected,
            rtol=1e-5,
            atol=1e-6,
        )
        assert module.training
        assert not layer._forward_hooks


# --------------------------------------------------------------------------
# ITLM


@pytest.fixture(scope="module")
def itlm_fitted(noisy_digits):
    X, y, _ = noisy_digits
    itlm = ITLMFilter(
        n_rounds=2, first_epochs=6, epochs=4, keep_fraction=0.9, random_state=SEED
    )
    return itlm.fit(X, y)


class TestITLM:
    def test_removes_flipped_labels(self, itlm_fitted, noisy_digits):
        _, y, flipped = noisy_digits
        report = filter_report(flipped, itlm_fitted.keep_mask_)
        assert itlm_fitted.keep_mask_.sum() == round(0.9 * len(y))
        # Measured: recall 0.91, precision 0.88.
        assert report["recall"] >= 0.8, report
        assert report["precision"] >= 0.7, report

    def test_keeps_the_lowest_losses(self, itlm_fitted):
        kept = itlm_fitted.scores_[itlm_fitted.keep_mask_]
        removed = itlm_fitted.scores_[~itlm_fitted.keep_mask_]
        assert kept.min() >= removed.max()
        assert (itlm_fitted.scores_ <= 0).all()  # minus a cross-entropy

    def test_fresh_learner_per_round_on_the_kept_set(self, monkeypatch):
        """Round r trains a new learner on round r-1's kept set, a share of all."""
        calls = []
        real = _itlm.build_learner

        def spy(weak_learner, data, seed, device):
            learner = real(weak_learner, data, seed, device)
            fit = learner.fit_epochs

            def fit_epochs(indices, epochs):
                calls.append((id(learner), np.array(indices), epochs))
                return fit(indices, epochs)

            learner.fit_epochs = fit_epochs
            return learner

        monkeypatch.setattr(_itlm, "build_learner", spy)
        X, y = load_digits_images()
        X, y = X[:300].reshape(300, -1), y[:300]
        itlm = ITLMFilter(
            SGDClassifier(loss="log_loss"),
            n_rounds=3,
            first_epochs=4,
            epochs=2,
            keep_fraction=0.8,
            random_state=0,
        ).fit(X, y)
        assert len({c[0] for c in calls}) == 3
        assert [c[2] for c in calls] == [4, 2, 2]
        np.testing.assert_array_equal(calls[0][1], np.arange(300))
        assert all(len(c[1]) == 240 for c in calls[1:])
        # The last round's learner judged all samples; its kept set is the answer.
        assert itlm.keep_mask_.sum() == 240


# --------------------------------------------------------------------------
# Confident learning


@pytest.fixture(scope="module")
def cl_fitted(noisy_digits):
    pytest.importorskip("cleanlab")
    X, y, _ = noisy_digits
    return ConfidentLearningFilter(cv=3, n_epochs=6, random_state=SEED).fit(X, y)


class TestConfidentLearning:
    def test_finds_flipped_labels(self, cl_fitted, noisy_digits):
        _, _, flipped = noisy_digits
        report = filter_report(flipped, cl_fitted.keep_mask_)
        # Measured: recall 0.83, precision 0.74.
        assert report["recall"] >= 0.7, report
        assert report["precision"] >= 0.6, report

    def test_scores_are_out_of_fold_label_probabilities(self, cl_fitted, noisy_digits):
        _, y, flipped = noisy_digits
        proba = cl_fitted.oof_proba_
        assert proba.shape == (len(y), 10)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(cl_fitted.scores_, proba[np.arange(len(y)), y])
        # Measured medians: 0.01 (flipped) and 0.80 (clean).
        assert np.median(cl_fitted.scores_[flipped]) < 0.2
        assert np.median(cl_fitted.scores_[~flipped]) > 0.5

    def test_is_cleanlabs_answer(self, cl_fitted, noisy_digits):
        from cleanlab.filter import find_label_issues

        _, y, _ = noisy_digits
        issues = find_label_issues(y, cl_fitted.oof_proba_, n_jobs=1)
        np.testing.assert_array_equal(cl_fitted.keep_mask_, ~issues)

    def test_missing_cleanlab(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "cleanlab", None)
        monkeypatch.setitem(sys.modules, "cleanlab.filter", None)
        X, y = load_digits_images()
        with pytest.raises(ImportError, match=r"pip install sklearn-ispl\[cleanlab\]"):
            ConfidentLearningFilter(SGDClassifier(loss="log_loss")).fit(X[:50], y[:50])


# --------------------------------------------------------------------------
# Estimator behaviour shared by the four


def _fast(cls, **params):
    sgd = SGDClassifier(loss="log_loss", random_state=0)
    settings = {
        SpectralSignatureFilter: dict(removal_rate=0.05),
        ActivationClusteringFilter: dict(analysis="relative-size"),
        ITLMFilter: dict(n_rounds=2, first_epochs=2, epochs=1, keep_fraction=0.95),
        ConfidentLearningFilter: dict(cv=2, n_epochs=2),
        ISPLFilter: dict(
            n_runs=1,
            n_components=2,
            warmup_epochs=1,
            epochs_per_iteration=1,
            voter=BoostedComponentVoter(n_epochs=2),
            refiner__n_rounds=1,
            refiner__n_epochs=1,
        ),
    }[cls]
    settings.update(params)
    return cls(sgd, random_state=0, **settings)


BASELINES = [
    SpectralSignatureFilter,
    ActivationClusteringFilter,
    ITLMFilter,
    ConfidentLearningFilter,
]


@pytest.mark.parametrize(
    "cls, params, match",
    [
        (SpectralSignatureFilter, dict(removal_rate=1.0), "removal_rate"),
        (SpectralSignatureFilter, dict(centre="yes"), "centre"),
        (ActivationClusteringFilter, dict(reduction="tsne"), "reduction"),
        (ActivationClusteringFilter, dict(analysis="distance"), "analysis"),
        (ActivationClusteringFilter, dict(n_clusters=0), "n_clusters"),
        (ActivationClusteringFilter, dict(size_threshold=0), "size_threshold"),
        (ITLMFilter, dict(keep_fraction=0), "keep_fraction"),
        (ITLMFilter, dict(n_rounds=0), "n_rounds"),
        (ConfidentLearningFilter, dict(cv=1), "cv"),
        (ConfidentLearningFilter, dict(filter_by="nope"), "filter_by"),
        (SpectralSignatureFilter, dict(feature_layer=3), "feature_layer"),
    ],
)
def test_bad_params_are_named(cls, params, match):
    X, y = load_digits_images()
    with pytest.raises(ValueError, match=match):
        cls(**params).fit(X[:40], y[:40])


@pytest.mark.parametrize("cls", BASELINES)
def test_random_state_fixes_the_result(cls):
    if cls is ConfidentLearningFilter:
        pytest.importorskip("cleanlab")
    X, y = load_digits_images()
    X, y = X[:300], y[:300]
    a = _fast(cls).fit(X, y)
    b = _fast(cls).fit(X, y)
    np.testing.assert_array_equal(a.keep_mask_, b.keep_mask_)
    np.testing.assert_array_equal(a.scores_, b.scores_)
    X_kept, y_kept = _fast(cls).fit_resample(X, y)
    np.testing.assert_array_equal(X_kept, X[a.sample_indices_])
    np.testing.assert_array_equal(y_kept, y[a.sample_indices_])


def test_all_filters_in_one_grid_search():
    """The five filters as one grid parameter of an imbalanced-learn Pipeline."""
    pytest.importorskip("cleanlab")
    X, y = load_digits_images()
    X, y = X[:500].reshape(500, -1) / 16.0, y[:500]
    filters = [_fast(cls) for cls in [ISPLFilter, *BASELINES]]
    pipe = Pipeline([("filter", filters[0]), ("clf", LogisticRegression(max_iter=300))])
    search = GridSearchCV(pipe, {"filter": filters}, cv=2, error_score="raise")
    search.fit(X, y)
    names = [type(f).__name__ for f in search.cv_results_["param_filter"]]
    assert names == [
        "ISPLFilter",
        "SpectralSignatureFilter",
        "ActivationClusteringFilter",
        "ITLMFilter",
        "ConfidentLearningFilter",
    ]
    scores = search.cv_results_["mean_test_score"]
    # The tiny settings remove some clean digits; none may cost more than
    # 10 points against the same pipeline without a filter.
    unfiltered = cross_val_score(LogisticRegression(max_iter=300), X, y, cv=2).mean()
    assert np.all(scores > unfiltered - 0.10), (
        unfiltered,
        dict(zip(names, scores, strict=True)),
    )
    # The refitted pipeline's filter judged every sample.
    fitted = search.best_estimator_.named_steps["filter"]
    assert len(fitted.keep_mask_) == len(y)
