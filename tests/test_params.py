"""Settings are checked before any training, with messages that name them.

A bad value of any setting (the filter's own, a nested part's given as
``voter__*`` / ``refiner__*``, an extra stage's) must raise ValueError or
TypeError naming it before a learner trains: a defense that silently
switches itself off, or fails after an hour of training, is the failure
these tests guard against.
"""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import SGDClassifier

import sklearn_ispl
from sklearn_ispl import BoostedComponentVoter, ISPLFilter
from sklearn_ispl._base import check_device
from sklearn_ispl._vote import check_components
from sklearn_ispl.experimental import (
    GroupDecision,
    GroupTriggerTest,
    LabelCompatibilityTest,
    Rescue,
    StampedTriggerCheck,
    TriggerBlindJudge,
)

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_values = st.one_of(
    st.integers(-3, 4),
    st.floats(-2, 3),
    st.sampled_from([float("nan"), float("inf")]),
    st.booleans(),
    st.sampled_from(["x", "", "sample", "competent", "add", None]),
)

# Settings of every part, drawn one to three at a time.
NAMES = [
    "n_runs",
    "n_components",
    "warmup_epochs",
    "epochs_per_iteration",
    "expansion",
    "momentum",
    "class_floor",
    "partition_samples",
    "voter__n_epochs",
    "voter__voting",
    "voter__min_votes",
    "voter__competence",
    "voter__min_agreement",
    "voter__max_samples",
    "refiner__n_rounds",
    "refiner__n_epochs",
    "refiner__momentum",
    "refiner__n_folds",
    "refiner__keep_ratio",
    "n_jobs",
]
STAGES = {
    "judge": (TriggerBlindJudge, ["n_neighbors", "n_components", "veto"]),
    "rescue": (Rescue, ["n_epochs", "bounds", "min_support"]),
    "check": (StampedTriggerCheck, ["mode", "n_neighbors"]),
    "groups": (
        GroupDecision,
        ["mode", "confidence", "min_share", "min_size", "min_isolation"],
    ),
    "group_test": (
        GroupTriggerTest,
        ["n_epochs", "threshold", "n_candidates", "min_separation", "n_rounds"],
    ),
    "compatibility": (
        LabelCompatibilityTest,
        ["n_epochs", "threshold", "min_isolation"],
    ),
}


def _data():
    rng = np.random.RandomState(0)
    y = np.arange(40) % 2
    X = rng.randn(40, 3) + 3 * y[:, None]
    return X, y


@pytest.fixture
def training_spy(monkeypatch):
    """Records whether any learner was built (the start of any training)."""
    import sklearn_ispl._learners as learners

    trained = []
    real = learners.Learner.__init__

    def init(self, *args, **kwargs):
        trained.append(True)
        real(self, *args, **kwargs)

    monkeypatch.setattr(learners.Learner, "__init__", init)
    return trained


@FUZZ
@given(
    params=st.dictionaries(st.sampled_from(NAMES), _values, min_size=1, max_size=3),
    stage=st.one_of(
        st.none(),
        st.tuples(
            st.sampled_from(sorted(STAGES)),
            st.data(),
        ),
    ),
)
def test_any_setting_fits_or_is_refused_by_name_before_training(params, stage):
    import sklearn_ispl._learners as learners

    named = list(params)
    stages = []
    if stage is not None:
        kind, data = stage
        cls, names = STAGES[kind]
        name = data.draw(st.sampled_from(names))
        value = data.draw(st.one_of(_values, st.tuples(_values, _values)))
        stages = [cls(**{name: value})]
        named.append(name)
    filt = ISPLFilter(
        weak_learner=SGDClassifier(loss="log_loss", random_state=0),
        n_runs=1,
        n_components=2,
        warmup_epochs=1,
        epochs_per_iteration=1,
        voter__n_epochs=1,
        refiner__n_rounds=1,
        refiner__n_epochs=1,
        extra_stages=stages,
        random_state=0,
    ).set_params(**params)
    X, y = _data()
    trained = []
    real = learners.Learner.__init__

    def init(self, *args, **kwargs):
        trained.append(True)
        real(self, *args, **kwargs)

    learners.Learner.__init__ = init
    try:
        filt.fit(X, y)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        assert any(name.rsplit("__", 1)[-1] in message for name in named), message
        assert not trained, f"refused only after training started: {message}"
    else:
        assert filt.keep_mask_.shape == y.shape
    finally:
        learners.Learner.__init__ = real


@pytest.mark.parametrize(
    "cls",
    [
        ISPLFilter,
        BoostedComponentVoter,
        sklearn_ispl.SpectralSignatureFilter,
        sklearn_ispl.ActivationClusteringFilter,
        sklearn_ispl.ITLMFilter,
        sklearn_ispl.ConfidentLearningFilter,
    ],
)
def test_n_jobs_zero_is_refused_by_every_filter(cls, training_spy):
    X, y = _data()
    with pytest.raises(ValueError, match="n_jobs=0"):
        cls(n_jobs=0).fit(X.reshape(40, 1, 3), y)
    assert not training_spy


def test_a_weak_learners_declared_constraints_are_checked_first(training_spy):
    X, y = _data()
    filt = ISPLFilter(SGDClassifier(loss="log_loss"), weak_learner__alpha=-1)
    with pytest.raises(ValueError, match="weak_learner: The 'alpha' parameter"):
        filt.fit(X, y)
    assert not training_spy


class TestDevice:
    def test_names_that_are_no_device(self):
        for bad in ("tpu", "cuda:x", "cuda:-1", "cuda:", "", "CPU", 3):
            with pytest.raises(ValueError, match="device must be"):
                check_device(bad)
        check_device("cpu")

    def test_a_device_this_machine_lacks(self, monkeypatch):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        with pytest.raises(ValueError, match="no CUDA GPU"):
            check_device("cuda")
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
        with pytest.raises(ValueError, match="mps"):
            check_device("mps")

    def test_a_cuda_index_beyond_the_devices(self, monkeypatch):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
        check_device("cuda")
        check_device("cuda:1")
        with pytest.raises(ValueError, match="only 2 CUDA"):
            check_device("cuda:2")

    def test_the_filter_refuses_it_before_training(self, monkeypatch, training_spy):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        X, y = _data()
        with pytest.raises(ValueError, match="device='cuda:7'"):
            ISPLFilter(device="cuda:7").fit(X, y)
        assert not training_spy


class TestComponents:
    @pytest.mark.parametrize(
        "components, match",
        [
            (np.full(10, -1), "every label is negative"),
            (np.linspace(0, 1, 10), "must be integers"),
            (5, "got int"),
            ("abc", "got str"),
            ([np.array([0.5, 1.5])], r"components\[0\] must be a 1-D array"),
            ([np.array([0, 12])], r"components\[0\] holds indices outside"),
            ([np.zeros(3, dtype=bool)], r"components\[0\] is a boolean mask"),
            ([[]], "at least one non-empty component"),
        ],
    )
    def test_bad_components_are_named(self, components, match):
        with pytest.raises(ValueError, match=match):
            check_components(components, 10)

    def test_labels_and_index_lists_are_read(self):
        labels = np.array([0, 0, 1, -1, 1])
        parts = check_components(labels, 5)
        assert [p.tolist() for p in parts] == [[0, 1], [2, 4]]
        parts = check_components([[3, 1, 1], np.array([True, False] * 2 + [True])], 5)
        assert [p.tolist() for p in parts] == [[1, 3], [0, 2, 4]]
