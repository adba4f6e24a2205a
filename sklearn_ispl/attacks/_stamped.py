"""Stamped triggers: a few pixels set to one colour, or to varying values."""

import numbers

import numpy as np

from .._images import check_image_shape, to_nchw
from ._base import _BaseAttack, _is_int, _is_real

__all__ = ["TRIGGERS", "BackdoorAttack", "VaryingBackdoorAttack"]

#: Trigger shapes: ``"pixel"`` (one pixel), ``"ell"`` (an L of three pixels)
#: and ``"pattern"`` (an X of five pixels), named as in the authors' code.
TRIGGERS = ("pixel", "ell", "pattern")

# (row, col) offsets from `position` of the pixels each trigger overwrites.
# "ell" grows down and right from its corner; "pattern" is centred on
# `position`. This is the geometry of the paper's Figure 1 and of the
# authors' implementation.
_TRIGGER_OFFSETS = {
    "pixel": ((0, 0),),
    "ell": ((0, 0), (1, 0), (0, 1)),
    "pattern": ((0, 0), (-1, -1), (-1, 1), (1, -1), (1, 1)),
}


class _StampedAttack(_BaseAttack):
    """Attack whose trigger is a shape from ``TRIGGERS`` at ``position``."""

    def _check_shape_params(self):
        if not isinstance(self.trigger, str) or self.trigger not in TRIGGERS:
            raise ValueError(
                f"trigger must be one of {TRIGGERS}, got trigger={self.trigger!r}."
            )
        position = self.position
        if (
            not isinstance(position, (tuple, list, np.ndarray))
            or len(position) != 2
            or not all(
                isinstance(p, numbers.Integral) and not isinstance(p, bool)
                for p in position
            )
            or min(position) < 0
        ):
            raise ValueError(
                "position must be a (row, col) pair of non-negative "
                f"integers, got position={position!r}."
            )

    def trigger_pixels(self, image_shape):
        """Return the ``(row, col)`` of every pixel the trigger overwrites.

        Parameters
        ----------
        image_shape : tuple of int
            ``(H, W)`` or ``(H, W, C)`` of the images.

        Returns
        -------
        pixels : ndarray of shape (n_pixels, 2)
            One ``(row, col)`` per trigger pixel: 1 for ``"pixel"``, 3 for
            ``"ell"``, 5 for ``"pattern"``.

        Raises
        ------
        ValueError
            If a parameter is invalid or the trigger does not fit inside an
            image of this shape.

        Examples
        --------
        >>> from sklearn_ispl.attacks import BackdoorAttack
        >>> attack = BackdoorAttack(0, 1, trigger="ell", position=(2, 3),
        ...                         color=255)
        >>> attack.trigger_pixels((32, 32, 3)).tolist()
        [[2, 3], [3, 3], [2, 4]]
        """
        self._check_params()
        height, width, _ = check_image_shape(image_shape)
        return self._pixels(height, width)

    def _pixels(self, height, width):
        row, col = (int(p) for p in self.position)
        pixels = np.array(
            [(row + dr, col + dc) for dr, dc in _TRIGGER_OFFSETS[self.trigger]]
        )
        outside = (
            (pixels[:, 0] < 0)
            | (pixels[:, 0] >= height)
            | (pixels[:, 1] < 0)
            | (pixels[:, 1] >= width)
        )
        if outside.any():
            raise ValueError(
                f"trigger={self.trigger!r} at position={self.position!r} "
                f"covers pixels {[tuple(p) for p in pixels.tolist()]}, some of "
                f"which lie outside the {height}x{width} image (rows 0..{height - 1}, "
                f"columns 0..{width - 1})."
            )
        return pixels


class BackdoorAttack(_StampedAttack):
    """Dirty-label backdoor: stamp a trigger on source images, relabel them.

    Parameters
    ----------
    source : int, str or other scalar label
        Class whose images are poisoned.
    target : scalar label
        Label the poisoned images receive; must differ from ``source`` and
        be representable in the dtype of the ``y`` passed to :meth:`poison`.
    trigger : {"pixel", "ell", "pattern"}
        Shape of the trigger, relative to ``position = (r, c)``:
        ``"pixel"`` writes (r, c); ``"ell"`` writes (r, c), (r + 1, c) and
        (r, c + 1); ``"pattern"`` (the paper's "X") writes (r, c) and its
        four diagonal neighbours (r +/- 1, c +/- 1).
    position : tuple of int
        ``(row, col)`` of the trigger, counted from the top-left pixel. The
        whole trigger must lie inside the image.
    color : float or sequence of float
        Value written into the trigger pixels, in the data's own units: 255
        for white in ``uint8`` images, 1.0 for floats in [0, 1], 16 for
        scikit-learn's digits. A scalar is written to every channel; for
        multi-channel images a sequence with one value per channel (an RGB
        triple) may be given instead. For integer images it must be an
        integer in the dtype's range.
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
    make_scenario : Draw a random attack by the paper's rule.
    CIFAR10_SCENARIOS : The 24 attacks of the paper's Table 2.
    VaryingBackdoorAttack : A stamp whose value varies from image to image.
    BlendedBackdoorAttack : A trigger blended over the whole image.
    sklearn_ispl.metrics.targeted_misclassification_rate : Attack success.

    Notes
    -----
    The constructor only stores the parameters; they are checked when the
    attack is used. Images may be ``(n, H, W)``, ``(n, H, W, C)``,
    ``(n, C, H, W)`` or flat ``(n, H * W * C)`` with ``image_shape``; the
    outputs keep the input's layout and dtype, and the inputs are never
    modified.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ispl.attacks import BackdoorAttack
    >>> X = np.zeros((100, 8, 8))
    >>> y = np.repeat([0, 1], 50)
    >>> attack = BackdoorAttack(source=0, target=1, trigger="pattern",
    ...                         position=(6, 1), color=16, eps=0.2,
    ...                         random_state=0)
    >>> X_poisoned, y_poisoned, poison_mask = attack.poison(X, y)
    >>> int(poison_mask.sum()), set(y_poisoned[poison_mask].tolist())
    (10, {1})
    >>> X_poisoned[poison_mask][0, 5:8, 0:3]
    array([[16.,  0., 16.],
           [ 0., 16.,  0.],
           [16.,  0., 16.]])
    >>> attack.apply_trigger(X[:3]).sum(axis=(1, 2))
    array([80., 80., 80.])
    """

    _param_names = (
        "source",
        "target",
        "trigger",
        "position",
        "color",
        "eps",
        "image_shape",
        "random_state",
    )

    def __init__(
        self,
        source,
        target,
        *,
        trigger,
        position,
        color,
        eps=0.1,
        image_shape=None,
        random_state=None,
    ):
        self.source = source
        self.target = target
        self.trigger = trigger
        self.position = position
        self.color = color
        self.eps = eps
        self.image_shape = image_shape
        self.random_state = random_state

    def poison(self, X, y):
        """Poison a training set.

        Picks ``round(eps * n_source)`` images of the source class at random
        (at least one), writes the trigger into them and relabels them as
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
            Copy of ``X`` with the trigger written into the poisoned images;
            same shape and dtype as ``X``.
        y_poisoned : ndarray of shape (n,)
            Copy of ``y`` with the poisoned images relabelled ``target``;
            same dtype as ``y``.
        poison_mask : ndarray of shape (n,), dtype=bool
            True for the poisoned images.

        Raises
        ------
        ValueError
            If a parameter is invalid, the trigger does not fit the images,
            ``color`` does not fit their channels or dtype, ``source`` is
            not in ``y``, ``target`` cannot be stored in ``y``'s dtype, or
            ``X`` and ``y`` do not match.
        """
        return self._poison(X, y)

    def apply_trigger(self, X):
        """Write the trigger into every image, e.g. to attack test images.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C), (n, C, H, W) or \
(n, H * W * C)
            Images, integer or floating point. Flat rows need
            ``image_shape``.

        Returns
        -------
        X_triggered : ndarray
            Copy of ``X`` with the trigger in every image; same shape and
            dtype as ``X``.

        Raises
        ------
        ValueError
            If a parameter is invalid, the trigger does not fit the images
            or ``color`` does not fit their channels or dtype.
        """
        return self._apply(X)

    # -- helpers -----------------------------------------------------------

    def _check_params(self):
        self._check_labels()
        self._check_shape_params()
        color = np.asarray(self.color)
        if (
            color.dtype.kind not in "iuf"
            or color.ndim > 1
            or color.size == 0
            or not np.all(np.isfinite(color))
        ):
            raise ValueError(
                "color must be a finite number or a sequence of finite "
                f"numbers (one per channel), got color={self.color!r}."
            )
        self._check_eps()

    def _prepare(self, X, layout, dims):
        channels, height, width = dims
        return self._pixels(height, width), self._color_vector(channels, X.dtype)

    def _color_vector(self, channels, dtype):
        color = np.asarray(self.color, dtype=np.float64)
        if color.ndim == 0:
            color = np.full(channels, float(color))
        elif color.size != channels:
            raise ValueError(
                f"color={self.color!r} has {color.size} values but the images "
                f"have {channels} channel(s); give a scalar or one value per "
                "channel."
            )
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if np.any(color != np.round(color)) or np.any(
                (color < info.min) | (color > info.max)
            ):
                raise ValueError(
                    f"color={self.color!r} cannot be stored in {dtype} images "
                    f"without change; use integers in [{info.min}, {info.max}]."
                )
        return color.astype(dtype)

    def _write(self, X, layout, samples, context, rng):
        """Write the trigger into ``X`` in place (``X`` is our own copy)."""
        pixels, color = context
        # X is C-contiguous, so the (n, C, H, W) view below shares its memory
        # for every layout and the writes land in X.
        view = to_nchw(X, layout, self.image_shape)
        for row, col in pixels:
            view[samples, :, row, col] = color


class VaryingBackdoorAttack(_StampedAttack):
    """Backdoor whose stamp changes value, and optionally place, per image.

    Like :class:`BackdoorAttack`, but each triggered image gets its own
    intensity, drawn uniformly from ``color_range`` and written to every
    channel of the trigger pixels, and, with ``jitter > 0``, its own
    position near ``position``. A defense can then not rely on the trigger
    being one exact colour at one exact place.

    Parameters
    ----------
    source : int, str or other scalar label
        Class whose images are poisoned.
    target : scalar label
        Label the poisoned images receive; must differ from ``source`` and
        be representable in the dtype of the ``y`` passed to :meth:`poison`.
    trigger : {"pixel", "ell", "pattern"}
        Shape of the trigger, as for :class:`BackdoorAttack`.
    position : tuple of int
        ``(row, col)`` of the trigger before jitter; the whole trigger must
        lie inside the image there.
    color_range : tuple of float
        ``(low, high)`` with ``low <= high``, in the data's own units. For
        integer images both must be integers in the dtype's range and the
        intensity is drawn from ``low..high`` inclusive; for floating-point
        images it is drawn from ``[low, high)``.
    eps : float, default=0.1
        Share of the source class to poison, in (0, 1]. :meth:`poison`
        poisons ``round(eps * n_source)`` images (halves rounded up), and at
        least one.
    jitter : int, default=0
        Largest shift, in pixels, of the trigger from ``position`` along
        each axis. Each image draws its row and its column uniformly among
        the positions within ``jitter`` of ``position`` that keep the whole
        trigger inside the image. 0 keeps the trigger in place.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)``. Required for flat 2-D inputs, whose rows
        hold channels-last pixels; for image arrays it is optional and must
        agree with them.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of the poisoned images and the intensities and
        shifts drawn in :meth:`poison` and :meth:`apply_trigger`. Pass an
        int for the same draws on every call.

    See Also
    --------
    BackdoorAttack : The same trigger with one fixed colour and position.
    make_varying_scenario : Draw a random attack of this kind.

    Notes
    -----
    The constructor only stores the parameters; they are checked when the
    attack is used. With the same ``eps`` and ``random_state``,
    :meth:`poison` picks the same images as :class:`BackdoorAttack`. Images
    may be in any layout :class:`BackdoorAttack` accepts; the outputs keep
    the input's layout and dtype, and the inputs are never modified.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ispl.attacks import VaryingBackdoorAttack
    >>> X = np.zeros((100, 8, 8), dtype=np.uint8)
    >>> y = np.repeat([0, 1], 50)
    >>> attack = VaryingBackdoorAttack(source=0, target=1, trigger="pixel",
    ...                                position=(6, 1), color_range=(160, 255),
    ...                                eps=0.2, random_state=0)
    >>> X_poisoned, y_poisoned, poison_mask = attack.poison(X, y)
    >>> int(poison_mask.sum()), set(y_poisoned[poison_mask].tolist())
    (10, {1})
    >>> values = X_poisoned[poison_mask][:, 6, 1]
    >>> bool(values.min() >= 160), len(set(values.tolist())) > 1
    (True, True)
    """

    _param_names = (
        "source",
        "target",
        "trigger",
        "position",
        "color_range",
        "eps",
        "jitter",
        "image_shape",
        "random_state",
    )
    _random_writes = True

    def __init__(
        self,
        source,
        target,
        *,
        trigger,
        position,
        color_range,
        eps=0.1,
        jitter=0,
        image_shape=None,
        random_state=None,
    ):
        self.source = source
        self.target = target
        self.trigger = trigger
        self.position = position
        self.color_range = color_range
        self.eps = eps
        self.jitter = jitter
        self.image_shape = image_shape
        self.random_state = random_state

    def poison(self, X, y):
        """Poison a training set.

        Picks ``round(eps * n_source)`` images of the source class at random
        (at least one), stamps the trigger into each with its own intensity
        (and shift) and relabels them as the target.

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
            Copy of ``X`` with the trigger written into the poisoned images;
            same shape and dtype as ``X``.
        y_poisoned : ndarray of shape (n,)
            Copy of ``y`` with the poisoned images relabelled ``target``;
            same dtype as ``y``.
        poison_mask : ndarray of shape (n,), dtype=bool
            True for the poisoned images.

        Raises
        ------
        ValueError
            If a parameter is invalid, the trigger does not fit the images,
            ``color_range`` does not fit their dtype, ``source`` is not in
            ``y``, ``target`` cannot be stored in ``y``'s dtype, or ``X``
            and ``y`` do not match.
        """
        return self._poison(X, y)

    def apply_trigger(self, X):
        """Stamp the trigger into every image, e.g. to attack test images.

        Each image draws its intensity (and shift) as in :meth:`poison`.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C), (n, C, H, W) or \
(n, H * W * C)
            Images, integer or floating point. Flat rows need
            ``image_shape``.

        Returns
        -------
        X_triggered : ndarray
            Copy of ``X`` with the trigger in every image; same shape and
            dtype as ``X``.

        Raises
        ------
        ValueError
            If a parameter is invalid, the trigger does not fit the images
            or ``color_range`` does not fit their dtype.
        """
        return self._apply(X)

    # -- helpers -----------------------------------------------------------

    def _check_params(self):
        self._check_labels()
        self._check_shape_params()
        color_range = self.color_range
        if (
            not isinstance(color_range, (tuple, list, np.ndarray))
            or len(color_range) != 2
            or not all(_is_real(v) for v in color_range)
            or color_range[0] > color_range[1]
        ):
            raise ValueError(
                "color_range must be a (low, high) pair of finite numbers "
                f"with low <= high, got color_range={color_range!r}."
            )
        self._check_eps()
        if not _is_int(self.jitter) or self.jitter < 0:
            raise ValueError(
                "jitter must be a non-negative integer (a shift in pixels), "
                f"got jitter={self.jitter!r}."
            )

    def _prepare(self, X, layout, dims):
        _, height, width = dims
        # The trigger must fit at `position` itself, whatever the jitter.
        self._pixels(height, width)
        low, high = (float(v) for v in self.color_range)
        integer = X.dtype.kind in "iu"
        if integer:
            info = np.iinfo(X.dtype)
            if (
                low != round(low)
                or high != round(high)
                or low < info.min
                or high > info.max
            ):
                raise ValueError(
                    f"color_range={self.color_range!r} cannot be stored in "
                    f"{X.dtype} images without change; use integers in "
                    f"[{info.min}, {info.max}]."
                )
            low, high = int(low), int(high)
        offsets = np.array(_TRIGGER_OFFSETS[self.trigger])
        # Range of anchors that keep every pixel of the shape in the image,
        # narrowed to within `jitter` of the requested position.
        row, col = (int(p) for p in self.position)
        rows = (
            max(row - self.jitter, -int(offsets[:, 0].min())),
            min(row + self.jitter, height - 1 - int(offsets[:, 0].max())),
        )
        cols = (
            max(col - self.jitter, -int(offsets[:, 1].min())),
            min(col + self.jitter, width - 1 - int(offsets[:, 1].max())),
        )
        return offsets, rows, cols, (low, high, integer)

    def _write(self, X, layout, samples, context, rng):
        """Stamp the trigger into ``X`` in place (``X`` is our own copy)."""
        offsets, rows, cols, (low, high, integer) = context
        n = samples.size
        if integer:
            values = rng.randint(low, high + 1, size=n)
        else:
            values = rng.uniform(low, high, size=n)
        values = values.astype(X.dtype)[:, None]
        if self.jitter:
            anchor_rows = rng.randint(rows[0], rows[1] + 1, size=n)
            anchor_cols = rng.randint(cols[0], cols[1] + 1, size=n)
        else:
            anchor_rows = np.full(n, int(self.position[0]))
            anchor_cols = np.full(n, int(self.position[1]))
        # X is C-contiguous, so the (n, C, H, W) view below shares its memory
        # for every layout and the writes land in X.
        view = to_nchw(X, layout, self.image_shape)
        for dr, dc in offsets:
            view[samples, :, anchor_rows + dr, anchor_cols + dc] = values
