"""Machinery shared by the backdoor attacks: labels, ``eps`` and the draw."""

import numbers

import numpy as np
from sklearn.utils import check_random_state

from .._images import image_dims, infer_layout

__all__ = []


def _equals(array, value):
    """Elementwise ``array == value`` that is always a boolean array."""
    result = np.asarray(array == value)
    if result.shape != array.shape:
        # Comparing e.g. a string array with an int may give a plain False.
        return np.zeros(array.shape, dtype=bool)
    return result.astype(bool)


def _is_real(value):
    """True for a finite real number that is not a bool."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
    )


def _is_int(value):
    """True for an integer that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class _BaseAttack:
    """Dirty-label attack: alter ``eps`` of the source class, relabel it.

    Subclasses store ``source``, ``target``, ``eps``, ``image_shape`` and
    ``random_state`` and define ``_param_names`` (for the repr),
    ``_check_params``, ``_prepare`` (what the trigger needs for one image
    shape and dtype) and ``_write`` (put the trigger into some images).
    """

    _param_names = ()
    # Whether `_write` draws random numbers. Only then does `apply_trigger`
    # seed a generator, so attacks without randomness in the trigger accept
    # any `random_state` there, as they always have.
    _random_writes = False

    def __repr__(self):
        params = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self._param_names
        )
        return f"{type(self).__name__}({params})"

    # -- parameter checks --------------------------------------------------

    def _check_labels(self):
        for name in ("source", "target"):
            if np.ndim(getattr(self, name)) != 0:
                raise ValueError(
                    f"{name} must be a single class label, got "
                    f"{name}={getattr(self, name)!r}."
                )
        if bool(_equals(np.asarray([self.source]), self.target)[0]):
            raise ValueError(
                f"source and target must differ, got source={self.source!r} "
                f"and target={self.target!r}."
            )

    def _check_eps(self):
        eps = self.eps
        if (
            not isinstance(eps, numbers.Real)
            or isinstance(eps, bool)
            or not 0 < eps <= 1
        ):
            raise ValueError(f"eps must be a number in (0, 1], got eps={eps!r}.")

    def _check_X(self, X):
        X = np.asarray(X)
        layout = infer_layout(X.shape, self.image_shape)
        if layout == "tabular":
            raise ValueError(
                f"X has shape {X.shape}: a 2-D array is read as flattened "
                "images only with image_shape=(H, W) or (H, W, C); set the "
                "attack's image_shape."
            )
        if X.dtype.kind not in "iuf":
            raise ValueError(
                f"X must hold integer or floating-point pixels, got dtype {X.dtype}."
            )
        return X, layout, image_dims(X.shape, layout, self.image_shape)

    def _validate(self, X):
        """Check the parameters and ``X``; return ``X``, its layout, context."""
        self._check_params()
        X, layout, dims = self._check_X(X)
        return X, layout, self._prepare(X, layout, dims)

    def _check_y(self, y, n_samples):
        """Check ``y`` against ``X``; return it and the source indices."""
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {y.shape}.")
        if y.shape[0] != n_samples:
            raise ValueError(
                f"X and y must have the same number of samples, got "
                f"{n_samples} and {y.shape[0]}."
            )
        source_indices = np.flatnonzero(_equals(y, self.source))
        if source_indices.size == 0:
            raise ValueError(
                f"source={self.source!r} does not occur in y; labels present "
                f"include {np.unique(y)[:10].tolist()!r}."
            )
        self._check_target_fits(y.dtype)
        return y, source_indices

    def _check_target_fits(self, dtype):
        # Writing `target` into y must not change it: numpy would silently
        # truncate "horse" into a '<U3' array or 2.5 into an int array.
        try:
            stored = np.array([self.target]).astype(dtype)
        except (ValueError, TypeError, OverflowError):
            stored = None
        if stored is None or not bool(_equals(stored, self.target)[0]):
            raise ValueError(
                f"target={self.target!r} cannot be stored in y of dtype "
                f"{dtype} without change; convert y first."
            )

    # -- the poison --------------------------------------------------------

    def _n_poison(self, n_source):
        # Round halves up rather than to even, and poison at least one image:
        # an attack asked for (eps > 0) that silently poisons nothing would
        # make every defense look perfect.
        return max(1, int(np.floor(self.eps * n_source + 0.5)))

    def _choose(self, source_indices, rng, taken=None):
        """Draw the images to poison among the source images not ``taken``.

        The count always refers to the whole source class, so an attack
        poisons as many images next to other attacks as on its own.
        """
        n_poison = self._n_poison(source_indices.size)
        candidates = source_indices
        if taken is not None:
            candidates = source_indices[~taken[source_indices]]
            if candidates.size < n_poison:
                raise ValueError(
                    f"{type(self).__name__} with source={self.source!r} and "
                    f"eps={self.eps!r} must poison {n_poison} images, but only "
                    f"{candidates.size} source images are left unpoisoned by "
                    "the attacks before it; lower the eps values."
                )
        return np.sort(rng.choice(candidates, size=n_poison, replace=False))

    def _poison(self, X, y):
        X, layout, context = self._validate(X)
        y, source_indices = self._check_y(y, X.shape[0])
        rng = check_random_state(self.random_state)
        poisoned = self._choose(source_indices, rng)
        X_poisoned = np.array(X, copy=True, order="C")
        self._write(X_poisoned, layout, poisoned, context, rng)
        y_poisoned = y.copy()
        y_poisoned[poisoned] = self.target
        poison_mask = np.zeros(y.shape[0], dtype=bool)
        poison_mask[poisoned] = True
        return X_poisoned, y_poisoned, poison_mask

    def _apply(self, X):
        X, layout, context = self._validate(X)
        rng = check_random_state(self.random_state) if self._random_writes else None
        X_triggered = np.array(X, copy=True, order="C")
        self._write(X_triggered, layout, np.arange(X.shape[0]), context, rng)
        return X_triggered
