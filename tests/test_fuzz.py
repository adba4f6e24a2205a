"""Fuzzed input: every input ends in a fitted filter or a named error.

The contract checked for each generated input: ``fit`` either returns a
fitted filter, or raises ``ValueError`` / ``TypeError`` whose message names
the problem (and leaves the filter unfitted). Any other exception, a hang, or
a change to the caller's ``X`` or ``y`` (read-only arrays included) fails.

Weak learners are ``SGDClassifier`` and every setting is at its cheapest, so
that most of the time goes into validation, which is what is fuzzed.
"""

import re
import signal
from contextlib import contextmanager

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import SGDClassifier
from sklearn.utils.validation import check_is_fitted

from sklearn_ispl import BoostedComponentVoter, ISPLFilter, ITLMFilter

from .conftest import tiny_ispl

pd = pytest.importorskip("pandas")

# One fit of these filters on a dozen rows takes well under a second; an
# example that runs this long is stuck.
HANG_SECONDS = 60

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _sgd():
    return SGDClassifier(loss="log_loss", random_state=0)


def _ispl(**params):
    settings_ = dict(
        weak_learner=_sgd(),
        n_runs=1,
        n_components=2,
        warmup_epochs=1,
        epochs_per_iteration=1,
        refiner__n_rounds=1,
        refiner__n_epochs=1,
        voter=BoostedComponentVoter(n_epochs=1),
        random_state=0,
    )
    settings_.update(params)
    return ISPLFilter(**settings_)


def _voter(**params):
    return BoostedComponentVoter(
        _sgd(),
        n_epochs=1,
        partitioner=KMeans(2, n_init=1, random_state=0),
        random_state=0,
        **params,
    )


def _itlm(**params):
    return ITLMFilter(
        _sgd(), n_rounds=1, first_epochs=1, epochs=1, random_state=0, **params
    )


FILTERS = {"ispl": _ispl, "voter": _voter, "itlm": _itlm}


class _Hang(Exception):
    pass


@contextmanager
def _no_hang(seconds=HANG_SECONDS):
    def on_alarm(signum, frame):
        raise _Hang(f"fit ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- snapshots: the caller's inputs must come back unchanged ----------------


def _snapshot(obj):
    if isinstance(obj, pd.DataFrame | pd.Series):
        return ("pandas", obj.copy(deep=True))
    if isinstance(obj, np.ndarray):
        return ("array", obj.copy(), obj.flags.writeable)
    if sp.issparse(obj):
        return ("sparse", obj.copy())
    if isinstance(obj, list):
        return ("list", [_snapshot(v) for v in obj])
    return ("other", obj)


def _assert_unchanged(obj, snap):
    kind = snap[0]
    if kind == "pandas":
        if isinstance(obj, pd.DataFrame):
            pd.testing.assert_frame_equal(obj, snap[1])
        else:
            pd.testing.assert_series_equal(obj, snap[1])
    elif kind == "array":
        before, writeable = snap[1], snap[2]
        assert obj.dtype == before.dtype and obj.shape == before.shape
        assert obj.flags.writeable == writeable
        if obj.dtype.hasobject:
            # The copy holds the same objects; a replaced one differs.
            assert all(a is b for a, b in zip(obj.flat, before.flat, strict=True))
        else:
            # Bytes, not values: NaN and NaT are unequal to themselves.
            assert np.ascontiguousarray(obj).tobytes() == before.tobytes()
    elif kind == "sparse":
        assert (obj != snap[1]).nnz == 0
    elif kind == "list":
        assert len(obj) == len(snap[1])
        for v, s in zip(obj, snap[1], strict=True):
            _assert_unchanged(v, s)
    else:
        # Scalars and None: NaN is the one value unequal to itself.
        assert obj is snap[1] or obj == snap[1] or (obj != obj and snap[1] != snap[1])


def check_outcome(estimator, X, y, match=None):
    """Fit and check the contract; return "fitted" or the exception raised.

    ``match=None`` requires a successful fit; a regex requires a
    ``ValueError`` or ``TypeError`` whose message it finds; ``match=""``
    accepts either outcome (inputs of unknown validity).
    """
    snaps = _snapshot(X), _snapshot(y)
    error = None
    try:
        with _no_hang():
            estimator.fit(X, y)
    except (ValueError, TypeError) as exc:
        error = exc
    finally:
        _assert_unchanged(X, snaps[0])
        _assert_unchanged(y, snaps[1])
    if error is None:
        assert match is None or match == "", f"no error; expected /{match}/"
        check_is_fitted(estimator)
        n = len(y)
        assert estimator.keep_mask_.shape == (n,)
        assert estimator.keep_mask_.dtype == bool
        assert estimator.scores_.shape == (n,)
        np.testing.assert_array_equal(
            estimator.sample_indices_, np.flatnonzero(estimator.keep_mask_)
        )
        return "fitted"
    if match is None:
        raise AssertionError(f"valid input was refused: {error!r}") from error
    message = str(error)
    assert message.strip(), f"{type(error).__name__} without a message"
    assert re.search(match, message, flags=re.IGNORECASE), (
        f"message does not name the problem /{match}/: {message!r}"
    )
    # A failed fit leaves nothing that looks fitted.
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator)
    return error


# -- strategies -------------------------------------------------------------

DTYPES = ["uint8", "int16", "int64", "float16", "float32", "float64", "bool"]
LAYOUTS = ["tabular", "nhw", "nhwc", "nchw", "flat"]


def _elements(dtype):
    if np.dtype(dtype).kind == "f":
        return st.floats(-100, 100, width=np.dtype(dtype).itemsize * 8)
    return None  # the dtype's full range


@st.composite
def valid_inputs(draw):
    """``(X, y, params)`` every filter must fit, in every container."""
    n_classes = draw(st.integers(2, 3))
    n = draw(st.integers(max(4, n_classes), 12))
    if draw(st.booleans()):
        # A class with a single sample.
        codes = np.r_[np.zeros(n - 1, dtype=int), 1]
        n_classes = 2
    else:
        codes = np.arange(n) % n_classes
    codes = np.asarray(draw(st.permutations(codes.tolist())), dtype=int)
    names = draw(
        st.sampled_from(
            [
                np.array([0, 1, 2]),
                np.array([-7, 10**12, 3]),
                np.array([0.0, 1.0, 2.0]),
                np.array(["cat", "dog", "emu"]),
                np.array(["cat", "dog", "emu"], dtype=object),
            ]
        )
    )
    y = names[codes]

    layout = draw(st.sampled_from(LAYOUTS))
    dtype = draw(st.sampled_from(DTYPES))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    c = draw(st.sampled_from([1, 3]))
    params = {}
    if layout == "tabular":
        shape = (n, draw(st.integers(1, 6)))
    elif layout == "nhw":
        shape = (n, h, w)
    elif layout == "nhwc":
        # 4-D layouts are read from where the channel axis is: keep the
        # other sides away from channel sizes so the layout is unambiguous.
        h, w = h + 4, w + 4
        shape = (n, h, w, c)
    elif layout == "nchw":
        h, w = h + 4, w + 4
        shape = (n, c, h, w)
    else:
        shape = (n, h * w * c)
        params["image_shape"] = (h, w, c) if c > 1 else (h, w)
    X = draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))

    container = draw(st.sampled_from(["array", "strided", "readonly", "list", "df"]))
    if container == "strided":
        X = np.stack([X, X], axis=-1)[..., 0]
        assert not X.flags.c_contiguous
    elif container == "readonly":
        X = X.copy()
        X.setflags(write=False)
        y = y.copy()
        y.setflags(write=False)
    elif container == "list":
        X = X.tolist()
    elif container == "df" and X.ndim == 2:
        X = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    y_container = draw(st.sampled_from(["array", "list", "series"]))
    if y_container == "list":
        y = y.tolist()
    elif y_container == "series":
        y = pd.Series(y, index=np.arange(n) * 3 + 5, name="label")
    return X, y, params


# Each defect: how to apply it to valid numeric arrays, and what the error
# message must mention.
def _nan(X, y):
    X = X.astype(np.float64)
    X.flat[0] = np.nan
    return X, y


def _inf(X, y):
    X = X.astype(np.float64)
    X.flat[-1] = -np.inf
    return X, y


def _huge(X, y):
    X = X.astype(np.float64)
    X.flat[0] = 1e300
    return X, y


def _mixed_labels(X, y):
    y = y.astype(object)
    y[0] = "a"
    return X, y


def _missing_label(X, y):
    y = y.astype(object)
    y[-1] = None
    return X, y


def _nan_label(X, y):
    y = y.astype(np.float64)
    y[0] = np.nan
    return X, y


def _continuous(X, y):
    return X, y + np.linspace(0.1, 0.9, len(y))


def _bytes_and_str(X, y):
    y = np.array(["a" if v else "b" for v in y % 2], dtype=object)
    y[0] = b"a"
    return X, y


def _multilabel(X, y):
    return X, np.stack([y % 2, (y + 1) % 2, np.ones_like(y)], axis=1)


def _ambiguous_channels(X, y):
    return np.zeros((len(y), 5, 5, 5), dtype=X.dtype), y


DEFECTS = {
    "nan": (_nan, "NaN"),
    "inf": (_inf, "infinity"),
    "huge": (_huge, "too large for float32"),
    "empty": (lambda X, y: (X[:0], y[:0]), r"0 sample"),
    "short_y": (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
    "long_y": (lambda X, y: (X, np.r_[y, y[:1]]), "inconsistent numbers of samples"),
    "one_class": (lambda X, y: (X, np.zeros_like(y)), "2 classes"),
    "one_sample": (lambda X, y: (X[:1], y[:1]), r"1 sample|minimum of 2"),
    "mixed_labels": (_mixed_labels, "mixes labels"),
    "missing_label": (_missing_label, "missing labels"),
    "nan_label": (_nan_label, "missing labels"),
    "continuous": (_continuous, "label type"),
    "bytes_and_str": (_bytes_and_str, "mixes labels"),
    "multilabel": (_multilabel, "multilabel"),
    "complex": (lambda X, y: (X.astype(complex), y), "complex"),
    "strings": (lambda X, y: (X.astype(str), y), "string"),
    "object_X": (
        lambda X, y: (np.array([[object()]] * len(y), dtype=object), y),
        "float|number|numeric",
    ),
    "y_none": (lambda X, y: (X, None), "requires y"),
    "one_d": (lambda X, y: (X.reshape(-1)[: len(y)], y), "2D array"),
    "five_d": (lambda X, y: (X.reshape(len(y), 1, 1, -1, 1), y), "ndim=5"),
    "zero_features": (lambda X, y: (X[:, :0], y), r"0 feature"),
    "zero_pixels": (lambda X, y: (X.reshape(len(y), 1, -1)[:, :, :0], y), "0 values"),
    "channels": (_ambiguous_channels, "channel"),
    "sparse": (lambda X, y: (sp.csr_matrix(X), y), "sparse"),
    "image_shape": (lambda X, y: (X, y), "image_shape"),
    "too_many_components": (lambda X, y: (X, y), "n_components|n_clusters|n_samples"),
    "df_strings": (
        lambda X, y: (pd.DataFrame({"a": ["x"] * len(y), "b": 1.0}), y),
        "convert|string",
    ),
    "df_nullable": (
        lambda X, y: (pd.DataFrame({"a": pd.array([None] + [1] * (len(y) - 1))}), y),
        "NaN|missing|NA",
    ),
    "series_missing_label": (
        lambda X, y: (X, pd.Series(pd.array([None, *y[1:].tolist()], dtype="Int64"))),
        "missing labels",
    ),
    "ragged_list": (lambda X, y: ([[1.0, 2.0]] + [[1.0]] * (len(y) - 1), y), "shape"),
}


@st.composite
def defective_inputs(draw, defect):
    """``(estimator, X, y, match)``: valid inputs with the one ``defect``."""
    apply, match = DEFECTS[defect]
    n = draw(st.integers(4, 12))
    y = np.arange(n) % 2
    X = draw(
        hnp.arrays(
            draw(st.sampled_from(["uint8", "float32", "float64"])),
            (n, draw(st.integers(2, 6))),
            elements=st.integers(0, 100),
        )
    )
    name = draw(st.sampled_from(sorted(FILTERS)))
    params = {}
    if defect == "image_shape":
        params["image_shape"] = (X.shape[1] + 1, 1)
    elif defect == "too_many_components":
        name = "ispl"
        params["n_components"] = n + 1
    X, y = apply(X, y)
    if draw(st.booleans()) and isinstance(X, np.ndarray):
        X = X.copy()
        X.setflags(write=False)
    return FILTERS[name](**params), X, y, match


# hnp.arrays cannot draw from every dtype at every shape cheaply; these cover
# the kinds numpy has (integers, floats with NaN and inf, bool, complex,
# strings, dates) with shapes from 0-D to 5-D, empty axes included.
ANY_DTYPES = [
    "uint8",
    "int64",
    "float32",
    "float64",
    "bool",
    "complex128",
    "U3",
    "datetime64[s]",
]


@st.composite
def arbitrary_inputs(draw):
    """``(estimator, X, y)``: anything array-like, valid or not."""
    X = draw(
        hnp.arrays(
            st.sampled_from(ANY_DTYPES),
            hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5),
        )
    )
    n = len(X) if X.ndim else 0
    n_y = draw(st.sampled_from([n, n, n, max(n - 1, 0), n + 1]))
    label = st.one_of(
        st.integers(-3, 3),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from([0.5, 1.0, np.nan, np.inf]),
        st.booleans(),
        st.none(),
    )
    y = draw(st.lists(label, min_size=n_y, max_size=n_y))
    y_container = draw(st.sampled_from(["list", "array", "series"]))
    if y_container == "array":
        y = np.array(y, dtype=object) if y else np.array([], dtype=int)
    elif y_container == "series":
        y = pd.Series(y, dtype=object)
    X_container = draw(st.sampled_from(["array", "readonly", "strided"]))
    if X_container == "readonly":
        X.setflags(write=False)
    elif X_container == "strided" and X.ndim:
        X = np.stack([X, X], axis=-1)[..., 1]
    name = draw(st.sampled_from(sorted(FILTERS)))
    return FILTERS[name](), X, y


@settings(FUZZ, max_examples=150)
@given(case=valid_inputs(), name=st.sampled_from(sorted(FILTERS)))
def test_valid_input_is_fitted(case, name):
    X, y, params = case
    check_outcome(FILTERS[name](**params), X, y)


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_bad_input_raises_a_named_error(defect):
    @settings(FUZZ, max_examples=5)
    @given(case=defective_inputs(defect))
    def check(case):
        estimator, X, y, match = case
        check_outcome(estimator, X, y, match)

    check()


@settings(FUZZ, max_examples=200)
@given(case=arbitrary_inputs())
def test_arbitrary_input_fits_or_raises_value_or_type_error(case):
    estimator, X, y = case
    check_outcome(estimator, X, y, match="")


@settings(FUZZ, max_examples=4)
@given(case=valid_inputs())
def test_valid_input_with_the_default_network(case):
    """The default skorch learner takes every layout the linear one takes."""
    X, y, params = case
    check_outcome(tiny_ispl(**params), X, y)
