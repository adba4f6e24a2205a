"""Random attacks drawn by the paper's rule, and the paper's own attacks."""

import math
import numbers

import numpy as np
from sklearn.utils import check_random_state

from .._images import check_image_shape
from ._base import _is_int, _is_real
from ._blended import BlendedBackdoorAttack
from ._multi import MultiAttack
from ._stamped import _TRIGGER_OFFSETS, TRIGGERS, BackdoorAttack, VaryingBackdoorAttack

__all__ = [
    "CIFAR10_SCENARIOS",
    "PAPER_CLASS_PAIRS",
    "SCENARIO_KINDS",
    "make_blended_scenario",
    "make_multi_scenario",
    "make_scenario",
    "make_varying_scenario",
]


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


#: Kinds of attack :func:`make_multi_scenario` draws: ``"stamped"`` by
#: :func:`make_scenario`, ``"blended"`` by :func:`make_blended_scenario` and
#: ``"varying"`` by :func:`make_varying_scenario`.
SCENARIO_KINDS = ("stamped", "blended", "varying")

# Seeds handed to the drawn attacks, as in make_scenario.
_SEED_BOUND = np.iinfo(np.int32).max


def _check_max_value(max_value):
    if not _is_real(max_value) or max_value <= 0:
        raise ValueError(
            f"max_value must be a positive number, got max_value={max_value!r}."
        )


def make_blended_scenario(
    image_shape,
    source,
    target,
    eps=0.1,
    random_state=None,
    max_value=255,
    alphas=(0.05, 0.1, 0.2),
):
    """Draw a random blended backdoor attack with a noise pattern.

    The analogue of :func:`make_scenario` for
    :class:`BlendedBackdoorAttack`: the blend ratio is drawn uniformly from
    ``alphas`` and the pattern is uniform noise over ``[0, max_value)`` on
    the whole image, from a drawn ``pattern_seed``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W)`` for grayscale or ``(H, W, C)``. Stored in the returned
        attack, so it applies to flat rows as well as to image arrays of
        this shape.
    source, target : scalar labels
        Source and target classes of the attack, e.g. one of
        :data:`PAPER_CLASS_PAIRS`.
    eps : float, default=0.1
        Share of the source class to poison, in (0, 1].
    random_state : int, RandomState instance or None, default=None
        Seeds the draws. The returned attack gets seeds drawn from it, so
        an int here also fixes its pattern and which images its
        :meth:`~BlendedBackdoorAttack.poison` picks.
    max_value : int or float, default=255
        Top of the noise's range, the images' largest value: 255 for
        ``uint8`` images, 1.0 for floats in [0, 1], 16 for scikit-learn's
        digits.
    alphas : sequence of float, default=(0.05, 0.1, 0.2)
        Blend ratios to draw from, each in (0, 1].

    Returns
    -------
    attack : BlendedBackdoorAttack
        The drawn attack, with ``pattern=None`` and
        ``value_range=(0, max_value)``.

    Raises
    ------
    ValueError
        If ``image_shape``, ``eps``, ``max_value`` or ``alphas`` is invalid,
        or ``source == target``.

    Examples
    --------
    >>> from sklearn_ispl.attacks import make_blended_scenario
    >>> attack = make_blended_scenario((32, 32, 3), source=3, target=5,
    ...                                random_state=0)
    >>> attack.alpha in (0.05, 0.1, 0.2), attack.trigger_pattern((32, 32, 3)).shape
    (True, (32, 32, 3))
    """
    check_image_shape(image_shape)
    _check_max_value(max_value)
    if (
        not isinstance(alphas, (tuple, list))
        or len(alphas) == 0
        or not all(_is_real(a) and 0 < a <= 1 for a in alphas)
    ):
        raise ValueError(
            "alphas must be a non-empty sequence of numbers in (0, 1], got "
            f"alphas={alphas!r}."
        )
    # Check source, target and eps before drawing anything.
    BlendedBackdoorAttack(source, target, eps=eps)._check_params()

    rng = check_random_state(random_state)
    alpha = alphas[rng.randint(len(alphas))]
    pattern_seed = int(rng.randint(_SEED_BOUND))
    return BlendedBackdoorAttack(
        source,
        target,
        alpha=alpha,
        pattern=None,
        pattern_seed=pattern_seed,
        value_range=(0, max_value),
        eps=eps,
        image_shape=image_shape,
        random_state=int(rng.randint(_SEED_BOUND)),
    )


def make_varying_scenario(
    image_shape,
    source,
    target,
    eps=0.1,
    random_state=None,
    max_value=255,
    color_range=None,
    jitter=0,
):
    """Draw a random stamped backdoor whose intensity varies per image.

    The analogue of :func:`make_scenario` for
    :class:`VaryingBackdoorAttack`: the trigger shape and position are drawn
    as there (shape uniformly from ``"pixel"``, ``"ell"`` and
    ``"pattern"``, position uniformly among those that keep the shape
    inside the image); each triggered image then draws its own intensity
    from ``color_range``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W)`` for grayscale or ``(H, W, C)``; ``H`` and ``W`` at least
        3 so that every shape fits. Stored in the returned attack.
    source, target : scalar labels
        Source and target classes of the attack, e.g. one of
        :data:`PAPER_CLASS_PAIRS`.
    eps : float, default=0.1
        Share of the source class to poison, in (0, 1].
    random_state : int, RandomState instance or None, default=None
        Seeds the draws. The returned attack gets a seed drawn from it, so
        an int here also fixes its poison and intensities.
    max_value : int or float, default=255
        The images' largest value.
    color_range : tuple of float, default=None
        Range of the per-image intensity, within ``[0, max_value]``. None
        means the bright top of the range, ``(ceil(5 * max_value / 8),
        max_value)`` for an int ``max_value`` (``(160, 255)`` for 255) and
        ``(0.625 * max_value, max_value)`` for a float one.
    jitter : int, default=0
        Largest per-image shift of the trigger, in pixels; see
        :class:`VaryingBackdoorAttack`.

    Returns
    -------
    attack : VaryingBackdoorAttack
        The drawn attack.

    Raises
    ------
    ValueError
        If ``image_shape``, ``eps``, ``max_value``, ``color_range`` or
        ``jitter`` is invalid, or ``source == target``.

    Examples
    --------
    >>> from sklearn_ispl.attacks import make_varying_scenario
    >>> attack = make_varying_scenario((32, 32, 3), source=3, target=5,
    ...                                random_state=0)
    >>> attack.trigger in ("pixel", "ell", "pattern"), attack.color_range
    (True, (160, 255))
    """
    height, width, _ = check_image_shape(image_shape)
    if height < 3 or width < 3:
        raise ValueError(
            f"image_shape={tuple(image_shape)!r} is too small: the 'pattern' "
            "trigger needs images of at least 3x3 pixels."
        )
    _check_max_value(max_value)
    if color_range is None:
        if _is_int(max_value):
            color_range = (math.ceil(5 * max_value / 8), max_value)
        else:
            color_range = (0.625 * max_value, max_value)
    elif (
        not isinstance(color_range, (tuple, list))
        or len(color_range) != 2
        or not all(_is_real(v) for v in color_range)
        or not 0 <= color_range[0] <= color_range[1] <= max_value
    ):
        raise ValueError(
            "color_range must be a (low, high) pair with 0 <= low <= high <= "
            f"max_value={max_value!r}, got color_range={color_range!r}."
        )
    color_range = tuple(color_range)
    # Check source, target, eps and jitter before drawing anything.
    VaryingBackdoorAttack(
        source,
        target,
        trigger="pixel",
        position=(0, 0),
        color_range=color_range,
        eps=eps,
        jitter=jitter,
    )._check_params()

    rng = check_random_state(random_state)
    trigger = TRIGGERS[rng.randint(len(TRIGGERS))]
    offsets = np.array(_TRIGGER_OFFSETS[trigger])
    # Valid anchors are those for which every offset stays inside the image.
    row = rng.randint(-offsets[:, 0].min(), height - offsets[:, 0].max())
    col = rng.randint(-offsets[:, 1].min(), width - offsets[:, 1].max())
    return VaryingBackdoorAttack(
        source,
        target,
        trigger=trigger,
        position=(int(row), int(col)),
        color_range=color_range,
        eps=eps,
        jitter=jitter,
        image_shape=image_shape,
        random_state=int(rng.randint(_SEED_BOUND)),
    )


def make_multi_scenario(
    image_shape,
    n_attacks=2,
    eps=0.1,
    random_state=None,
    max_value=255,
    kinds=None,
    class_pairs=PAPER_CLASS_PAIRS,
    min_contrast=0,
):
    """Draw several random attacks on different class pairs at once.

    Draws ``n_attacks`` different pairs from ``class_pairs`` and, for each,
    a kind of attack (uniformly from :data:`SCENARIO_KINDS` unless
    ``kinds`` fixes it) drawn by :func:`make_scenario`,
    :func:`make_blended_scenario` or :func:`make_varying_scenario` with a
    seed drawn here.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W)`` for grayscale or ``(H, W, C)``; ``H`` and ``W`` at least
        3.
    n_attacks : int, default=2
        Number of attacks, from 1 to the number of distinct pairs.
    eps : float or sequence of float, default=0.1
        Share of each attack's source class to poison, in (0, 1]; a
        sequence gives one per attack.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws, and through them every attack's own seed.
    max_value : int or float, default=255
        The images' largest value, passed to each drawing function.
    kinds : str, sequence of str or None, default=None
        Kind of every attack (a str) or of each attack in turn (a sequence
        of ``n_attacks``), from :data:`SCENARIO_KINDS`. None draws each.
    class_pairs : sequence of (source, target), default=PAPER_CLASS_PAIRS
        Pairs to draw from.
    min_contrast : float, default=0
        Passed to :func:`make_scenario` for ``"stamped"`` attacks.

    Returns
    -------
    attack : MultiAttack
        The drawn attacks, in the order drawn.

    Raises
    ------
    ValueError
        If a parameter is invalid, or a drawing function rejects its own.

    Examples
    --------
    >>> from sklearn_ispl.attacks import make_multi_scenario
    >>> multi = make_multi_scenario((32, 32, 3), random_state=0)
    >>> pairs = [(a.source, a.target) for a in multi.attacks]
    >>> len(pairs), pairs[0] != pairs[1]
    (2, True)
    """
    check_image_shape(image_shape)
    if not isinstance(class_pairs, (tuple, list)) or not all(
        isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in class_pairs
    ):
        raise ValueError(
            "class_pairs must be a sequence of (source, target) pairs, got "
            f"class_pairs={class_pairs!r}."
        )
    pairs = list(dict.fromkeys(tuple(pair) for pair in class_pairs))
    if not _is_int(n_attacks) or not 1 <= n_attacks <= len(pairs):
        raise ValueError(
            f"n_attacks must be an integer from 1 to {len(pairs)} (the number "
            f"of distinct class pairs), got n_attacks={n_attacks!r}."
        )
    if isinstance(eps, numbers.Number):
        eps = [eps] * n_attacks
    elif not isinstance(eps, (tuple, list)) or len(eps) != n_attacks:
        raise ValueError(
            f"eps must be a number or a sequence of {n_attacks} numbers (one "
            f"per attack), got eps={eps!r}."
        )
    if kinds is None or isinstance(kinds, str):
        kinds_given = None if kinds is None else [kinds] * n_attacks
    elif isinstance(kinds, (tuple, list)) and len(kinds) == n_attacks:
        kinds_given = list(kinds)
    else:
        kinds_given = []
    if kinds_given is not None and (
        len(kinds_given) != n_attacks
        or not all(isinstance(k, str) and k in SCENARIO_KINDS for k in kinds_given)
    ):
        raise ValueError(
            f"kinds must be None, one of {SCENARIO_KINDS} or a sequence of "
            f"{n_attacks} of them, got kinds={kinds!r}."
        )

    rng = check_random_state(random_state)
    chosen = rng.choice(len(pairs), size=n_attacks, replace=False)
    attacks = []
    for k, pair_index in enumerate(chosen):
        source, target = pairs[pair_index]
        if kinds_given is None:
            kind = SCENARIO_KINDS[rng.randint(len(SCENARIO_KINDS))]
        else:
            kind = kinds_given[k]
        seed = int(rng.randint(_SEED_BOUND))
        common = dict(eps=eps[k], random_state=seed, max_value=max_value)
        if kind == "stamped":
            attack = make_scenario(
                image_shape, source, target, min_contrast=min_contrast, **common
            )
        elif kind == "blended":
            attack = make_blended_scenario(image_shape, source, target, **common)
        else:
            attack = make_varying_scenario(image_shape, source, target, **common)
        attacks.append(attack)
    return MultiAttack(attacks)
