"""Input checks shared by every filter, run before any training starts."""

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
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
    X = _check_value_types(X)
    # scikit-learn first sums X to find NaN and infinity cheaply; a sum that
    # overflows only sends it to the exact check, so it needs no warning.
    with np.errstate(over="ignore", invalid="ignore"):
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
    # Any other array-like that NumPy turned into dates or times.
    _check_dtype_kind(X.dtype)
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


def _check_value_types(X):
    """Refuse values that NumPy or scikit-learn would quietly make numbers.

    scikit-learn's ``dtype="numeric"`` keeps dates and times as they are,
    and casts object arrays to float, which turns numeric strings, dates,
    times and booleans held as objects into numbers. A filter needs pixel or
    feature values, so each of those is refused here, naming what was found.

    Returns
    -------
    X : array-like
        ``X`` itself, or for a list or tuple the array NumPy makes of it
        (which scikit-learn would make anyway).
    """
    if isinstance(X, (list, tuple)):
        try:
            array = np.asarray(X)
        except (ValueError, TypeError):
            # Ragged nesting and the like: scikit-learn names those.
            return X
        X = array
    if sp.issparse(X):
        return X
    if hasattr(X, "iloc") and hasattr(X, "dtypes") and getattr(X, "ndim", 0) == 2:
        # A pandas DataFrame: one dtype per column.
        for j, dtype in enumerate(X.dtypes):
            where = f"column {X.columns[j]!r} of X"
            _check_dtype_kind(dtype, where)
            if getattr(dtype, "kind", None) == "O":
                _check_objects(X.iloc[:, j].to_numpy(dtype=object), where)
        return X
    dtype = getattr(X, "dtype", None)
    _check_dtype_kind(dtype)
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        _check_objects(np.asarray(X, dtype=object).ravel())
    return X


def _check_dtype_kind(dtype, where="X"):
    kind = getattr(dtype, "kind", None)
    if kind in ("M", "m"):
        what = "dates" if kind == "M" else "time differences"
        raise ValueError(
            f"{where} holds {what} (dtype {dtype}), not numbers; a filter "
            "needs pixel or feature values. Convert them explicitly if they "
            "are meant as numbers (e.g. X.astype('int64'))."
        )
    if kind == "c":
        raise ValueError(
            f"Complex data not supported: {where} has dtype {dtype}; every "
            "pixel or feature must be a real number."
        )


def _object_kind(value):
    if value is None or type(value).__name__ == "NAType":
        return "missing"
    # NumPy registers timedelta64 as an integer type; it is a duration.
    if isinstance(value, (np.datetime64, np.timedelta64)):
        return type(value).__name__
    if isinstance(value, Real):
        return "number"
    return {"str": "string", "bytes": "bytes"}.get(
        type(value).__name__, type(value).__name__
    )


def _check_objects(values, where="X"):
    """Refuse an object array (flat) that holds anything but real numbers."""
    # One Python call per distinct type, not per value.
    examples = {}
    for value in values:
        examples.setdefault(type(value), value)
    kinds = {}
    for example in examples.values():
        kinds.setdefault(_object_kind(example), example)
    if "missing" in kinds:
        raise ValueError(
            f"{where} contains missing values (None or NA); every pixel or "
            "feature needs a value."
        )
    others = sorted(kind for kind in kinds if kind != "number")
    if others:
        example = repr(kinds[others[0]])
        if len(example) > 40:
            example = example[:37] + "..."
        plain = {"string", "bytes", "datetime64", "timedelta64", "date"}
        plain |= {"datetime", "time", "timedelta", "complex"}
        if not set(others) <= plain:
            # Containers and other objects are a type error, as NumPy's own
            # conversion reports them (and scikit-learn's checks expect).
            raise TypeError(
                f"{where} holds {', '.join(others)} values (e.g. {example}): "
                "float() argument must be a string or a real number, and "
                "strings are not converted either; every pixel or feature "
                "must be a real number."
            )
        raise ValueError(
            f"{where} holds {', '.join(others)} values (e.g. {example}), not "
            "numbers; every pixel or feature must be a real number. Strings, "
            "dates and times are not converted: convert X explicitly."
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
        axis = 0
    else:
        Xt = np.ascontiguousarray(to_nchw(X, layout, image_shape), dtype=np.float32)
        if np.shares_memory(Xt, X):
            Xt = Xt.copy()
        axis = None
    # float64 sums: mean and std of float32 values cannot overflow there.
    mean = np.asarray(Xt.mean(axis=axis, dtype=np.float64))
    std = np.asarray(Xt.std(axis=axis, dtype=np.float64))
    mean32 = mean.astype(np.float32)
    std32 = std.astype(np.float32)
    # No spread, or one too small for float32 (it rounds to 0): leave the
    # values centred but unscaled rather than divide by zero.
    std32[std32 == 0] = 1.0
    _check_standardisable(Xt, mean, mean32, std32, axis)
    Xt -= mean32
    Xt /= std32
    return PreparedData(
        X=Xt, y=y_encoded, n_classes=int(n_classes), input_shape=tuple(Xt.shape[1:])
    )


def _check_standardisable(Xt, mean, mean32, std32, axis):
    """Refuse data whose float32 standardisation would overflow.

    ``Xt - mean`` is computed in float32 (the only copy of the data), so
    finite values far from their mean on both sides, e.g. -3e38 among
    values near 3e38, would become infinite and make training diverge.
    Subtraction is monotonic, so checking each column's extremes (all
    pixels' for images) finds every overflow before it happens.
    """
    if Xt.size == 0:
        return
    high = np.asarray(Xt.max(axis=axis))
    low = np.asarray(Xt.min(axis=axis))
    with np.errstate(over="ignore"):
        bad = ~(
            np.isfinite(high - mean32) & np.isfinite(low - mean32) & np.isfinite(std32)
        )
    if not bad.any():
        return
    index = np.flatnonzero(bad)[0]
    high, low, mean = (float(a.ravel()[index]) for a in (high, low, mean))
    values = f"The values of column {index} of X" if axis == 0 else "X's values"
    limit = float(np.finfo(np.float32).max)
    raise ValueError(
        f"{values} span too wide a range to standardise in float32: "
        f"they run from {low:.3g} to {high:.3g} (max |x| "
        f"{max(abs(low), abs(high)):.3g}), up to "
        f"{max(high - mean, mean - low):.3g} from their mean {mean:.3g}, and "
        f"float32 holds at most {limit:.3g}. Rescale X, e.g. divide it by its "
        "largest absolute value."
    )


def resolve_size(value, n):
    """A count from an int (itself) or a float share of ``n`` (at least 1)."""
    if isinstance(value, Integral):
        return int(value)
    return max(1, int(round(value * n)))
