"""Tests for the image-layout helpers in sklearn_ispl._images."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_ispl._images import (
    check_image_shape,
    from_nchw,
    image_dims,
    infer_layout,
    to_nchw,
)


def _canonical(n=2, channels=3, height=4, width=5):
    """(n, C, H, W) array whose every entry is distinct."""
    return np.arange(n * channels * height * width).reshape(n, channels, height, width)


class TestInferLayout:
    @pytest.mark.parametrize(
        ("shape", "image_shape", "expected"),
        [
            ((10, 28, 28), None, "nhw"),
            ((10, 32, 32, 3), None, "nhwc"),
            ((10, 32, 32, 1), None, "nhwc"),
            ((10, 32, 32, 4), None, "nhwc"),
            ((10, 3, 32, 32), None, "nchw"),
            ((10, 1, 28, 28), None, "nchw"),
            # Both axes could be channels: channels-last wins.
            ((10, 3, 5, 3), None, "nhwc"),
            ((10, 64), (8, 8), "flat"),
            ((10, 3072), (32, 32, 3), "flat"),
            ((10, 64), None, "tabular"),
            ((0, 64), None, "tabular"),
        ],
    )
    def test_layouts(self, shape, image_shape, expected):
        assert infer_layout(shape, image_shape) == expected

    def test_accepts_numpy_ints_in_shape(self):
        assert infer_layout(np.zeros((2, 5, 5, 3)).shape) == "nhwc"
        assert infer_layout((2, np.int64(64)), (np.int64(8), 8)) == "flat"

    @pytest.mark.parametrize("shape", [(10,), (2, 3, 4, 5, 6), ()])
    def test_bad_ndim(self, shape):
        with pytest.raises(ValueError, match=f"ndim={len(shape)}"):
            infer_layout(shape)

    def test_4d_without_channel_axis(self):
        with pytest.raises(ValueError, match=r"\(n, H, W, C\) or \(n, C, H, W\)"):
            infer_layout((10, 8, 8, 8))

    def test_flat_size_mismatch(self):
        with pytest.raises(ValueError, match="192 values per image.*64 features"):
            infer_layout((10, 64), image_shape=(8, 8, 3))

    @pytest.mark.parametrize(
        "image_shape", [(8,), (8, 8, 3, 1), (8, 0), (8, -8), (8.0, 8), (True, 8), "8x8"]
    )
    def test_bad_image_shape(self, image_shape):
        with pytest.raises(ValueError, match="image_shape"):
            infer_layout((10, 64), image_shape=image_shape)

    @pytest.mark.parametrize(
        ("shape", "image_shape"),
        [
            ((10, 8, 8), (8, 8)),
            ((10, 8, 8), (8, 8, 1)),
            ((10, 8, 8, 3), (8, 8, 3)),
            ((10, 3, 8, 6), (8, 6, 3)),
        ],
    )
    def test_image_shape_agreeing_with_image_array(self, shape, image_shape):
        assert infer_layout(shape, image_shape) in ("nhw", "nhwc", "nchw")

    @pytest.mark.parametrize(
        ("shape", "image_shape"),
        [
            ((10, 8, 8), (8, 8, 3)),
            ((10, 8, 8, 3), (8, 8)),
            ((10, 3, 8, 6), (6, 8, 3)),
        ],
    )
    def test_image_shape_disagreeing_with_image_array(self, shape, image_shape):
        with pytest.raises(ValueError, match="does not match"):
            infer_layout(shape, image_shape)


def test_check_image_shape():
    assert check_image_shape((28, 28)) == (28, 28, 1)
    assert check_image_shape([32, 32, 3]) == (32, 32, 3)
    assert all(type(d) is int for d in check_image_shape((np.int32(2), 3)))


@pytest.mark.parametrize(
    ("layout", "user_shape", "image_shape"),
    [
        ("nhw", (2, 4, 5), None),
        ("nhwc", (2, 4, 5, 3), None),
        ("nchw", (2, 3, 4, 5), None),
        ("flat", (2, 60), (4, 5, 3)),
        ("flat", (2, 20), (4, 5)),
    ],
)
class TestRoundTrip:
    def test_round_trip(self, layout, user_shape, image_shape):
        X = np.arange(np.prod(user_shape), dtype=np.uint8).reshape(user_shape)
        X_nchw = to_nchw(X, layout, image_shape)
        channels = 1 if len(user_shape) == 3 or image_shape == (4, 5) else 3
        assert X_nchw.shape == (2, channels, 4, 5)
        assert X_nchw.dtype == X.dtype
        assert image_dims(X.shape, layout, image_shape) == (channels, 4, 5)
        back = from_nchw(X_nchw, layout, image_shape)
        assert back.shape == X.shape
        np.testing.assert_array_equal(back, X)

    def test_to_nchw_is_a_view(self, layout, user_shape, image_shape):
        X = np.zeros(user_shape)
        X_nchw = to_nchw(X, layout, image_shape)
        assert np.shares_memory(X_nchw, X)
        X_nchw[1, -1, 2, 3] = 7.0
        assert X.sum() == 7.0

    def test_from_canonical(self, layout, user_shape, image_shape):
        # Start from (n, C, H, W) with distinct entries and check that the
        # pixel at channel c, row r, column w lands where the layout says.
        channels = image_dims(user_shape, layout, image_shape)[0]
        X_nchw = _canonical(channels=channels)
        X = from_nchw(X_nchw, layout)
        value = X_nchw[1, channels - 1, 2, 3]
        if layout == "nhw":
            assert X[1, 2, 3] == value
        elif layout == "nhwc":
            assert X[1, 2, 3, channels - 1] == value
        elif layout == "nchw":
            assert X[1, channels - 1, 2, 3] == value
        else:
            # Channels-last row-major order inside each row.
            assert X[1, (2 * 5 + 3) * channels + channels - 1] == value


def test_flat_rows_match_nhwc_reshape():
    X_nhwc = np.random.RandomState(0).rand(3, 4, 5, 3)
    X_flat = X_nhwc.reshape(3, -1)
    np.testing.assert_array_equal(
        to_nchw(X_flat, "flat", (4, 5, 3)), to_nchw(X_nhwc, "nhwc")
    )


def test_flat_from_fortran_ordered_input_still_correct():
    X = np.asfortranarray(np.arange(2 * 12, dtype=float).reshape(2, 12))
    np.testing.assert_array_equal(from_nchw(to_nchw(X, "flat", (2, 2, 3)), "flat"), X)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 3),
    channels=st.sampled_from([1, 3, 4]),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    layout=st.sampled_from(["nhwc", "nchw", "flat", "nhw"]),
)
def test_round_trip_property(n, channels, height, width, layout):
    if layout == "nhw":
        channels = 1
    X_nchw = _canonical(n, channels, height, width).astype(np.float32)
    image_shape = (height, width, channels) if layout == "flat" else None
    X = from_nchw(X_nchw, layout, image_shape)
    if layout in ("nhw", "flat"):
        assert infer_layout(X.shape, image_shape) == layout
    np.testing.assert_array_equal(to_nchw(X, layout, image_shape), X_nchw)


class TestConversionErrors:
    @pytest.mark.parametrize("func", [to_nchw, from_nchw])
    def test_tabular_refused(self, func):
        with pytest.raises(ValueError, match="tabular"):
            func(
                np.zeros((2, 1, 8, 8)) if func is from_nchw else np.zeros((2, 64)),
                "tabular",
            )

    @pytest.mark.parametrize("func", [to_nchw, from_nchw])
    def test_unknown_layout(self, func):
        with pytest.raises(ValueError, match="layout must be one of"):
            func(np.zeros((2, 1, 8, 8)), "nwhc")

    def test_layout_ndim_mismatch(self):
        with pytest.raises(ValueError, match="layout='nhwc' needs a 4-D array"):
            to_nchw(np.zeros((2, 8, 8)), "nhwc")

    def test_flat_needs_image_shape(self):
        with pytest.raises(ValueError, match="needs image_shape"):
            to_nchw(np.zeros((2, 64)), "flat")

    def test_flat_wrong_size(self):
        with pytest.raises(ValueError, match="features per row"):
            to_nchw(np.zeros((2, 64)), "flat", (8, 7))

    def test_image_shape_mismatch_on_image_array(self):
        with pytest.raises(ValueError, match="does not match"):
            to_nchw(np.zeros((2, 8, 8, 3)), "nhwc", (8, 8, 1))

    def test_from_nchw_needs_4d(self):
        with pytest.raises(ValueError, match="4-D"):
            from_nchw(np.zeros((2, 8, 8)), "nhw")

    def test_from_nchw_nhw_needs_one_channel(self):
        with pytest.raises(ValueError, match="one channel"):
            from_nchw(np.zeros((2, 3, 8, 8)), "nhw")

    def test_from_nchw_image_shape_mismatch(self):
        with pytest.raises(ValueError, match="does not match"):
            from_nchw(np.zeros((2, 3, 8, 8)), "flat", (8, 8))
