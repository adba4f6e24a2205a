"""The sample-filter contract every defense in the package shares."""

import re
from abc import abstractmethod
from numbers import Integral

import numpy as np
from imblearn.base import BaseSampler
from sklearn.base import BaseEstimator, OneToOneFeatureMixin
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)

from ._learners import check_weak_learner
from ._validation import check_filter_input, prepare_data

_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def check_device(device):
    """Raise a clear error for a device name this machine cannot train on."""
    import torch

    if not isinstance(device, str) or not _DEVICE.match(device):
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps'; got {device!r}."
        )
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r}, but torch sees no CUDA GPU on this machine "
                "(torch.cuda.is_available() is False); use device='cpu'."
            )
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}, but torch sees only "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            "device='mps', but torch.backends.mps.is_available() is False on "
            "this machine; use device='cpu'."
        )


def check_nested(estimator, prefix):
    """Validate a nested part's settings, naming them as ``prefix__name``.

    The part's declared constraints are checked one setting at a time, so
    the message names the setting as the outer estimator exposes it; ints
    given as bools are refused too (``True`` is an ``int`` to Python).
    """
    constraints = getattr(estimator, "_parameter_constraints", {})
    for name, value in estimator.get_params(deep=False).items():
        if name not in constraints:
            continue
        try:
            validate_parameter_constraints(
                {name: constraints[name]},
                {name: value},
                caller_name=f"{type(estimator).__name__} (as {prefix}__{name})",
            )
        except InvalidParameterError as exc:
            raise ValueError(str(exc)) from None
        check_not_bool(name, value, constraints[name], f"{prefix}__")
    if hasattr(estimator, "_validate_params"):
        # Checks a part declares beyond its constraints (e.g. a pair of
        # bounds in order).
        try:
            estimator._validate_params()
        except ValueError as exc:
            raise ValueError(f"{prefix}: {exc}") from None


def check_not_bool(name, value, constraints, prefix=""):
    """Refuse a bool where a constraint asks for a number."""
    numeric = (
        any(isinstance(c, Interval) and c.type in (Integral, int) for c in constraints)
        and "boolean" not in constraints
    )
    if numeric and isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{prefix}{name} must be a number, not a bool; got {value!r}.")


class BaseFilter(OneToOneFeatureMixin, BaseEstimator):
    """Base class of the package's sample filters.

    A *filter* judges every training sample against its given label and keeps
    the ones it trusts: ``fit`` decides (``keep_mask_``), ``fit_resample``
    returns the kept rows of ``X`` and ``y`` in the container they came in
    (array, list, DataFrame, Series). In an :class:`imblearn.pipeline.Pipeline`
    the filter acts during ``fit`` only; prediction passes every sample through.

    Subclasses implement ``_fit_filter(data, **fit_params)`` and return the
    keep mask and the per-sample scores (lower means less trustworthy).

    A fit that raises or is interrupted leaves no fitted attribute behind, so
    the object reads as unfitted (``check_is_fitted`` raises
    ``NotFittedError``) until a later ``fit`` succeeds.

    Fitted filters pickle (``pickle``, ``joblib.dump``) with every fitted
    attribute: they keep arrays (masks, scores, components, each weak
    learner's predictions) but no weak learner, since every learner is
    released once its predictions are taken. Pickles therefore stay small and
    hold no torch modules.
    """

    _parameter_constraints: dict = {
        "weak_learner": [
            HasMethods(["partial_fit", "predict_proba"]),
            None,
        ],
        "image_shape": [tuple, list, None],
        "device": [StrOptions({"cpu", "cuda", "mps"}), str],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def fit(self, X, y, **fit_params):
        """Decide which samples to keep.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W), (n_samples, H, W, C), \
                (n_samples, C, H, W) or (n_samples, n_features)
            Training images (uint8 or float) or rows. 2-D input is read as
            images of ``image_shape`` when that parameter is set, else as
            tabular rows.
        y : array-like of shape (n_samples,)
            Given (possibly poisoned) labels.
        **fit_params : dict
            Passed to the filter (e.g. ``components`` for
            :class:`BoostedComponentVoter`).

        Returns
        -------
        self : object
            The fitted filter.
        """
        self._validate_params()
        # A refit starts from nothing: no attribute of an earlier fit may
        # survive a fit that fails or is interrupted.
        self._clear_fitted_attributes()
        try:
            self._check_params()
            X, y_encoded = check_filter_input(self, X, y, self.image_shape)
            data = prepare_data(
                X, y_encoded, len(self.classes_), self.input_layout_, self.image_shape
            )
            keep_mask, scores = self._fit_filter(data, **fit_params)
            self.scores_ = np.asarray(scores, dtype=np.float64)
            self.keep_mask_ = np.asarray(keep_mask, dtype=bool)
            self.sample_indices_ = np.flatnonzero(self.keep_mask_)
        except BaseException:
            # Validation sets classes_ and n_features_in_ before training
            # starts; a fit that raises or is interrupted (KeyboardInterrupt
            # included) must not leave them behind, or check_is_fitted would
            # take the object for a fitted filter.
            self._clear_fitted_attributes()
            raise
        return self

    def _clear_fitted_attributes(self):
        for attr in [
            a for a in vars(self) if a.endswith("_") and not a.startswith("_")
        ]:
            delattr(self, attr)

    def fit_resample(self, X, y, **fit_params):
        """Fit the filter and return the kept samples.

        Parameters
        ----------
        X : array-like
            Training images or rows, as for :meth:`fit`.
        y : array-like of shape (n_samples,)
            Given labels.
        **fit_params : dict
            Passed to :meth:`fit`.

        Returns
        -------
        X_kept : array-like
            The kept rows of ``X``, in the same container and dtype.
        y_kept : array-like
            Their labels.
        """
        self.fit(X, y, **fit_params)
        if hasattr(X, "iloc") or isinstance(X, list):
            X_kept = _safe_indexing(X, self.sample_indices_)
        else:
            X_kept = np.asarray(X)[self.sample_indices_]
        return X_kept, _safe_indexing(y, self.sample_indices_)

    def _check_params(self):
        """Cross-parameter checks that ``_parameter_constraints`` cannot express."""
        params = self.get_params(deep=False)
        for name, constraints in self._parameter_constraints.items():
            if name in params:
                check_not_bool(name, params[name], constraints)
        check_weak_learner(self.weak_learner)
        check_device(self.device)
        if self.n_jobs == 0:
            raise ValueError(
                "n_jobs=0 is invalid: give a positive number of jobs, -1 for all "
                "cores, or None for one."
            )
        if self.image_shape is not None and (
            len(self.image_shape) not in (2, 3)
            or not all(isinstance(v, Integral) and v > 0 for v in self.image_shape)
        ):
            raise ValueError(
                "image_shape must be (height, width) or (height, width, channels) "
                f"of positive ints; got {self.image_shape!r}."
            )

    @abstractmethod
    def _fit_filter(self, data, **fit_params):
        """Return ``(keep_mask, scores)`` for :class:`PreparedData` ``data``."""

    def __sklearn_tags__(self):
        tags = BaseSampler.__sklearn_tags__(self)
        tags.input_tags.sparse = False
        tags.input_tags.three_d_array = True
        tags.sampler_tags.sample_indices = True
        tags.non_deterministic = False
        return tags
