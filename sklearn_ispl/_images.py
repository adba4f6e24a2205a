"""Image-layout helpers shared by the filters, the attacks and the metrics.

Users hand us images in whatever layout their stack produces: ``(n, H, W)``
grayscale arrays, channels-last ``(n, H, W, C)`` arrays (NumPy, PIL,
TensorFlow), channels-first ``(n, C, H, W)`` arrays (PyTorch), or flat
``(n, H * W * C)`` rows with a separate ``image_shape``. Everything inside the
package works on one canonical layout, ``(n, C, H, W)``, and converts back
when it returns arrays to the user. The conversions only transpose and
reshape, so they return views whenever NumPy can and never change the dtype.

Layout names
------------
``"nhw"``
    3-D array ``(n, H, W)``, one channel.
``"nhwc"``
    4-D array ``(n, H, W, C)`` with ``C`` in (1, 3, 4).
``"nchw"``
    4-D array ``(n, C, H, W)`` with ``C`` in (1, 3, 4).
``"flat"``
    2-D array ``(n, H * W * C)`` together with ``image_shape`` ``(H, W)`` or
    ``(H, W, C)``; each row holds the pixels in channels-last (row-major)
    order, which is what ``X_nhwc.reshape(n, -1)`` produces.
``"tabular"``
    2-D array without ``image_shape``: not an image, so the conversions
    refuse it.
"""

import numbers

import numpy as np

__all__ = [
    "IMAGE_LAYOUTS",
    "check_image_shape",
    "from_nchw",
    "image_dims",
    "infer_layout",
    "to_nchw",
]

#: Layouts that hold images and can be converted to and from ``(n, C, H, W)``.
IMAGE_LAYOUTS = ("nhw", "nhwc", "nchw", "flat")

_ALL_LAYOUTS = (*IMAGE_LAYOUTS, "tabular")

# Channel counts we recognise on a 4-D array: grayscale, RGB and RGBA. A
# wider set would make layouts ambiguous far more often (an 8x8 image with 8
# channels could be read either way).
_CHANNEL_SIZES = (1, 3, 4)


def check_image_shape(image_shape):
    """Validate ``image_shape`` and return it as ``(H, W, C)``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W)`` for one channel or ``(H, W, C)``; every entry a positive
        integer.

    Returns
    -------
    image_shape : tuple of int
        ``(H, W, C)``, with ``C = 1`` when ``image_shape`` had two entries.

    Raises
    ------
    ValueError
        If ``image_shape`` is not a tuple or list of two or three positive
        integers.

    Examples
    --------
    >>> from sklearn_ispl._images import check_image_shape
    >>> check_image_shape((28, 28))
    (28, 28, 1)
    >>> check_image_shape([32, 32, 3])
    (32, 32, 3)
    """
    if (
        not isinstance(image_shape, (tuple, list))
        or len(image_shape) not in (2, 3)
        or not all(_is_positive_int(d) for d in image_shape)
    ):
        raise ValueError(
            "image_shape must be a tuple (H, W) or (H, W, C) of positive "
            f"integers, got image_shape={image_shape!r}."
        )
    dims = tuple(int(d) for d in image_shape)
    return dims if len(dims) == 3 else (*dims, 1)


def infer_layout(shape, image_shape=None):
    """Tell the layout of an array of images from its shape.

    Parameters
    ----------
    shape : tuple of int
        Shape of the array, samples first.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)``. Required to read a 2-D array as images
        (rows of ``H * W * C`` channels-last pixels); without it a 2-D array
        is tabular data. For a 3-D or 4-D array it is optional and, when
        given, must agree with the array (``(H, W)`` meaning one channel).

    Returns
    -------
    layout : {"nhw", "nhwc", "nchw", "flat", "tabular"}
        ``"nhw"`` for 3-D arrays; for 4-D arrays ``"nhwc"`` if the last axis
        has 1, 3 or 4 entries, else ``"nchw"`` if the second axis has; for
        2-D arrays ``"flat"`` with ``image_shape`` and ``"tabular"`` without.

    Raises
    ------
    ValueError
        If the array is not 2-D, 3-D or 4-D, if a 4-D array has no axis of
        1, 3 or 4 channels, or if ``image_shape`` is malformed or does not
        agree with ``shape``.

    Examples
    --------
    >>> from sklearn_ispl._images import infer_layout
    >>> infer_layout((10, 28, 28))
    'nhw'
    >>> infer_layout((10, 32, 32, 3))
    'nhwc'
    >>> infer_layout((10, 3, 32, 32))
    'nchw'
    >>> infer_layout((10, 64), image_shape=(8, 8))
    'flat'
    >>> infer_layout((10, 64))
    'tabular'
    """
    shape = _check_shape(shape)
    ndim = len(shape)
    if ndim == 2:
        if image_shape is None:
            return "tabular"
        height, width, channels = check_image_shape(image_shape)
        if height * width * channels != shape[1]:
            raise ValueError(
                f"image_shape={tuple(image_shape)!r} holds "
                f"{height * width * channels} values per image, but X has "
                f"{shape[1]} features per row; each row must hold "
                "H * W * C pixels in channels-last order."
            )
        return "flat"
    if ndim == 3:
        layout = "nhw"
    elif ndim == 4:
        if shape[-1] in _CHANNEL_SIZES:
            layout = "nhwc"
        elif shape[1] in _CHANNEL_SIZES:
            layout = "nchw"
        else:
            raise ValueError(
                f"Cannot tell the channel axis of a 4-D array of shape "
                f"{shape}: expected (n, H, W, C) or (n, C, H, W) with C in "
                f"{_CHANNEL_SIZES}. Reshape the images to one of these "
                "layouts, or flatten them to (n, H * W * C) and pass "
                "image_shape."
            )
    else:
        raise ValueError(
            "X must be a 2-D (n, features) array, a 3-D (n, H, W) array or "
            f"a 4-D (n, H, W, C) / (n, C, H, W) array; got ndim={ndim} "
            f"(shape {shape})."
        )
    if image_shape is not None:
        expected = check_image_shape(image_shape)
        found = _dims_of(shape, layout)
        if expected != (found[1], found[2], found[0]):
            raise ValueError(
                f"image_shape={tuple(image_shape)!r} does not match X of "
                f"shape {shape} read as layout {layout!r} (H, W, C) = "
                f"{(found[1], found[2], found[0])}."
            )
    return layout


def image_dims(shape, layout, image_shape=None):
    """Return ``(C, H, W)`` of the images in an array of the given layout.

    Parameters
    ----------
    shape : tuple of int
        Shape of the array, samples first.
    layout : {"nhw", "nhwc", "nchw", "flat"}
        Layout of the array, as returned by :func:`infer_layout`.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)``; required for ``layout="flat"``.

    Returns
    -------
    dims : tuple of int
        ``(C, H, W)``.

    Raises
    ------
    ValueError
        If ``layout`` is not an image layout or does not fit ``shape``.

    Examples
    --------
    >>> from sklearn_ispl._images import image_dims
    >>> image_dims((10, 32, 32, 3), "nhwc")
    (3, 32, 32)
    >>> image_dims((10, 784), "flat", image_shape=(28, 28))
    (1, 28, 28)
    """
    shape = _check_shape(shape)
    _check_layout(layout, shape, image_shape)
    return _dims_of(shape, layout, image_shape)


def to_nchw(X, layout, image_shape=None):
    """View an array of images as ``(n, C, H, W)``.

    Parameters
    ----------
    X : ndarray
        Images in ``layout``.
    layout : {"nhw", "nhwc", "nchw", "flat"}
        Layout of ``X``, as returned by :func:`infer_layout`.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)``; required for ``layout="flat"``.

    Returns
    -------
    X_nchw : ndarray of shape (n, C, H, W)
        Same dtype as ``X``. A view of ``X`` whenever NumPy can express the
        conversion as one (always, except for a flat array whose memory
        order forbids the reshape); write to it only if you meant to change
        ``X``.

    Raises
    ------
    ValueError
        If ``layout`` is ``"tabular"`` or unknown, or does not fit ``X``.

    See Also
    --------
    from_nchw : The inverse conversion.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ispl._images import to_nchw
    >>> to_nchw(np.zeros((5, 32, 32, 3)), "nhwc").shape
    (5, 3, 32, 32)
    >>> to_nchw(np.zeros((5, 64)), "flat", image_shape=(8, 8)).shape
    (5, 1, 8, 8)
    """
    X = np.asarray(X)
    _check_layout(layout, X.shape, image_shape)
    if layout == "nhw":
        return X[:, np.newaxis, :, :]
    if layout == "nhwc":
        return X.transpose(0, 3, 1, 2)
    if layout == "nchw":
        return X
    height, width, channels = check_image_shape(image_shape)
    return X.reshape(X.shape[0], height, width, channels).transpose(0, 3, 1, 2)


def from_nchw(X_nchw, layout, image_shape=None):
    """Convert ``(n, C, H, W)`` images back to the user's layout.

    Parameters
    ----------
    X_nchw : ndarray of shape (n, C, H, W)
        Images in the canonical layout.
    layout : {"nhw", "nhwc", "nchw", "flat"}
        Layout to convert to.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)``. Optional for ``layout="flat"`` (the
        shape of ``X_nchw`` already fixes it); when given it must agree with
        ``X_nchw``.

    Returns
    -------
    X : ndarray
        Same dtype as ``X_nchw``; a view of it whenever NumPy allows.
        ``from_nchw(to_nchw(X, layout), layout)`` equals ``X``.

    Raises
    ------
    ValueError
        If ``X_nchw`` is not 4-D, if ``layout`` is ``"tabular"`` or unknown,
        if ``layout="nhw"`` but there is more than one channel, or if
        ``image_shape`` disagrees with ``X_nchw``.

    See Also
    --------
    to_nchw : The forward conversion.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ispl._images import from_nchw
    >>> from_nchw(np.zeros((5, 3, 32, 32)), "nhwc").shape
    (5, 32, 32, 3)
    >>> from_nchw(np.zeros((5, 1, 8, 8)), "flat").shape
    (5, 64)
    """
    X_nchw = np.asarray(X_nchw)
    if X_nchw.ndim != 4:
        raise ValueError(
            f"X_nchw must be a 4-D (n, C, H, W) array, got shape {X_nchw.shape}."
        )
    if layout not in _ALL_LAYOUTS:
        raise ValueError(
            f"layout must be one of {IMAGE_LAYOUTS}, got layout={layout!r}."
        )
    if layout == "tabular":
        raise ValueError(_TABULAR_MESSAGE)
    n, channels, height, width = X_nchw.shape
    if image_shape is not None and check_image_shape(image_shape) != (
        height,
        width,
        channels,
    ):
        raise ValueError(
            f"image_shape={tuple(image_shape)!r} does not match X_nchw of "
            f"shape {X_nchw.shape} ((H, W, C) = {(height, width, channels)})."
        )
    if layout == "nhw":
        if channels != 1:
            raise ValueError(
                f"layout='nhw' holds one channel, but X_nchw has {channels} "
                f"(shape {X_nchw.shape})."
            )
        return X_nchw[:, 0, :, :]
    if layout == "nchw":
        return X_nchw
    X_nhwc = X_nchw.transpose(0, 2, 3, 1)
    if layout == "nhwc":
        return X_nhwc
    return X_nhwc.reshape(n, height * width * channels)


_TABULAR_MESSAGE = (
    "X is a 2-D array without image_shape, i.e. tabular data, not images. "
    "Pass image_shape=(H, W) or (H, W, C) to read each row as a flattened "
    "channels-last image."
)


def _is_positive_int(value):
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and value > 0
    )


def _check_shape(shape):
    try:
        return tuple(int(d) for d in shape)
    except TypeError:
        raise ValueError(f"shape must be a tuple of integers, got {shape!r}.") from None


def _check_layout(layout, shape, image_shape):
    """Raise if ``layout`` is not an image layout matching ``shape``."""
    if layout not in _ALL_LAYOUTS:
        raise ValueError(
            f"layout must be one of {IMAGE_LAYOUTS}, got layout={layout!r}."
        )
    if layout == "tabular":
        raise ValueError(_TABULAR_MESSAGE)
    expected_ndim = {"nhw": 3, "nhwc": 4, "nchw": 4, "flat": 2}[layout]
    if len(shape) != expected_ndim:
        raise ValueError(
            f"layout={layout!r} needs a {expected_ndim}-D array, got shape "
            f"{tuple(shape)}."
        )
    if layout == "flat":
        if image_shape is None:
            raise ValueError(
                "layout='flat' needs image_shape=(H, W) or (H, W, C) to "
                "un-flatten the rows."
            )
        # Reuse infer_layout's check that the row length matches.
        infer_layout(shape, image_shape)
    elif image_shape is not None:
        channels, height, width = _dims_of(shape, layout)
        if check_image_shape(image_shape) != (height, width, channels):
            raise ValueError(
                f"image_shape={tuple(image_shape)!r} does not match X of "
                f"shape {tuple(shape)} read as layout {layout!r} "
                f"((H, W, C) = {(height, width, channels)})."
            )


def _dims_of(shape, layout, image_shape=None):
    """``(C, H, W)`` of a shape already known to fit ``layout``."""
    if layout == "nhw":
        return (1, shape[1], shape[2])
    if layout == "nhwc":
        return (shape[3], shape[1], shape[2])
    if layout == "nchw":
        return (shape[1], shape[2], shape[3])
    height, width, channels = check_image_shape(image_shape)
    return (channels, height, width)
