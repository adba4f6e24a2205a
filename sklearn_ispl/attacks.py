"""Dirty-label backdoor attacks, as used to evaluate the defense.

The attack of the paper (section 6 and appendix B.2, after Gu et al. 2017 and
Tran et al. 2018): a share ``eps`` of the training images of a *source*
class gets a small trigger (one pixel, an "L" of three pixels or an "X" of
five pixels, at a fixed position and colour) and is relabelled as the
*target* class. A model trained on the poisoned set then tends to classify
any source image carrying the trigger as the target.

:class:`BackdoorAttack` poisons a training set and applies the trigger to
test images; :func:`make_scenario` draws a random attack by the paper's rule;
:data:`CIFAR10_SCENARIOS` holds the 24 attacks of the paper's Table 2.
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state

from ._images import check_image_shape, image_dims, infer_layout, to_nchw

__all__ = [
    "CIFAR10_SCENARIOS",
    "PAPER_CLASS_PAIRS",
    "TRIGGERS",
    "BackdoorAttack",
    "make_scenario",
]

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

_PARAM_NAMES = (
    "source",
    "target",
    "trigger",
    "position",
    "color",
    "eps",
    "image_shape",
    "random_state",
)


class BackdoorAttack:
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

    def __repr__(self):
        params = ", ".join(f"{name}={getattr(self, name)!r}" for name in _PARAM_NAMES)
        return f"{type(self).__name__}({params})"

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
        self._check_params()
        X, layout, (channels, height, width) = self._check_X(X)
        pixels = self._pixels(height, width)
        color = self._color_vector(channels, X.dtype)
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {y.shape}.")
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X and y must have the same number of samples, got "
                f"{X.shape[0]} and {y.shape[0]}."
            )
        source_indices = np.flatnonzero(_equals(y, self.source))
        if source_indices.size == 0:
            raise ValueError(
                f"source={self.source!r} does not occur in y; labels present "
                f"include {np.unique(y)[:10].tolist()!r}."
            )
        self._check_target_fits(y.dtype)

        rng = check_random_state(self.random_state)
        # Round halves up rather than to even, and poison at least one image:
        # an attack asked for (eps > 0) that silently poisons nothing would
        # make every defense look perfect.
        n_poison = max(1, int(np.floor(self.eps * source_indices.size + 0.5)))
        poisoned = np.sort(rng.choice(source_indices, size=n_poison, replace=False))

        X_poisoned = np.array(X, copy=True, order="C")
        self._stamp(X_poisoned, layout, poisoned, pixels, color)
        y_poisoned = y.copy()
        y_poisoned[poisoned] = self.target
        poison_mask = np.zeros(y.shape[0], dtype=bool)
        poison_mask[poisoned] = True
        return X_poisoned, y_poisoned, poison_mask

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
        self._check_params()
        X, layout, (channels, height, width) = self._check_X(X)
        pixels = self._pixels(height, width)
        color = self._color_vector(channels, X.dtype)
        X_triggered = np.array(X, copy=True, order="C")
        self._stamp(X_triggered, layout, slice(None), pixels, color)
        return X_triggered

    # -- helpers -----------------------------------------------------------

    def _check_params(self):
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

    def _stamp(self, X, layout, samples, pixels, color):
        """Write the trigger into ``X`` in place (``X`` is our own copy)."""
        # X is C-contiguous, so the (n, C, H, W) view below shares its memory
        # for every layout and the writes land in X.
        view = to_nchw(X, layout, self.image_shape)
        for row, col in pixels:
            view[samples, :, row, col] = color


def _equals(array, value):
    """Elementwise ``array == value`` that is always a boolean array."""
    result = np.asarray(array == value)
    if result.shape != array.shape:
        # Comparing e.g. a string array with an int may give a plain False.
        return np.zeros(array.shape, dtype=bool)
    return result.astype(bool)


def make_scenario(
    image_shape,
    source,
    target,
    eps=0.1,
    random_state=None,
    max_value=255,
    min_contrast=0,
):
    """Draw a random backdoor attack by the rule of the paper's appendix B.2.

    The trigger shape is drawn uniformly from ``"pixel"``, ``"ell"`` and
    ``"pattern"``; its position uniformly among those that keep the whole
    shape inside the image; its colour uniformly, each channel in
    ``[0, max_value]`` (one intensity for grayscale images).

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W)`` for grayscale or ``(H, W, C)``; ``H`` and ``W`` at least
        3 so that every shape fits. Stored in the returned attack, so it
        applies to flat rows as well as to image arrays of this shape.
    source, target : scalar labels
        Source and target classes of the attack.
    eps : float, default=0.1
        Share of the source class to poison, in (0, 1].
    random_state : int, RandomState instance or None, default=None
        Seeds the draws. The returned attack gets a seed drawn from it, so
        an int here also fixes which images its :meth:`~BackdoorAttack.poison`
        picks.
    max_value : int or float, default=255
        Largest colour value. An int gives integer colours in
        ``0..max_value`` inclusive (the paper: 0..255); a float gives real
        colours in ``[0, max_value)``, e.g. 1.0 for images scaled to [0, 1].
    min_contrast : float, default=0
        Deviation from the paper, off by default: re-draw the colour while
        its largest channel is below ``min_contrast``. The paper's uniform
        colour can be nearly black and so nearly invisible on dark images;
        set e.g. ``min_contrast=128`` to rule such triggers out. Must lie in
        ``[0, max_value]`` (``[0, max_value)`` for a float ``max_value``).

    Returns
    -------
    attack : BackdoorAttack
        The drawn attack. Grayscale images get a scalar ``color``, others a
        tuple with one value per channel.

    Raises
    ------
    ValueError
        If ``image_shape``, ``eps``, ``max_value`` or ``min_contrast`` is
        invalid, or ``source == target``.

    Examples
    --------
    >>> from sklearn_ispl.attacks import make_scenario
    >>> attack = make_scenario((32, 32, 3), source=0, target=2, eps=0.05,
    ...                        random_state=0)
    >>> attack.trigger in ("pixel", "ell", "pattern"), len(attack.color)
    (True, 3)
    """
    height, width, channels = check_image_shape(image_shape)
    if height < 3 or width < 3:
        raise ValueError(
            f"image_shape={tuple(image_shape)!r} is too small: the 'pattern' "
            "trigger needs images of at least 3x3 pixels."
        )
    integer_colors = isinstance(max_value, numbers.Integral)
    if (
        not isinstance(max_value, numbers.Real)
        or isinstance(max_value, bool)
        or not np.isfinite(max_value)
        or max_value <= 0
    ):
        raise ValueError(
            f"max_value must be a positive number, got max_value={max_value!r}."
        )
    if (
        not isinstance(min_contrast, numbers.Real)
        or isinstance(min_contrast, bool)
        or not 0 <= min_contrast <= max_value
        or (not integer_colors and min_contrast == max_value)
    ):
        upper = "]" if integer_colors else ")"
        raise ValueError(
            f"min_contrast must be a number in [0, {max_value}{upper} "
            f"(max_value), got min_contrast={min_contrast!r}."
        )

    # Check source, target and eps before drawing anything.
    BackdoorAttack(
        source, target, trigger="pixel", position=(0, 0), color=0, eps=eps
    )._check_params()

    rng = check_random_state(random_state)
    trigger = TRIGGERS[rng.randint(len(TRIGGERS))]
    offsets = np.array(_TRIGGER_OFFSETS[trigger])
    # Valid anchors are those for which every offset stays inside the image.
    row = rng.randint(-offsets[:, 0].min(), height - offsets[:, 0].max())
    col = rng.randint(-offsets[:, 1].min(), width - offsets[:, 1].max())
    while True:
        if integer_colors:
            color = rng.randint(0, int(max_value) + 1, size=channels)
        else:
            color = rng.uniform(0, max_value, size=channels)
        if color.max() >= min_contrast:
            break
    color = color.tolist()
    attack = BackdoorAttack(
        source,
        target,
        trigger=trigger,
        position=(int(row), int(col)),
        color=color[0] if channels == 1 else tuple(color),
        eps=eps,
        image_shape=image_shape,
        random_state=int(rng.randint(np.iinfo(np.int32).max)),
    )
    return attack


#: The paper's eight CIFAR-10 ``(source, target)`` class pairs (appendix
#: B.2, after Tran et al. 2018): (airplane, bird), (automobile, cat),
#: (bird, dog), (cat, dog), (cat, horse), (horse, deer), (ship, frog),
#: (truck, bird), as CIFAR-10 label indices.
PAPER_CLASS_PAIRS = ((0, 2), (1, 3), (2, 5), (3, 5), (3, 7), (7, 4), (8, 6), (9, 2))

# The paper's Table 2, transcribed row by row: for each (source, target)
# pair, poisons 1, 2 and 3 in that order (the main results, Table 1, use
# poison 1). The paper writes positions as "(X, Y)"; the authors' code stamps
# the trigger at image[X, Y] of an (H, W, C) array, so X is the row and Y the
# column, and we store (row, col) = (X, Y). (Table 1's single-pixel
# positions agree with poison 1 here.) The table's "L" is our "ell" and its
# "X" our "pattern". Colours are (R, G, B) in 0..255.
_TABLE_2 = (
    # source, target, color, (X, Y), method
    (0, 2, (103, 87, 79), (24, 3), "pixel"),
    (0, 2, (92, 1, 189), (27, 30), "pixel"),
    (0, 2, (47, 2, 21), (21, 8), "pixel"),
    (1, 3, (180, 98, 53), (10, 30), "pixel"),
    (1, 3, (40, 105, 92), (25, 13), "pixel"),
    (1, 3, (145, 70, 200), (9, 29), "pixel"),
    (2, 5, (93, 86, 130), (27, 9), "pixel"),
    (2, 5, (156, 158, 244), (18, 30), "pixel"),
    (2, 5, (74, 162, 26), (11, 9), "pixel"),
    (3, 5, (34, 241, 240), (2, 14), "L"),
    (3, 5, (239, 42, 58), (28, 13), "pixel"),
    (3, 5, (39, 221, 162), (7, 23), "X"),
    (3, 7, (61, 14, 183), (16, 2), "X"),
    (3, 7, (180, 50, 21), (11, 0), "pixel"),
    (3, 7, (4, 221, 78), (24, 22), "L"),
    (7, 4, (107, 60, 58), (15, 4), "pixel"),
    (7, 4, (242, 30, 233), (4, 21), "X"),
    (7, 4, (76, 14, 15), (11, 19), "L"),
    (8, 6, (141, 245, 211), (4, 1), "pixel"),
    (8, 6, (213, 221, 138), (19, 29), "X"),
    (8, 6, (121, 158, 6), (3, 13), "pixel"),
    (9, 2, (187, 67, 135), (4, 27), "pixel"),
    (9, 2, (69, 204, 11), (14, 29), "L"),
    (9, 2, (239, 186, 219), (1, 29), "X"),
)

_TABLE_2_METHODS = {"pixel": "pixel", "L": "ell", "X": "pattern"}

#: The 24 CIFAR-10 attacks of the paper's Table 2, as keyword arguments of
#: :class:`BackdoorAttack` (``source``, ``target``, ``trigger``,
#: ``position`` as (row, col), ``color`` as (R, G, B) in 0..255). Entries
#: ``3 * k``, ``3 * k + 1`` and ``3 * k + 2`` are poisons 1-3 of
#: ``PAPER_CLASS_PAIRS[k]``. Use e.g.
#: ``BackdoorAttack(**CIFAR10_SCENARIOS[0], eps=0.05)``.
CIFAR10_SCENARIOS = tuple(
    {
        "source": source,
        "target": target,
        "trigger": _TABLE_2_METHODS[method],
        "position": position,
        "color": color,
    }
    for source, target, color, position, method in _TABLE_2
)
