"""Loaders for the image datasets used to evaluate the defense.

Nothing here downloads: scikit-learn's digits are bundled with it,
Fashion-MNIST comes from a local folder of IDX files (by default where
Debian's ``dataset-fashion-mnist`` package installs them), and CIFAR-10 from
a local folder holding its "python version" batches.
"""

import gzip
import math
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

try:
    from numpy._core.multiarray import _reconstruct as _numpy_reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct as _numpy_reconstruct

__all__ = [
    "CIFAR10_CLASSES",
    "FASHION_MNIST_CLASSES",
    "load_cifar10",
    "load_digits_images",
    "load_fashion_mnist",
]

#: Fashion-MNIST class names, indexed by label.
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: CIFAR-10 class names, indexed by label.
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

_SUBSETS = ("train", "test")


def load_digits_images():
    """Load scikit-learn's bundled handwritten digits as 8x8 images.

    Returns
    -------
    X : ndarray of shape (1797, 8, 8), dtype=float64
        Grayscale images with integer intensities 0..16.
    y : ndarray of shape (1797,), dtype=int64
        Digit labels 0..9.

    See Also
    --------
    sklearn.datasets.load_digits : The same data as flat rows.

    Examples
    --------
    >>> from sklearn_ispl.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X.shape, X.dtype, float(X.max()), y[:5].tolist()
    ((1797, 8, 8), dtype('float64'), 16.0, [0, 1, 2, 3, 4])
    """
    digits = load_digits()
    return (
        np.array(digits.images, dtype=np.float64),
        np.array(digits.target, dtype=np.int64),
    )


# ---------------------------------------------------------------------------
# Fashion-MNIST (IDX files)

_FASHION_MNIST_DEFAULT_PATH = "/usr/share/datasets/fashion-mnist/"

_FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# IDX type codes (third byte of the magic number) and the big-endian dtype
# each stands for.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def load_fashion_mnist(path=None, subset="train"):
    """Load Fashion-MNIST from local IDX files.

    Parameters
    ----------
    path : str or path-like, default=None
        Folder holding ``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
        ``t10k-labels-idx1-ubyte``, gzipped (``.gz``, preferred when both
        exist) or not. ``None`` means ``/usr/share/datasets/fashion-mnist/``,
        where Debian's ``dataset-fashion-mnist`` package installs them.
    subset : {"train", "test"}, default="train"
        The 60,000 training or the 10,000 test images.

    Returns
    -------
    X : ndarray of shape (n, 28, 28), dtype=uint8
        Grayscale images, 0 = background.
    y : ndarray of shape (n,), dtype=int64
        Labels 0..9; see :data:`FASHION_MNIST_CLASSES` for their names.

    Raises
    ------
    FileNotFoundError
        If a file is missing; the message says how to install them.
    ValueError
        If ``subset`` is invalid, or a file is not a valid IDX file of the
        expected kind (bad magic number, type code or dimensions, truncated
        or trailing data, corrupt gzip stream), or images and labels do not
        match.

    Examples
    --------
    >>> from sklearn_ispl.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test")  # doctest: +SKIP
    >>> X.shape, X.dtype, y.shape  # doctest: +SKIP
    ((10000, 28, 28), dtype('uint8'), (10000,))
    """
    _check_subset(subset)
    folder = Path(_FASHION_MNIST_DEFAULT_PATH if path is None else path)
    images_name, labels_name = _FASHION_MNIST_FILES[subset]
    images_file = _find_idx_file(folder, images_name)
    labels_file = _find_idx_file(folder, labels_name)

    images = _read_idx(images_file)
    labels = _read_idx(labels_file)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{images_file} must hold unsigned bytes in 3 dimensions "
            f"(n, rows, cols), found {images.dtype} of shape {images.shape}."
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(
            f"{labels_file} must hold unsigned bytes in 1 dimension, found "
            f"{labels.dtype} of shape {labels.shape}."
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_file} holds {images.shape[0]} images but {labels_file} "
            f"holds {labels.shape[0]} labels."
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise ValueError(
            f"{labels_file} holds label {int(labels.max())}; Fashion-MNIST "
            f"labels are 0..{len(FASHION_MNIST_CLASSES) - 1}."
        )
    return images, labels.astype(np.int64)


def _find_idx_file(folder, name):
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Fashion-MNIST file {name}.gz (or {name}) not found in {folder}. "
        "Install the files with `apt-get install dataset-fashion-mnist` "
        "(Debian/Ubuntu, into /usr/share/datasets/fashion-mnist/), or pass "
        "path= to a folder holding the IDX files."
    )


def _read_idx(file):
    """Read one IDX file (gzipped or not) into a native-endian array."""
    raw = file.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{file} is a corrupt gzip file: {exc}") from exc
    # Header: two zero bytes, a type code, the number of dimensions, then
    # one big-endian uint32 per dimension.
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{file} is not an IDX file: its magic number {raw[:4].hex()!r} "
            "does not start with two zero bytes."
        )
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(
            f"{file} has unknown IDX type code 0x{type_code:02x}; expected "
            f"one of {[f'0x{code:02x}' for code in _IDX_DTYPES]}."
        )
    if ndim == 0:
        raise ValueError(f"{file} declares 0 dimensions in its IDX header.")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(
            f"{file} is truncated: its IDX header declares {ndim} dimensions "
            f"but the file has only {len(raw)} bytes."
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header_size])
    dtype = _IDX_DTYPES[type_code]
    n_values = math.prod(dims)
    n_bytes = len(raw) - header_size
    if n_bytes != n_values * dtype.itemsize:
        raise ValueError(
            f"{file} is corrupt: its IDX header declares dimensions {dims} of "
            f"{dtype.itemsize}-byte values ({n_values * dtype.itemsize} bytes) "
            f"but {n_bytes} bytes of data follow."
        )
    values = np.frombuffer(raw, dtype=dtype, count=n_values, offset=header_size)
    # astype copies: the result owns writeable memory in native byte order.
    return values.reshape(dims).astype(dtype.newbyteorder("="))


# ---------------------------------------------------------------------------
# CIFAR-10 (pickled "python version" batches)

_CIFAR10_FILES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}

_CIFAR10_IMAGE_SIZE = 32 * 32 * 3


def load_cifar10(path, subset="train"):
    """Load CIFAR-10 from a local folder of its "python version" batches.

    Parameters
    ----------
    path : str or path-like
        Folder holding ``data_batch_1`` .. ``data_batch_5`` and
        ``test_batch``, as extracted from ``cifar-10-python.tar.gz``; the
        folder that contains the extracted ``cifar-10-batches-py`` is
        accepted too.
    subset : {"train", "test"}, default="train"
        The 50,000 training images (batches 1 to 5, in order) or the 10,000
        test images.

    Returns
    -------
    X : ndarray of shape (n, 32, 32, 3), dtype=uint8
        RGB images, channels last.
    y : ndarray of shape (n,), dtype=int64
        Labels 0..9; see :data:`CIFAR10_CLASSES` for their names.

    Raises
    ------
    FileNotFoundError
        If a batch file is missing.
    ValueError
        If ``subset`` is invalid, or a batch is not a valid CIFAR-10 batch:
        corrupt, of the wrong content, or refused by the restricted
        unpickler below.

    Notes
    -----
    The batches are Python pickles, and unpickling can run arbitrary code.
    They are read with an unpickler that resolves exactly four globals:
    ``numpy.core.multiarray._reconstruct`` and its NumPy 2 name
    ``numpy._core.multiarray._reconstruct``, ``numpy.ndarray`` and
    ``numpy.dtype``, which are what NumPy's own pickling of the ``data``
    array refers to. Everything else in a batch (the dict, lists, strings,
    bytes, ints) needs no global. Any other global, e.g. ``os.system`` in a
    tampered file, makes loading fail before anything is called. A pickle
    cannot call other code through these four: they only allocate arrays
    and dtypes from the data.

    Examples
    --------
    >>> from sklearn_ispl.datasets import load_cifar10
    >>> X, y = load_cifar10("cifar-10-batches-py", subset="test")  # doctest: +SKIP
    >>> X.shape, X.dtype, y.shape  # doctest: +SKIP
    ((10000, 32, 32, 3), dtype('uint8'), (10000,))
    """
    _check_subset(subset)
    folder = Path(path)
    names = _CIFAR10_FILES[subset]
    if not (folder / names[0]).is_file() and (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 batch file(s) {missing} not found in {folder}. Extract "
            "the python version (cifar-10-python.tar.gz, from "
            "https://www.cs.toronto.edu/~kriz/cifar.html) and pass path= to "
            "the folder holding data_batch_1..5 and test_batch."
        )
    batches = [_read_cifar10_batch(folder / name) for name in names]
    X = np.concatenate([images for images, _ in batches])
    y = np.concatenate([labels for _, labels in batches])
    return X, y


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only NumPy's array reconstruction globals."""

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module, name):
        # Hand out the objects themselves instead of importing `module`: no
        # import side effects, and no deprecation warning for numpy.core.
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: a CIFAR-10 batch "
                "needs only numpy's array reconstruction; the file may be "
                "malicious"
            ) from None


def _read_cifar10_batch(file):
    with open(file, "rb") as stream:
        try:
            # The batches were pickled by Python 2; latin1 maps its byte
            # strings (keys, file names, the raw array data) one to one.
            batch = _RestrictedUnpickler(stream, encoding="latin1").load()
        except Exception as exc:
            # Garbage input can fail in many ways inside pickle and numpy
            # (UnpicklingError, EOFError, TypeError, ...): report them all
            # as one kind of error that names the file.
            raise ValueError(
                f"{file} is not a valid CIFAR-10 batch: {type(exc).__name__}: {exc}"
            ) from exc
    if not isinstance(batch, dict):
        raise ValueError(
            f"{file} is not a valid CIFAR-10 batch: expected a dict, got "
            f"{type(batch).__name__}."
        )
    data = _batch_entry(batch, "data", file)
    labels = _batch_entry(batch, "labels", file)
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != _CIFAR10_IMAGE_SIZE
    ):
        raise ValueError(
            f"{file} is not a valid CIFAR-10 batch: 'data' must be a uint8 "
            f"array of shape (n, {_CIFAR10_IMAGE_SIZE}), got "
            f"{getattr(data, 'dtype', type(data).__name__)} of shape "
            f"{getattr(data, 'shape', None)}."
        )
    labels = np.asarray(labels)
    if (
        labels.shape != (data.shape[0],)
        or labels.dtype.kind not in "iu"
        or (labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)))
    ):
        raise ValueError(
            f"{file} is not a valid CIFAR-10 batch: 'labels' must hold "
            f"{data.shape[0]} integers in 0..{len(CIFAR10_CLASSES) - 1}."
        )
    # Each row is the red plane, then green, then blue, each 32x32 row-major.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _batch_entry(batch, key, file):
    # Python 2 pickles give str keys under latin1; accept bytes keys as well,
    # as written by pickling with bytes keys from Python 3.
    for candidate in (key, key.encode("ascii")):
        if candidate in batch:
            return batch[candidate]
    raise ValueError(f"{file} is not a valid CIFAR-10 batch: it has no {key!r} entry.")


def _check_subset(subset):
    if not isinstance(subset, str) or subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {_SUBSETS}, got subset={subset!r}.")
