"""The refine stage (self-training, cross-fitting, the keep rule) and the
experimental judge and rescue that act around it."""

import numpy as np
import pytest
from joblib import parallel_backend
from sklearn.linear_model import SGDClassifier

from sklearn_ispl import _refine
from sklearn_ispl._learners import make_weak_learner
from sklearn_ispl._refine import self_train, stratified_folds
from sklearn_ispl._validation import prepare_data
from sklearn_ispl.experimental import Rescue, _rescue
from sklearn_ispl.experimental._judge import blind_judge
from sklearn_ispl.experimental._rescue import label_fit_trace, rescue

from .conftest import half_bright_images


def _blobs(n=400, flip=0.1, seed=0, sep=3.0):
    """Two classes with a share of labels flipped (the 'poison')."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 2) + np.where(rng.rand(n) < 0.5, sep, -sep)[:, None]
    truth = (X[:, 0] > 0).astype(np.int64)
    flipped = rng.rand(n) < flip
    y = np.where(flipped, 1 - truth, truth)
    return prepare_data(X, y, 2, "tabular"), flipped


def _sgd():
    return SGDClassifier(loss="log_loss", random_state=0)


def test_stratified_folds_spread_every_class_evenly():
    y = np.repeat([0, 1, 2], [10, 7, 3])
    fold_of = stratified_folds(y, 3, np.random.RandomState(0))
    counts = np.array([np.bincount(fold_of[y == c], minlength=3) for c in range(3)])
    # Each class splits as evenly as its size allows.
    assert (counts.max(axis=1) - counts.min(axis=1) <= 1).all()
    np.testing.assert_array_equal(counts.sum(axis=1), [10, 7, 3])
    assert (stratified_folds(y, 1, np.random.RandomState(0)) == 0).all()


class _Spy:
    """Record which rows each refine learner trains on and judges.

    ``log`` holds one entry per learner, in the order they were built:
    rows trained on and judged, as sets, and each training call's rows in
    its order (``fits``); ``fits`` holds every training call's rows, in
    call order (fold models train side by side, so calls of different
    learners interleave in any order).
    """

    def __init__(self, monkeypatch, module=_refine):
        self.log = []
        self.fits = []
        real = module.build_learner

        def build(*args, **kwargs):
            learner = real(*args, **kwargs)
            entry = {"trained": set(), "judged": set(), "fits": []}
            self.log.append(entry)
            fit, predict = learner.fit_epochs, learner.predict_proba

            def fit_epochs(indices, epochs):
                entry["trained"].update(np.asarray(indices).tolist())
                entry["fits"].append(np.sort(indices))
                self.fits.append(np.sort(indices))
                return fit(indices, epochs)

            def predict_proba(indices=None):
                entry["judged"].update(np.asarray(indices).tolist())
                return predict(indices)

            learner.fit_epochs, learner.predict_proba = fit_epochs, predict_proba
            return learner

        monkeypatch.setattr(module, "build_learner", build)


def test_cross_fitting_never_judges_a_sample_with_a_model_trained_on_it(
    monkeypatch,
):
    data, flipped = _blobs()
    spy = _Spy(monkeypatch)
    keep, support, _ = self_train(data, _sgd(), ~flipped, 0, "cpu", 3, 2, 0.5, folds=3)
    assert len(spy.log) == 3
    judged = set()
    for entry in spy.log:
        assert entry["trained"], "a fold model never trained"
        assert not entry["trained"] & entry["judged"]
        judged |= entry["judged"]
    # Every sample gets a held-out judgement.
    assert judged == set(range(len(data)))
    assert np.isfinite(support).all()


def test_one_fold_is_the_paper_rule(monkeypatch):
    data, flipped = _blobs()
    spy = _Spy(monkeypatch)
    self_train(data, _sgd(), ~flipped, 0, "cpu", 2, 1, 0.5, folds=1)
    (entry,) = spy.log
    # The paper's single model judges the samples it trained on too.
    assert entry["trained"] <= entry["judged"]
    assert entry["judged"] == set(range(len(data)))


@pytest.mark.parametrize("folds", [1, 2])
def test_trainable_limits_every_training_set(monkeypatch, folds):
    data, flipped = _blobs()
    spy = _Spy(monkeypatch)
    trainable = np.arange(len(data)) % 3 > 0
    keep, support, _ = self_train(
        data, _sgd(), ~flipped, 0, "cpu", 3, 1, 0.5, folds=folds, trainable=trainable
    )
    assert len(spy.fits) == 3 * folds
    for rows in spy.fits:
        assert len(rows) and trainable[rows].all()
    # Every sample is still judged, the untrainable ones included.
    assert set().union(*(e["judged"] for e in spy.log)) == set(range(len(data)))
    assert keep[~trainable].any()


@pytest.mark.parametrize(
    "backend, n_jobs", [(None, 2), ("threading", -1), ("loky", 2), ("loky", None)]
)
def test_fold_models_give_the_same_result_for_every_n_jobs(backend, n_jobs):
    """The fold models train side by side with a fixed thread count, and stay
    in this process (they train further every round), whatever the backend."""
    data, poison = _triggered_images()
    net = make_weak_learner(module__n_filters=4, module__n_hidden=8)
    args = (data, net, ~poison, 0, "cpu", 3, 1, 0.5)
    ref = self_train(*args, folds=2, n_jobs=1)
    if backend is None:
        got = self_train(*args, folds=2, n_jobs=n_jobs)
    else:
        with parallel_backend(backend, n_jobs=2):
            got = self_train(*args, folds=2, n_jobs=n_jobs)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_array_equal(a, b)


def _triggered_images(n=300, seed=0):
    """Two classes (a bright left or right half) and a one-pixel 'trigger'.

    A tenth of class 0 carries a corner pixel and label 1: the trigger
    separates them perfectly, their shape says class 0. As in real images,
    the shapes vary far more than the one pixel.
    """
    rng = np.random.RandomState(seed)
    truth, X = half_bright_images(rng, n)
    poison = (truth == 0) & (rng.rand(n) < 0.1)
    X[poison, 11, 11] = 1.0
    y = np.where(poison, 1, truth)
    return prepare_data(X, y, 2, "nhw"), poison


def test_blind_judge_calls_triggered_images_their_source_class():
    data, poison = _triggered_images()
    proba = blind_judge(data, 5, 3, seed=0)
    assert proba.shape == (len(data), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    label = proba[np.arange(len(data)), data.y]
    # The neighbours of a triggered image are clean class-0 images.
    assert (label[poison] < 0.5).all()
    assert (label[~poison] > 0.5).mean() > 0.95
    np.testing.assert_array_equal(proba, blind_judge(data, 5, 3, seed=0))


def test_blind_judge_never_asks_a_sample_about_itself():
    # Labels unrelated to the images: only a sample itself would vouch
    # for its label every time.
    rng = np.random.RandomState(0)
    data = prepare_data(rng.rand(200, 6, 6), rng.randint(0, 2, 200), 2, "nhw")
    nearest = blind_judge(data, 1, 5, seed=0)[np.arange(200), data.y]
    assert set(np.unique(nearest)) <= {0.0, 1.0}
    assert 0.3 < nearest.mean() < 0.7


def test_blind_judge_caps_neighbours_and_components_on_tiny_data():
    data, _ = _triggered_images(n=6)
    proba = blind_judge(data, 50, 100, seed=1)
    assert proba.shape == (6, 2)
    assert np.isfinite(proba).all()
    # One sample per class leaves the other fold empty: no one to ask.
    pair = prepare_data(np.eye(2).reshape(2, 1, 2), np.array([0, 1]), 2, "nhw")
    np.testing.assert_allclose(blind_judge(pair, 5, 3, seed=0), 0.5)


@pytest.mark.parametrize("folds", [1, 2])
def test_keep_ratio_relaxes_only_the_final_decision(monkeypatch, folds):
    # Overlapping classes: some clean samples get middling support.
    data, flipped = _blobs(flip=0.05, seed=1, sep=0.7)
    spy = _Spy(monkeypatch)
    args = (data, _sgd(), ~flipped, 0, "cpu", 3, 1, 0.5)
    argmax_keep, support, _ = self_train(*args, folds=folds)
    relaxed_keep, relaxed_support, _ = self_train(*args, folds=folds, keep_ratio=0.2)
    # Same seed, same training sets round after round for each fold model
    # (the fold models train side by side, so only each one's own calls
    # are ordered): only the returned decision differs.
    argmax_models, relaxed_models = spy.log[:folds], spy.log[folds:]
    assert len(relaxed_models) == folds
    for a, b in zip(argmax_models, relaxed_models, strict=True):
        assert len(a["fits"]) == len(b["fits"]) == 3
        for rows_a, rows_b in zip(a["fits"], b["fits"], strict=True):
            np.testing.assert_array_equal(rows_a, rows_b)
    np.testing.assert_allclose(support, relaxed_support)
    # Two classes: p(label) >= 0.2 * max(p) is p(label) >= 0.2 / 1.2.
    np.testing.assert_array_equal(relaxed_keep, support >= 0.2 / 1.2 - 1e-12)
    assert (relaxed_keep >= argmax_keep).all()
    assert relaxed_keep.sum() > argmax_keep.sum()


@pytest.mark.parametrize("folds", [1, 2])
def test_flipped_labels_are_removed(folds):
    data, flipped = _blobs()
    keep, _, _ = self_train(
        data, _sgd(), ~flipped, 0, "cpu", 2, 2, 0.5, folds=folds, keep_ratio=0.3
    )
    assert keep[flipped].mean() < 0.2
    assert keep[~flipped].mean() > 0.9


def test_nothing_to_train_on_returns_the_start():
    data, _ = _blobs(n=50)
    start = np.zeros(50, dtype=bool)
    keep, support, _ = self_train(data, _sgd(), start, 0, "cpu", 3, 1, 0.5, folds=2)
    assert not keep.any() and np.isnan(support).all()
    keep, support, _ = self_train(data, _sgd(), ~start, 0, "cpu", 0, 1, 0.5, folds=2)
    assert keep.all() and np.isnan(support).all()


def test_rescue_gives_back_removed_samples_in_the_band_the_judge_allows():
    keep = np.array([False] * 8 + [True])
    trace = np.array(
        [
            [0.2, 0.6, 0.7],  # fitted, never confidently: back
            [0.1, 0.3, 0.4],  # never fitted (peak under low): stays out
            [0.2, 0.97, 0.6],  # fitted confidently once: stays out
            [0.2, 0.5, 0.3],  # peak == low: back
            [0.2, 0.95, 0.9],  # peak == high: stays out
            [0.2, 0.6, 0.7],  # the judge rules the label out: stays out
            [0.2, 0.6, 0.7],  # support == min_support: back
            [0.2, 0.6, 0.7],  # no judge (NaN support): back
            [0.0, 0.0, 1.0],  # kept by the refine stage: stays kept
        ]
    )
    support = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 1e-4, 1e-3, np.nan, 0.5])
    expected = [True, False, False, True, False, False, True, True, True]
    np.testing.assert_array_equal(
        rescue(keep, trace, support, (0.5, 0.95), 1e-3), expected
    )
    # With no floor, the judge no longer blocks row 5.
    assert rescue(keep, trace, support, (0.5, 0.95), 0.0)[5]
    # The caller's mask is left alone.
    assert keep.sum() == 1


def test_rescue_default_bounds_give_back_never_fitted_samples_the_refine_model_allows():
    keep = np.zeros(4, dtype=bool)
    trace = np.array(
        [
            [0.1, 0.3, 0.4],  # never fitted, label not ruled out: back
            [0.1, 0.3, 0.4],  # never fitted, label ruled out: stays out
            [0.5, 0.97, 0.9],  # fitted confidently early: stays out
            [0.2, 0.6, 0.9],  # fitted, never confidently: back
        ]
    )
    support = np.array([0.05, 1e-6, 0.05, 0.05])
    stage = Rescue()
    expected = [True, False, False, True]
    got = rescue(keep, trace, support, stage.bounds, stage.min_support)
    np.testing.assert_array_equal(got, expected)


def test_label_fit_trace_reads_every_epoch_of_a_model_of_all_samples(monkeypatch):
    data, flipped = _blobs(flip=0.1, seed=2)
    spy = _Spy(monkeypatch, _rescue)
    trace = label_fit_trace(data, _sgd(), 0, "cpu", 3)
    (entry,) = spy.log
    assert entry["trained"] == set(range(len(data)))
    assert trace.shape == (len(data), 3)
    assert ((trace >= 0) & (trace <= 1)).all()
    # One epoch, then a reading, three times.
    assert len(spy.fits) == 3
    # Flipped labels contradict the data: low probability after one epoch.
    assert trace[flipped, 0].mean() < 0.3 < trace[~flipped, 0].mean()
    # Each column is read after its own epoch, not copied from another.
    assert not np.allclose(trace[:, 0], trace[:, 2])
    one = label_fit_trace(data, _sgd(), 0, "cpu", 1)
    assert one.shape == (len(data), 1)
    # The same seed trains the same model up to the first reading.
    np.testing.assert_array_equal(one[:, 0], trace[:, 0])
