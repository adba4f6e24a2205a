"""Blended trigger: a pattern mixed into the whole image (Chen et al. 2017)."""

import numpy as np

from .._images import check_image_shape, to_nchw
from ._base import _BaseAttack, _is_int, _is_real

__all__ = ["BlendedBackdoorAttack"]

# Images blended per step: bounds the float64 scratch memory that
# `apply_trigger` needs on a large test set.
_CHUNK = 512


class BlendedBackdoorAttack(_BaseAttack):
    """Dirty-label backdoor whose trigger is a pattern blended into the image.

    The blended injection of Chen et al. (2017), "Targeted backdoor attacks
    on deep learning systems using data poisoning": a triggered image is
    ``x' = (1 - alpha) * x + alpha * pattern``, with the pattern either
    given or random noise over the whole image. :meth:`poison` applies it
    to a share ``eps`` of the source class and relabels those images as the
    target.

    Parameters
    ----------
    source : int, str or other scalar label
        Class whose images are poisoned.
    target : scalar label
        Label the poisoned images receive; must differ from ``source`` and
        be representable in the dtype of the ``y`` passed to :meth:`poison`.
    alpha : float, default=0.2
        Blend ratio, in (0, 1]: the pattern's weight in the triggered image.
    pattern : array-like of shape (H, W) or (H, W, C), default=None
        The trigger, in the data's own units and channels-last like
        ``image_shape``; an ``(H, W)`` pattern is used on every channel.
        None draws uniform noise over ``value_range``, one value per pixel
        and channel, from ``pattern_seed``.
    pattern_seed : int, default=0
        Seed of the noise pattern when ``pattern`` is None, in
        ``[0, 2**32)``. It is separate from ``random_state`` so that
        :meth:`poison` and :meth:`apply_trigger` always use the same
        pattern, whatever generator picks the poisoned images.
    value_range : tuple of float, default=None
        ``(low, high)`` of the noise pattern, with ``low < high``. None
        means ``(0, 255)`` for integer images and ``(0.0, 1.0)`` for
        floating-point ones; set e.g. ``(0, 16)`` for scikit-learn's digits.
    eps : float, default=0.1
        Share of the source class to poison, in (0, 1]. :meth:`poison`
        poisons ``round(eps * n_source)`` images (halves rounded up), and at
        least one.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)``. Required for flat 2-D inputs, whose rows
        hold channels-last pixels; for image arrays it is optional and must
        agree with them.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of the poisoned images in :meth:`poison`. Pass an
        int for the same choice on every call.

    See Also
    --------
    BackdoorAttack : A trigger of a few pixels.
    make_blended_scenario : Draw a random attack of this kind.

    Notes
    -----
    The blend is computed in float64 and cast back to the images' dtype:
    integer images are rounded to the nearest integer and clipped to the
    dtype's range, floating-point images keep their precision. The
    constructor only stores the parameters; they are checked when the
    attack is used. Images may be in any layout :class:`BackdoorAttack`
    accepts; the outputs keep the input's layout and dtype, and the inputs
    are never modified.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ispl.attacks import BlendedBackdoorAttack
    >>> X = np.zeros((100, 8, 8), dtype=np.uint8)
    >>> y = np.repeat([0, 1], 50)
    >>> attack = BlendedBackdoorAttack(source=0, target=1, alpha=0.5,
    ...                                pattern=np.full((8, 8), 200), eps=0.2,
    ...                                random_state=0)
    >>> X_poisoned, y_poisoned, poison_mask = attack.poison(X, y)
    >>> int(poison_mask.sum()), set(y_poisoned[poison_mask].tolist())
    (10, {1})
    >>> np.unique(X_poisoned[poison_mask]), X_poisoned.dtype
    (array([100], dtype=uint8), dtype('uint8'))
    >>> noise = BlendedBackdoorAttack(0, 1, pattern_seed=3)
    >>> noise.trigger_pattern((8, 8)).shape
    (8, 8)
    """

    _param_names = (
        "source",
        "target",
        "alpha",
        "pattern",
        "pattern_seed",
        "value_range",
        "eps",
        "image_shape",
        "random_state",
    )

    def __init__(
        self,
        source,
        target,
        *,
        alpha=0.2,
        pattern=None,
        pattern_seed=0,
        value_range=None,
        eps=0.1,
        image_shape=None,
        random_state=None,
    ):
        self.source = source
        self.target = target
        self.alpha = alpha
        self.pattern = pattern
        self.pattern_seed = pattern_seed
        self.value_range = value_range
        self.eps = eps
        self.image_shape = image_shape
        self.random_state = random_state

    def poison(self, X, y):
        """Poison a training set.

        Picks ``round(eps * n_source)`` images of the source class at random
        (at least one), blends the pattern into them and relabels them as
        the target.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C), (n, C, H, W) or \
(n, H * W * C)
            Training images, integer or floating point. Flat rows need
            ``image_shape``.
        y : array-like of shape (n,)
            Labels; must contain ``source``.

        Returns
        -------
        X_poisoned : ndarray
            Copy of ``X`` with the pattern blended into the poisoned images;
            same shape and dtype as ``X``.
        y_poisoned : ndarray of shape (n,)
            Copy of ``y`` with the poisoned images relabelled ``target``;
            same dtype as ``y``.
        poison_mask : ndarray of shape (n,), dtype=bool
            True for the poisoned images.

        Raises
        ------
        ValueError
            If a parameter is invalid, ``pattern`` does not fit the images,
            ``source`` is not in ``y``, ``target`` cannot be stored in
            ``y``'s dtype, or ``X`` and ``y`` do not match.
        """
        return self._poison(X, y)

    def apply_trigger(self, X):
        """Blend the pattern into every image, e.g. to attack test images.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C), (n, C, H, W) or \
(n, H * W * C)
            Images, integer or floating point. Flat rows need
            ``image_shape``.

        Returns
        -------
        X_triggered : ndarray
            Copy of ``X`` with every image blended with the pattern; same
            shape and dtype as ``X``.

        Raises
        ------
        ValueError
            If a parameter is invalid or ``pattern`` does not fit the
            images.
        """
        return self._apply(X)

    def trigger_pattern(self, image_shape, dtype=np.uint8):
        """Return the pattern blended into images of this shape and dtype.

        Parameters
        ----------
        image_shape : tuple of int
            ``(H, W)`` or ``(H, W, C)`` of the images.
        dtype : dtype, default=np.uint8
            The images' dtype; it matters only for a noise pattern with
            ``value_range=None``, whose range it sets.

        Returns
        -------
        pattern : ndarray of shape image_shape, dtype=float64
            The pattern before blending: ``pattern`` as given, broadcast to
            every channel, or the noise drawn from ``pattern_seed``.

        Raises
        ------
        ValueError
            If a parameter is invalid or ``pattern`` does not fit the shape.

        Examples
        --------
        >>> from sklearn_ispl.attacks import BlendedBackdoorAttack
        >>> attack = BlendedBackdoorAttack(0, 1, pattern_seed=0)
        >>> pattern = attack.trigger_pattern((32, 32, 3))
        >>> pattern.shape, bool(0 <= pattern.min() and pattern.max() <= 255)
        ((32, 32, 3), True)
        """
        self._check_params()
        height, width, channels = check_image_shape(image_shape)
        chw = self._pattern_chw(channels, height, width, np.dtype(dtype))
        pattern = chw.transpose(1, 2, 0)
        return pattern if len(image_shape) == 3 else pattern[..., 0]

    # -- helpers -----------------------------------------------------------

    def _check_params(self):
        self._check_labels()
        alpha = self.alpha
        if not _is_real(alpha) or not 0 < alpha <= 1:
            raise ValueError(f"alpha must be a number in (0, 1], got alpha={alpha!r}.")
        if self.pattern is not None:
            pattern = np.asarray(self.pattern)
            if (
                pattern.dtype.kind not in "iuf"
                or pattern.ndim not in (2, 3)
                or not np.all(np.isfinite(pattern))
            ):
                raise ValueError(
                    "pattern must be None or an array of finite numbers of "
                    "shape (H, W) or (H, W, C), got pattern of shape "
                    f"{pattern.shape} and dtype {pattern.dtype}."
                )
        seed = self.pattern_seed
        if not _is_int(seed) or not 0 <= seed < 2**32:
            raise ValueError(
                "pattern_seed must be an integer in [0, 2**32), got "
                f"pattern_seed={seed!r}."
            )
        value_range = self.value_range
        if value_range is not None and (
            not isinstance(value_range, (tuple, list, np.ndarray))
            or len(value_range) != 2
            or not all(_is_real(v) for v in value_range)
            or not value_range[0] < value_range[1]
        ):
            raise ValueError(
                "value_range must be None or a (low, high) pair of finite "
                f"numbers with low < high, got value_range={value_range!r}."
            )
        self._check_eps()

    def _pattern_chw(self, channels, height, width, dtype):
        """The pattern as float64 ``(C, H, W)``."""
        if self.pattern is None:
            if self.value_range is not None:
                low, high = (float(v) for v in self.value_range)
            elif dtype.kind in "iu":
                low, high = 0.0, float(min(255, np.iinfo(dtype).max))
            else:
                low, high = 0.0, 1.0
            rng = np.random.RandomState(self.pattern_seed)
            noise = rng.uniform(low, high, size=(height, width, channels))
            return noise.transpose(2, 0, 1)
        pattern = np.asarray(self.pattern, dtype=np.float64)
        if pattern.shape == (height, width):
            return np.broadcast_to(pattern, (channels, height, width))
        if pattern.shape == (height, width, channels):
            return pattern.transpose(2, 0, 1)
        raise ValueError(
            f"pattern has shape {pattern.shape} but the images are "
            f"{height}x{width} with {channels} channel(s); give an array of "
            f"shape ({height}, {width}) or ({height}, {width}, {channels})."
        )

    def _prepare(self, X, layout, dims):
        channels, height, width = dims
        return self._pattern_chw(channels, height, width, X.dtype)

    def _write(self, X, layout, samples, context, rng):
        """Blend the pattern into ``X`` in place (``X`` is our own copy)."""
        pattern = context
        alpha = float(self.alpha)
        weighted_pattern = alpha * pattern
        integer = X.dtype.kind in "iu"
        if integer:
            info = np.iinfo(X.dtype)
        # X is C-contiguous, so the (n, C, H, W) view below shares its memory
        # for every layout and the writes land in X.
        view = to_nchw(X, layout, self.image_shape)
        for start in range(0, samples.size, _CHUNK):
            chunk = samples[start : start + _CHUNK]
            blended = (1 - alpha) * view[chunk].astype(np.float64)
            blended += weighted_pattern
            if integer:
                # Round rather than truncate, so a blend towards a brighter
                # pattern is not biased down by the cast.
                blended = np.clip(np.rint(blended), info.min, info.max)
            view[chunk] = blended.astype(X.dtype)
