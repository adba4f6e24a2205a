"""Every layout is read the same way; bad input fails early and clearly."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import SGDClassifier

from sklearn_ispl import (
    ActivationClusteringFilter,
    BoostedComponentVoter,
    ConfidentLearningFilter,
    ISPLFilter,
    ITLMFilter,
    SpectralSignatureFilter,
)
from sklearn_ispl._validation import check_filter_input, prepare_data

from .conftest import tiny_ispl


@pytest.fixture(scope="module")
def images():
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, size=(60, 6, 6, 3)).astype(np.uint8)
    y = np.repeat([0, 1, 2], 20)
    X[y == 1, :3] = 255  # a visible class signal
    return X, y


def _fit(X, y, **params):
    return tiny_ispl(**params).fit(X, y)


class TestLayouts:
    def test_every_layout_gives_the_same_result(self, images):
        X, y = images  # (n, H, W, C)
        ref = _fit(X, y)
        assert ref.input_layout_ == "nhwc"
        nchw = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
        flat = X.reshape(len(X), -1)
        for X_other, params, layout in [
            (nchw, {}, "nchw"),
            (flat, {"image_shape": (6, 6, 3)}, "flat"),
            (X.astype(np.float32), {}, "nhwc"),
        ]:
            est = _fit(X_other, y, **params)
            assert est.input_layout_ == layout
            np.testing.assert_array_equal(est.keep_mask_, ref.keep_mask_)
            np.testing.assert_array_equal(est.scores_, ref.scores_)
            assert est.n_features_in_ == 108

    def test_grayscale_and_flat_grayscale_agree(self, images):
        X, y = images
        gray = X[..., 0]
        a = _fit(gray, y)
        b = _fit(gray.reshape(len(gray), -1), y, image_shape=(6, 6))
        assert a.input_layout_ == "nhw" and b.input_layout_ == "flat"
        np.testing.assert_array_equal(a.keep_mask_, b.keep_mask_)

    def test_labels_of_any_type(self, images):
        X, y = images
        ref = _fit(X, y)
        names = np.array(["cat", "dog", "emu"])[y]
        est = _fit(X, names)
        np.testing.assert_array_equal(est.keep_mask_, ref.keep_mask_)
        np.testing.assert_array_equal(est.classes_, ["cat", "dog", "emu"])
        X_kept, y_kept = tiny_ispl().fit_resample(X, list(names))
        assert isinstance(y_kept, list) and set(y_kept) <= {"cat", "dog", "emu"}

    def test_pandas_in_pandas_out(self, images):
        pd = pytest.importorskip("pandas")
        X, y = images
        flat = X.reshape(len(X), -1).astype(float)
        df = pd.DataFrame(flat, columns=[f"p{i}" for i in range(flat.shape[1])])
        s = pd.Series(y, name="label", index=np.arange(100, 160))
        est = tiny_ispl(image_shape=(6, 6, 3))
        X_kept, y_kept = est.fit_resample(df, s)
        assert isinstance(X_kept, pd.DataFrame) and isinstance(y_kept, pd.Series)
        assert list(X_kept.columns) == list(df.columns)
        np.testing.assert_array_equal(y_kept.index, s.index[est.keep_mask_])
        np.testing.assert_array_equal(est.feature_names_in_, df.columns)


class TestInputsAreNotModified:
    def test_read_only_inputs(self, images):
        X, y = images
        X, y = X.copy(), y.copy()
        X.setflags(write=False)
        y.setflags(write=False)
        before = X.copy(), y.copy()
        X_kept, y_kept = tiny_ispl().fit_resample(X, y)
        np.testing.assert_array_equal(X, before[0])
        np.testing.assert_array_equal(y, before[1])
        # The kept rows are a copy the caller owns.
        assert X_kept.flags.writeable and not np.shares_memory(X_kept, X)

    def test_float_inputs_are_not_rescaled_in_place(self, images):
        X, y = images
        Xf = X.astype(np.float32)
        copy = Xf.copy()
        tiny_ispl().fit(Xf, y)
        np.testing.assert_array_equal(Xf, copy)

    def test_non_contiguous_input(self, images):
        X, y = images
        strided = np.concatenate([X, X], axis=2)[:, :, ::2]
        assert not strided.flags.c_contiguous
        est = _fit(strided, y)
        np.testing.assert_array_equal(
            est.keep_mask_, _fit(np.ascontiguousarray(strided), y).keep_mask_
        )


def _objects_with(value):
    """Zeros as an object array, with ``value`` as one pixel."""
    X = np.zeros((20, 4, 4), dtype=object)
    X[3, 1, 2] = value
    return X


def _far_from_mean(shape):
    """Finite float32 values whose distance from their mean overflows float32.

    One sample at -3e38, the rest at 3e38: the mean is near 2.7e38, so the
    first sample lies 5.7e38 below it.
    """
    X = np.full(shape, 3e38, dtype=np.float32)
    X[0] = -3e38
    return X


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.full((20, 4, 4), np.nan), np.repeat([0, 1], 10), "NaN"),
        (np.full((20, 4, 4), np.inf), np.repeat([0, 1], 10), "infinity"),
        (np.zeros((20, 4, 4, 4, 4)), np.repeat([0, 1], 10), "5-D|ndim|dimension"),
        (np.zeros((20, 5, 5, 5)), np.repeat([0, 1], 10), "channel"),
        (np.zeros(20), np.repeat([0, 1], 10), "2D"),
        (np.zeros((20, 4, 4)), np.repeat([0, 1], 9), "inconsistent numbers"),
        (np.zeros((20, 4, 4)), np.zeros(20), "2 classes"),
        (np.zeros((20, 4, 4)), np.linspace(0, 1, 20), "Unknown label type"),
        (np.zeros((0, 4, 4)), np.zeros(0), "0 sample"),
        (np.zeros((20, 4, 4), dtype=complex), np.repeat([0, 1], 10), "Complex"),
        (np.zeros((20, 16)), np.repeat([0, 1], 10), "image_shape"),
        (np.zeros((4, 4, 4)), np.array([0, 1, 0, 1]), "n_components"),
        (np.zeros((20, 4, 4)), None, "requires y"),
        (np.zeros((20, 4, 4)), np.array([1] * 10 + ["a"] * 10, dtype=object), "mixes"),
        (
            np.zeros((20, 4, 4), dtype="datetime64[s]"),
            np.repeat([0, 1], 10),
            r"dates \(dtype datetime64\[s\]\)",
        ),
        (
            np.zeros((20, 4, 4), dtype="timedelta64[ms]"),
            np.repeat([0, 1], 10),
            r"time differences \(dtype timedelta64\[ms\]\)",
        ),
        (_objects_with("1"), np.repeat([0, 1], 10), "string values"),
        (_objects_with(b"1"), np.repeat([0, 1], 10), "bytes values"),
        (_objects_with(1 + 2j), np.repeat([0, 1], 10), "complex values"),
        (
            _objects_with(np.datetime64("2020-01-01")),
            np.repeat([0, 1], 10),
            "datetime64 values",
        ),
        (
            _objects_with(np.timedelta64(5, "s")),
            np.repeat([0, 1], 10),
            "timedelta64 values",
        ),
        (_objects_with(None), np.repeat([0, 1], 10), "missing values"),
        (_objects_with([1.0]), np.repeat([0, 1], 10), "list values"),
        (_far_from_mean((20, 4, 4)), np.repeat([0, 1], 10), "X's values span too wide"),
        (_far_from_mean((20, 5)), np.repeat([0, 1], 10), "column 0 of X span too wide"),
    ],
)
def test_bad_input_is_named(X, y, match, monkeypatch):
    """Each bad input raises before any weak learner is built."""
    import sklearn_ispl._learners as learners

    def no_training(*args, **kwargs):
        raise AssertionError("training started on bad input")

    monkeypatch.setattr(learners.Learner, "__init__", no_training)
    params = {"n_components": 8}
    if X.ndim == 2 and X.shape[1] == 16:
        params["image_shape"] = (3, 3)
    # Containers (a list in a cell) are a TypeError, as NumPy reports them.
    with pytest.raises((ValueError, TypeError), match=match):
        ISPLFilter(**params).fit(X, y)


def test_sparse_input_is_refused():
    X = sp.random(20, 16, density=0.3, format="csr", random_state=0)
    with pytest.raises(TypeError, match="Sparse data"):
        tiny_ispl().fit(X, np.repeat([0, 1], 10))


def test_one_hot_labels_are_read_as_classes(images):
    X, y = images
    onehot = np.eye(3, dtype=int)[y]
    ref = tiny_ispl().fit(X, y)
    X_kept, y_kept = tiny_ispl().fit_resample(X, onehot)
    np.testing.assert_array_equal(y_kept, onehot[ref.keep_mask_])


def test_voter_rejects_bad_components():
    X = np.random.RandomState(0).rand(30, 4)
    y = np.repeat([0, 1, 2], 10)
    voter = BoostedComponentVoter(SGDClassifier(loss="log_loss"), n_epochs=1)
    for comps, match in [
        ([np.array([0, 1, 40])], "outside"),
        ([np.ones(5, dtype=bool)], "boolean mask"),
        ([np.array([0.5, 1.5])], "row indices"),
        ([np.array([], dtype=int)], "non-empty"),
    ]:
        with pytest.raises(ValueError, match=match):
            voter.fit(X, y, components=comps)


def _no_training(monkeypatch):
    import sklearn_ispl._learners as learners

    def no_training(*args, **kwargs):
        raise AssertionError("training started on bad input")

    monkeypatch.setattr(learners.Learner, "__init__", no_training)


ALL_FILTERS = [
    ISPLFilter,
    BoostedComponentVoter,
    ITLMFilter,
    ConfidentLearningFilter,
    SpectralSignatureFilter,
    ActivationClusteringFilter,
]


@pytest.mark.parametrize("Filter", ALL_FILTERS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((20, 4, 4), dtype="datetime64[D]"), r"dtype datetime64\[D\]"),
        (np.zeros((20, 6), dtype="timedelta64[s]"), r"dtype timedelta64\[s\]"),
        (_objects_with("0.5"), "string values"),
        (_far_from_mean((20, 4, 4)), "too wide a range to standardise in float32"),
    ],
    ids=["datetime", "timedelta", "numeric-strings", "overflow"],
)
def test_every_filter_refuses_before_training(Filter, X, match, monkeypatch):
    _no_training(monkeypatch)
    estimator = Filter()
    with pytest.raises(ValueError, match=match):
        estimator.fit(X, np.repeat([0, 1], 10))
    assert not hasattr(estimator, "classes_")


def test_dates_in_a_dataframe_or_list_are_refused(monkeypatch):
    pd = pytest.importorskip("pandas")
    _no_training(monkeypatch)
    y = np.repeat([0, 1], 10)
    dates = pd.date_range("2020-01-01", periods=20)
    frame = pd.DataFrame({"pixel": np.arange(20.0), "taken": dates})
    with pytest.raises(ValueError, match="column 'taken' of X holds dates"):
        ISPLFilter().fit(frame, y)
    frame = pd.DataFrame({"pixel": np.arange(20.0), "gap": dates - dates[0]})
    with pytest.raises(ValueError, match="column 'gap' of X holds time differences"):
        ISPLFilter().fit(frame, y)
    frame = pd.DataFrame({"pixel": np.arange(20.0), "text": ["1.5"] * 20})
    with pytest.raises(ValueError, match="column 'text' of X holds string values"):
        ISPLFilter().fit(frame, y)
    rows = [[np.datetime64("2020-01-01")] * 4] * 20
    with pytest.raises(ValueError, match=r"dtype datetime64\[D\]"):
        ISPLFilter().fit(rows, y)


def test_numbers_held_as_objects_are_accepted(images):
    X, y = images
    objects = X.astype(object)
    objects[0, 0, 0, 0] = True
    objects[0, 0, 0, 1] = np.float16(2.0)
    expected = X.copy()
    expected[0, 0, 0, :2] = [1, 2]
    ref = _fit(expected, y)
    est = _fit(objects, y)
    np.testing.assert_array_equal(est.keep_mask_, ref.keep_mask_)


class TestLargeValues:
    def test_large_values_standardise_exactly(self, images):
        """Scaling by a power of two changes nothing after standardising."""
        X, y = images
        X = X.astype(np.float32)
        for layout, X_layout, image_shape in [
            ("nhwc", X, None),
            ("tabular", X.reshape(len(X), -1), None),
        ]:
            ref = prepare_data(X_layout, y, 3, layout, image_shape)
            # 255 * 2**119 is about 1.7e38, close to float32's largest value.
            big = prepare_data(X_layout * np.float32(2.0**119), y, 3, layout)
            np.testing.assert_array_equal(big.X, ref.X)
            assert np.isfinite(big.X).all()

    def test_values_that_standardise_fine_are_fitted(self, images):
        """Values near float32's limit that lie within it of their mean."""
        X, y = images
        # -3e38 and 3e38 in equal numbers: the mean is 0.
        alternating = np.where(np.arange(X.size) % 2, 3e38, -3e38)
        data = prepare_data(alternating.reshape(X.shape), y, 3, "nhwc")
        np.testing.assert_allclose(np.abs(data.X), 1.0)
        # +-1.5e38: at most 3e38 from the mean, wherever it lies.
        signs = np.where(X > 127, np.float32(1), np.float32(-1))
        X_big = signs * np.float32(1.5e38)
        est = ISPLFilter(n_components=2)
        with warnings.catch_warnings():
            # No overflow warning from validation or standardisation either.
            warnings.simplefilter("error", RuntimeWarning)
            X_valid, y_enc = check_filter_input(est, X_big, y)
            data = prepare_data(X_valid, y_enc, 3, est.input_layout_)
        assert np.isfinite(data.X).all()
        assert np.abs(data.X).max() <= np.sqrt(len(X_big) * X_big[0].size)
        est = _fit(X_big, y)
        assert np.isfinite(est.scores_).all()

    def test_spread_below_float32_resolution_is_not_divided_by_zero(self, images):
        X, y = images
        # Values 0 and the smallest float32 denormal: a standard deviation
        # that rounds to 0 in float32.
        tiny = (X > 127) * np.float32(1.4e-45)
        data = prepare_data(tiny, y, 3, "nhwc")
        assert np.isfinite(data.X).all()

    def test_overflow_is_refused_before_training(self, monkeypatch):
        _no_training(monkeypatch)
        X = _far_from_mean((20, 4, 4))
        with pytest.raises(ValueError, match=r"max \|x\| 3e\+38.*Rescale X"):
            ISPLFilter(n_components=2).fit(X, np.repeat([0, 1], 10))
