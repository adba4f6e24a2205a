"""Reliability: determinism across backends, persistence, failures mid-fit."""

import gc
import io
import os
import pickle
import weakref

import joblib
import numpy as np
import pytest
import torch
from joblib import parallel_backend
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import SGDClassifier
from sklearn.utils.validation import check_is_fitted

import sklearn_ispl._learners as learners
from sklearn_ispl import (
    ActivationClusteringFilter,
    BoostedComponentVoter,
    ConfidentLearningFilter,
    ISPLFilter,
    ITLMFilter,
    SpectralSignatureFilter,
    make_weak_learner,
)
from sklearn_ispl.datasets import load_digits_images

from .conftest import tiny_ispl, tiny_voter


@pytest.fixture(scope="module")
def digits():
    """300 digit images, 8x8, ten classes."""
    X, y = load_digits_images()
    return X[:300], y[:300]


def _sgd():
    return SGDClassifier(loss="log_loss", random_state=0)


def linear_ispl(**params):
    """ISPLFilter with two runs and several components: many parallel tasks."""
    settings = dict(
        weak_learner=_sgd(),
        n_runs=2,
        n_components=3,
        warmup_epochs=1,
        epochs_per_iteration=1,
        voter=BoostedComponentVoter(n_epochs=2),
        refiner__n_rounds=1,
        refiner__n_epochs=1,
        random_state=0,
    )
    settings.update(params)
    return ISPLFilter(**settings)


def fitted_attributes(estimator):
    return {k: v for k, v in vars(estimator).items() if k.endswith("_") and k[0] != "_"}


def assert_same_value(a, b, name):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), name
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), name
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            assert_same_value(u, v, f"{name}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), name
        for k in a:
            assert_same_value(a[k], b[k], f"{name}[{k!r}]")
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), name
    else:
        assert type(a) is type(b) and a == b, name


# Wall-clock measurements differ between any two fits.
TIMINGS = {"stage_times_"}


def assert_same_fit(a, b, ignore=TIMINGS):
    """Every fitted attribute of ``a`` equals that of ``b``, arrays exactly.

    Attributes in ``ignore`` need only be present in both.
    """
    attrs_a, attrs_b = fitted_attributes(a), fitted_attributes(b)
    assert attrs_a.keys() == attrs_b.keys()
    assert "keep_mask_" in attrs_a
    for name in attrs_a.keys() - set(ignore):
        assert_same_value(attrs_a[name], attrs_b[name], name)


# -- determinism ------------------------------------------------------------

DETERMINISTIC = {
    "ispl": linear_ispl,
    "voter": lambda **p: BoostedComponentVoter(
        _sgd(),
        n_epochs=2,
        partitioner=KMeans(4, n_init=1, random_state=0),
        random_state=0,
        **p,
    ),
    "confident": lambda **p: ConfidentLearningFilter(
        _sgd(), n_epochs=2, cv=3, random_state=0, **p
    ),
}


@pytest.fixture(scope="module")
def references(digits):
    """One sequential fit of each filter, to compare parallel fits with."""
    X, y = digits
    refs = {}
    for name, make in DETERMINISTIC.items():
        if name == "confident":
            pytest.importorskip("cleanlab")
        refs[name] = make(n_jobs=1).fit(X, y)
    return refs


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
@pytest.mark.parametrize(
    "backend, n_jobs",
    [(None, 2), ("loky", 2), ("loky", None), ("threading", 2), ("threading", -1)],
)
def test_result_does_not_depend_on_the_backend(
    digits, references, name, backend, n_jobs
):
    X, y = digits
    estimator = DETERMINISTIC[name](n_jobs=n_jobs)
    if backend is None:
        estimator.fit(X, y)
    else:
        with parallel_backend(backend, n_jobs=2):
            estimator.fit(X, y)
    assert_same_fit(estimator, references[name])


def test_default_network_gives_the_same_result_in_worker_processes(digits):
    """Trainings in threads or worker processes give the sequential result."""
    X, y = digits
    # Two cross-fitted refine models over two rounds: they train further in
    # the second round, so a copy trained in a worker would show.
    params = dict(n_runs=2, n_components=3, refiner__n_folds=2, refiner__n_rounds=2)
    ref = tiny_ispl(**params, n_jobs=1).fit(X, y)
    for backend in ("loky", "threading"):
        with parallel_backend(backend, n_jobs=2):
            est = tiny_ispl(**params, n_jobs=2).fit(X, y)
        assert_same_fit(est, ref)


@pytest.fixture(scope="module")
def dask_client():
    """A two-process Dask cluster on loopback, closed after the module."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    try:
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


@pytest.mark.parametrize("name", ["ispl", "voter"])
@pytest.mark.parametrize("n_jobs", [None, -1])
def test_dask_cluster_gives_the_same_result(
    digits, references, dask_client, name, n_jobs
):
    from distributed import get_task_stream

    X, y = digits
    estimator = DETERMINISTIC[name](n_jobs=n_jobs)
    with get_task_stream(dask_client) as stream:
        with parallel_backend("dask"):
            estimator.fit(X, y)
    assert_same_fit(estimator, references[name])
    # The trainings ran on the cluster's workers, not in this process.
    workers = {task["worker"] for task in stream.data}
    assert workers and workers <= set(dask_client.scheduler_info()["workers"])


# -- persistence ------------------------------------------------------------

PERSISTED = {
    "ispl": lambda: tiny_ispl(),
    "voter": lambda: tiny_voter(),
    "ispl_linear": lambda: linear_ispl(n_runs=1),
    "spectral": lambda: SpectralSignatureFilter(n_epochs=1, random_state=0),
    "activation": lambda: ActivationClusteringFilter(n_epochs=1, random_state=0),
    "itlm": lambda: ITLMFilter(n_rounds=2, first_epochs=1, epochs=1, random_state=0),
    "confident": lambda: ConfidentLearningFilter(n_epochs=1, cv=2, random_state=0),
}


@pytest.fixture(scope="module", params=sorted(PERSISTED))
def fitted(request, digits):
    if request.param == "confident":
        pytest.importorskip("cleanlab")
    X, y = digits
    return PERSISTED[request.param]().fit(X, y)


def _pickle_round_trip(estimator, tmp_path):
    return pickle.loads(pickle.dumps(estimator))


def _joblib_round_trip(estimator, tmp_path):
    path = tmp_path / "filter.joblib"
    joblib.dump(estimator, path)
    return joblib.load(path)


@pytest.mark.parametrize("round_trip", [_pickle_round_trip, _joblib_round_trip])
def test_fitted_filter_survives_a_round_trip(fitted, round_trip, tmp_path, digits):
    loaded = round_trip(fitted, tmp_path)
    check_is_fitted(loaded)
    assert_same_fit(loaded, fitted, ignore=())
    assert repr(loaded.get_params()) == repr(fitted.get_params())
    # The loaded filter refits to the same answer.
    X, y = digits
    X_kept, y_kept = loaded.fit_resample(X, y)
    np.testing.assert_array_equal(y_kept, y[fitted.keep_mask_])


def test_fitted_filter_holds_no_weak_learner(fitted):
    """Learners are released after their predictions are taken."""
    payload = pickle.dumps(fitted_attributes(fitted))
    modules = []

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            modules.append(module)
            return super().find_class(module, name)

    Recorder(io.BytesIO(payload)).load()
    assert modules  # numpy arrays at least: the recorder sees classes
    for name in ("torch", "skorch", "sklearn.linear_model"):
        assert not [m for m in modules if m == name or m.startswith(name + ".")]

    def plain(value):
        if isinstance(value, dict):
            return all(plain(v) for v in value.values())
        if isinstance(value, list | tuple):
            return all(plain(v) for v in value)
        return value is None or isinstance(
            value, np.ndarray | np.generic | int | float | str
        )

    for name, value in fitted_attributes(fitted).items():
        assert plain(value), name


@pytest.mark.parametrize("make", [tiny_ispl, tiny_voter], ids=["ispl", "voter"])
def test_weak_learners_are_released_after_fit(digits, monkeypatch, make):
    """No learner (nor its torch module) outlives the fit that trained it."""
    X, y = digits
    original = learners.Learner.__init__
    alive = []

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        alive.append((weakref.ref(self), weakref.ref(self.estimator.module_)))

    monkeypatch.setattr(learners.Learner, "__init__", init)
    estimator = make().fit(X, y)
    gc.collect()
    assert len(alive) >= 2
    assert [r for pair in alive for r in pair if r() is not None] == []
    check_is_fitted(estimator)


# -- interruption and failure -----------------------------------------------


def _interrupt_after(monkeypatch, n_calls, exc=KeyboardInterrupt):
    """Make the ``n_calls``-th training step of any learner raise ``exc``."""
    original = learners.Learner.fit_epochs
    calls = []

    def fit_epochs(self, indices, epochs):
        calls.append(1)
        if len(calls) >= n_calls:
            raise exc()
        return original(self, indices, epochs)

    monkeypatch.setattr(learners.Learner, "fit_epochs", fit_epochs)
    return calls


INTERRUPTED = {
    "ispl": lambda: linear_ispl(n_jobs=1),
    "ispl_cnn": lambda: tiny_ispl(),
    "voter": lambda: DETERMINISTIC["voter"](n_jobs=1),
    "itlm": lambda: ITLMFilter(
        _sgd(), n_rounds=2, first_epochs=1, epochs=1, random_state=0
    ),
}


@pytest.mark.parametrize("name", sorted(INTERRUPTED))
@pytest.mark.parametrize("n_calls", [1, 2])
def test_interrupted_fit_leaves_nothing_fitted(digits, monkeypatch, name, n_calls):
    X, y = digits
    estimator = INTERRUPTED[name]().fit(X, y)
    reference = INTERRUPTED[name]().fit(X, y)
    check_is_fitted(estimator)

    calls = _interrupt_after(monkeypatch, n_calls)
    with pytest.raises(KeyboardInterrupt):
        estimator.fit(X, y)
    assert len(calls) == n_calls  # it stopped mid-fit, where we said
    assert fitted_attributes(estimator) == {}
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator)

    monkeypatch.undo()
    X_kept, y_kept = estimator.fit_resample(X, y)
    assert_same_fit(estimator, reference)
    np.testing.assert_array_equal(y_kept, y[reference.keep_mask_])


class WorkerFailure(RuntimeError):
    """Raised by :class:`FailingClassifier` in whichever process trains it."""


class FailingClassifier(SGDClassifier):
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        raise WorkerFailure(f"training failed in process {os.getpid()}")


def test_worker_exception_surfaces_with_its_type(digits):
    X, y = digits
    estimator = linear_ispl(weak_learner=FailingClassifier(loss="log_loss"), n_jobs=2)
    with parallel_backend("loky", n_jobs=2):
        with pytest.raises(WorkerFailure, match="training failed in process") as info:
            estimator.fit(X, y)
    # It was raised in a loky worker, not in this process.
    assert int(str(info.value).split()[-1]) != os.getpid()
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator)


def _diverging_net():
    # Plain SGD with an absurd step size: the weights overflow in one epoch.
    return make_weak_learner((64,), 10, lr=1e6, optimizer=torch.optim.SGD)


@pytest.mark.parametrize(
    "make",
    [
        lambda: linear_ispl(weak_learner=_diverging_net()),
        lambda: BoostedComponentVoter(
            _diverging_net(), n_epochs=2, partitioner=KMeans(2, n_init=1)
        ),
        lambda: ITLMFilter(_diverging_net(), n_rounds=1, first_epochs=2),
    ],
    ids=["ispl", "voter", "itlm"],
)
def test_diverging_learner_is_reported(digits, make):
    X, y = digits
    estimator = make()
    with pytest.raises(FloatingPointError, match="learning rate"):
        estimator.fit(X.reshape(len(X), -1), y)
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator)


def test_nan_training_loss_is_caught_at_once(digits, monkeypatch):
    """A NaN loss stops training in the epoch it appears, before any vote."""
    X, y = digits
    net = make_weak_learner((64,), 10, lr=1e-3)
    original = learners.Learner.predict_proba
    predicted = []

    def predict_proba(self, indices=None):
        predicted.append(1)
        return original(self, indices)

    monkeypatch.setattr(learners.Learner, "predict_proba", predict_proba)
    net.set_params(criterion=_NaNLoss)
    with pytest.raises(FloatingPointError, match="training loss became nan"):
        linear_ispl(weak_learner=net).fit(X.reshape(len(X), -1), y)
    assert predicted == []


class _NaNLoss(torch.nn.CrossEntropyLoss):
    def forward(self, logits, target):
        return super().forward(logits, target) * float("nan")
