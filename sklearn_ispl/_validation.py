"""Input checks shared by every filter, run before any training starts."""

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from imblearn.utils import check_target_type
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from ._images import infer_layout, to_nchw


@dataclass
class PreparedData:
    """The training data as the weak learners see it.

    ``X`` is one standardised float32 array, ``(n, C, H, W)`` for images and
    ``(n, d)`` for tabular rows; it is the only copy of the data a fit makes.
    """

    X: np.ndarray
    y: np.ndarray
    n_classes: int
    input_shape: tuple

    @property
    def X_flat(self):
        return self.X.reshape(len(self.X), -1)

    def __len__(self):
        return len(self.y)


def check_filter_input(estimator, X, y, image_shape=None):
    """Validate ``X, y`` for a filter and set its input attributes.

    Sets ``n_features_in_`` (values per sample), ``feature_names_in_`` (for
    DataFrames), ``classes_`` and ``input_layout_`` on ``estimator``.

    Returns
    -------
    X : ndarray
        The validated array (the caller's memory where no conversion was
        needed; never written to).
    y_encoded : ndarray of int64
        Labels encoded as indices into ``classes_``.
    """
    name = type(estimator).__name__
    if y is None:
        raise ValueError(
            f"{name} requires y to be passed, but the target y is None; "
            "a filter needs the given labels to judge each sample."
        )
    _check_label_types(y)
    check_classification_targets(y)
    y1d = check_target_type(y)
    X, y1d = validate_data(
        estimator,
        X,
        y1d,
        reset=True,
        allow_nd=True,
        dtype="numeric",
        ensure_all_finite=True,
        ensure_min_samples=2,
        y_numeric=False,
    )
    layout = infer_layout(X.shape, image_shape)
    if layout == "tabular" and X.ndim != 2:
        raise ValueError(f"X must be 2-D to be read as tabular rows; got {X.ndim}-D.")
    n_values = int(np.prod(X.shape[1:]))
    if n_values == 0:
        # scikit-learn only counts features of 2-D arrays: an image array
        # with a zero-length axis would otherwise reach the learners.
        raise ValueError(
            f"X holds 0 values per sample (shape={X.shape}); each sample "
            "needs at least one pixel or feature."
        )
    _check_float32_range(X)
    estimator.n_features_in_ = n_values
    estimator.input_layout_ = layout

    classes, y_encoded = np.unique(y1d, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"{name} needs samples of at least 2 classes in y; got 1 class "
            f"({classes[0]!r}). A filter judges labels against each other."
        )
    estimator.classes_ = classes
    return X, y_encoded.astype(np.int64)


def _check_float32_range(X):
    """Refuse values that overflow the float32 working copy of ``X``."""
    if X.dtype.kind != "f" or X.dtype.itemsize <= 4:
        return
    # min and max make no temporary copy of X (np.abs would).
    limit = np.finfo(np.float32).max
    if X.size and (X.max() > limit or X.min() < -limit):
        raise ValueError(
            f"X holds values too large for float32 (|x| > {limit:.3g}); the "
            "weak learners train on a float32 copy of X. Rescale X."
        )


def _label_kind(value):
    if value is None or type(value).__name__ == "NAType":
        return "missing"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, Integral):
        return "integer"
    if isinstance(value, Real):
        return "missing" if value != value else "float"
    return type(value).__name__


def _check_label_types(y):
    """Refuse labels that are missing or mix types, which cannot be ordered."""
    values = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y, dtype=object)
    if values.dtype == object and values.size:
        kinds = {_label_kind(v) for v in values.ravel()}
        if "missing" in kinds:
            raise ValueError(
                "y contains missing labels (None, NaN or NA); every sample "
                "needs a label."
            )
        if len(kinds) > 1:
            raise ValueError(
                "y mixes labels of different types "
                f"({', '.join(sorted(kinds))}); give every label the same type."
            )


def prepare_data(X, y_encoded, n_classes, layout, image_shape=None):
    """Return :class:`PreparedData`: one float32, standardised copy of ``X``.

    Images are standardised with one mean and one standard deviation for all
    pixels (so a bright trigger stays bright relative to its image); tabular
    rows column by column.
    """
    if layout == "tabular":
        Xt = np.array(X, dtype=np.float32, order="C")
        mean = Xt.mean(axis=0, dtype=np.float64)
        std = Xt.std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0
    else:
        Xt = np.ascontiguousarray(to_nchw(X, layout, image_shape), dtype=np.float32)
        if np.shares_memory(Xt, X):
            Xt = Xt.copy()
        mean = Xt.mean(dtype=np.float64)
        std = Xt.std(dtype=np.float64) or 1.0
    Xt -= np.asarray(mean, dtype=np.float32)
    Xt /= np.asarray(std, dtype=np.float32)
    return PreparedData(
        X=Xt, y=y_encoded, n_classes=int(n_classes), input_shape=tuple(Xt.shape[1:])
    )


def resolve_size(value, n):
    """A count from an int (itself) or a float share of ``n`` (at least 1)."""
    if isinstance(value, Integral):
        return int(value)
    return max(1, int(round(value * n)))
