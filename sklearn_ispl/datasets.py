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

# A real batch holds 10,000 images; no batch file may make the loader build
# more than that.
_CIFAR10_MAX_IMAGES = 10_000

# The largest array a batch needs is its uint8 data; its labels, even as an
# int64 array, are far smaller.
_CIFAR10_MAX_ARRAY_BYTES = _CIFAR10_MAX_IMAGES * _CIFAR10_IMAGE_SIZE

# What the unpickler may allocate for one file in all. Per image a batch
# holds 3072 pixels, a label (8 bytes as int64) and a file name; 256 bytes
# cover the name and the other small entries. Twice that, as at protocols 0
# to 2 every array's raw data and every bytes object is first decoded from
# text. A pickle can refer back to one object any number of times, so
# without a total a few bytes could ask for many full arrays.
_CIFAR10_MAX_BATCH_BYTES = 2 * _CIFAR10_MAX_IMAGES * (_CIFAR10_IMAGE_SIZE + 8 + 256)

# The names numpy.dtype is called with when NumPy pickles a plain boolean,
# integer or float array or scalar.
_PICKLED_DTYPES = frozenset(
    [f"{kind}{size}" for kind in "iu" for size in (1, 2, 4, 8)]
    + ["b1", "f2", "f4", "f8"]
)


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
        corrupt, of the wrong content or size, or refused by the restricted
        unpickler (see Notes). The message names the file.

    Notes
    -----
    A batch is a pickled dict whose ``data`` entry is a uint8 array of shape
    ``(n, 3072)`` (or a list of ``n`` rows of 3072 ints in 0..255), each row
    the red, green and blue 32x32 planes, and whose ``labels`` entry is a
    list (or 1-D integer array) of ``n`` ints in 0..9; ``n`` is at most
    10,000, and may be 0. Keys may be ``str`` or ``bytes``. Batches pickled
    by Python 2 (as distributed) or Python 3, at any protocol from 0 to 5,
    are read.

    Unpickling can run arbitrary code and allocate arbitrary memory, so the
    batches are read with an unpickler that resolves only the globals such a
    batch refers to, each replaced by a checked stand-in:

    - ``numpy.dtype``, for plain boolean, integer and float types only;
    - ``numpy.core.multiarray._reconstruct`` (NumPy 2:
      ``numpy._core.multiarray._reconstruct``) with ``numpy.ndarray`` as the
      type to rebuild, and, at protocol 5, ``numpy.core.numeric._frombuffer``
      (``numpy._core.numeric._frombuffer``): they rebuild a contiguous array
      from raw bytes that must be exactly its size. ``numpy.ndarray`` cannot
      be called, so a pickle cannot give an array strides or a buffer that
      its shape overruns;
    - ``numpy.core.multiarray.scalar`` (``numpy._core.multiarray.scalar``),
      for integer labels pickled as NumPy scalars;
    - ``_codecs.encode`` (latin-1 only) and ``bytes()`` without arguments,
      through which Python 3 pickles bytes at protocols 0 to 2.

    The size of every array is checked before it is allocated: none may be
    larger than the 30,720,000 bytes of 10,000 images, nor all that one file
    builds larger than about twice that. Any other global, e.g.
    ``os.system`` in a tampered file, makes loading fail before anything is
    called. Arrays pickled out of band (protocol 5 with a
    ``buffer_callback``) are not in the file, and such a batch is refused.

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


class _Global:
    """A global as the restricted unpickler hands it out: a callable only.

    Pickle's BUILD opcode sets the state of whatever object it is given; on
    a plain function it could set attributes (even its defaults), changing
    the loader for later files. This object has no attributes to set and
    refuses any state.
    """

    __slots__ = ("_name", "_function")

    def __init__(self, name, function):
        self._name = name
        self._function = function

    def __call__(self, *args):
        return self._function(*args)

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"refused to set the state of {self._name}")

    def __repr__(self):
        return f"<checked {self._name}>"


class _DtypeSpec:
    """Stand-in for ``numpy.dtype`` while unpickling: a plain numeric dtype.

    NumPy pickles a dtype as ``numpy.dtype(name, align, copy)`` followed by a
    state holding its byte order. Only the names of plain boolean, integer
    and float types are accepted, and only the state of such a type, so
    NumPy never sees structured, object or flexible dtypes from a file.
    """

    __slots__ = ("dtype", "_state_set")

    def __init__(self, name, align=False, copy=False):
        if not isinstance(name, str):
            raise pickle.UnpicklingError(
                f"refused numpy.dtype({type(name).__name__}): a CIFAR-10 batch "
                "names its dtypes by string"
            )
        if name not in _PICKLED_DTYPES:
            raise pickle.UnpicklingError(
                f"refused numpy.dtype({name!r:.40}): a CIFAR-10 batch holds "
                "only plain boolean, integer or float arrays"
            )
        self.dtype = np.dtype(name)
        self._state_set = False

    def __setstate__(self, state):
        # A plain type's state: (3, byte order, subarray, names, fields,
        # itemsize, alignment, flags), the middle five None/None/None/-1/-1.
        if self._state_set or not (
            isinstance(state, tuple)
            and len(state) == 8
            and _is_int(state[0], 3)
            and isinstance(state[1], str)
            and state[1] in ("<", ">", "|", "=")
            and all(value is None for value in state[2:5])
            and _is_int(state[5], -1)
            and _is_int(state[6], -1)
            and _is_int(state[7])
        ):
            raise pickle.UnpicklingError(
                f"refused a state for numpy dtype {self.dtype}: a CIFAR-10 "
                "batch only gives a plain type's byte order"
            )
        self._state_set = True
        if state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


class _PickledArray(np.ndarray):
    """An array the restricted unpickler builds from checked state only.

    The checked ``_reconstruct`` returns an empty one that carries the check
    for the state pickle's BUILD then gives it; the check runs, and NumPy
    allocates, once. Any other BUILD on it is refused.
    """

    def __setstate__(self, state):
        check = self.__dict__.pop("_check_state", None)
        if check is None:
            raise pickle.UnpicklingError(
                "refused to set the state of an array that is already built"
            )
        super().__setstate__(check(state))


def _is_int(value, expected=None):
    # bool is an int subclass, but no count or flag in a pickle is a bool.
    return type(value) is int and (expected is None or value == expected)


def _checked_shape(shape, dtype):
    """Return ``shape`` as a tuple and its size in bytes, if within bounds."""
    if not (
        isinstance(shape, (tuple, list))
        and len(shape) <= 32
        and all(_is_int(size) and size >= 0 for size in shape)
    ):
        raise pickle.UnpicklingError(
            "refused an array shape that is not a short tuple of non-negative ints"
        )
    # Refuse huge sizes before formatting or multiplying them: a pickle can
    # hold ints of any length.
    if any(size > _CIFAR10_MAX_ARRAY_BYTES for size in shape):
        raise pickle.UnpicklingError(
            f"refused an array with an axis longer than {_CIFAR10_MAX_ARRAY_BYTES}, "
            "the bytes of a full CIFAR-10 batch"
        )
    shape = tuple(shape)
    n_bytes = math.prod(shape) * dtype.itemsize
    if n_bytes > _CIFAR10_MAX_ARRAY_BYTES:
        raise pickle.UnpicklingError(
            f"refused an array of shape {shape} and dtype {dtype} "
            f"({n_bytes} bytes): a CIFAR-10 batch needs no array larger than "
            f"{_CIFAR10_MAX_ARRAY_BYTES} bytes (10,000 images)"
        )
    return shape, n_bytes


def _resolve_dtype(dtype):
    if not isinstance(dtype, _DtypeSpec):
        raise pickle.UnpicklingError(
            f"refused an array dtype given as {type(dtype).__name__}: it must "
            "come from numpy.dtype"
        )
    return dtype.dtype


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that resolves only checked stand-ins for a batch's globals.

    See the Notes of :func:`load_cifar10`. Each stand-in checks its
    arguments, and the size of what it builds, before anything is allocated;
    every other global is refused. One instance reads one file.
    """

    def __init__(self, file):
        # The batches were pickled by Python 2; latin1 maps its byte
        # strings (keys, file names, the raw array data) one to one.
        super().__init__(file, encoding="latin1")
        self._bytes_left = _CIFAR10_MAX_BATCH_BYTES
        self._ndarray = _Global("numpy.ndarray", self._call_ndarray)
        reconstruct = _Global("numpy's _reconstruct", self._reconstruct)
        frombuffer = _Global("numpy's _frombuffer", self._frombuffer)
        scalar = _Global("numpy's scalar", self._scalar)
        empty_bytes = _Global("bytes", self._empty_bytes)
        self._globals = {
            ("numpy", "ndarray"): self._ndarray,
            ("numpy", "dtype"): _Global("numpy.dtype", _DtypeSpec),
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy.core.numeric", "_frombuffer"): frombuffer,
            ("numpy._core.numeric", "_frombuffer"): frombuffer,
            ("numpy.core.multiarray", "scalar"): scalar,
            ("numpy._core.multiarray", "scalar"): scalar,
            ("_codecs", "encode"): _Global("_codecs.encode", self._encode),
            # Protocols 0-2 name builtins by their Python 2 module.
            ("__builtin__", "bytes"): empty_bytes,
            ("builtins", "bytes"): empty_bytes,
        }

    def find_class(self, module, name):
        # Hand out checked stand-ins instead of importing `module`: no import
        # side effects, and nothing NumPy allocates unchecked.
        try:
            return self._globals[(module, name)]
        except (KeyError, TypeError):
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: a CIFAR-10 batch "
                "needs only numpy's array reconstruction; the file may be "
                "malicious"
            ) from None

    def _charge(self, n_bytes, what):
        if n_bytes > self._bytes_left:
            raise pickle.UnpicklingError(
                f"refused {what}: it would bring what the file builds past "
                f"{_CIFAR10_MAX_BATCH_BYTES} bytes, more than a CIFAR-10 batch "
                "needs"
            )
        self._bytes_left -= n_bytes

    def _raw_bytes(self, raw, n_bytes):
        """``raw`` as bytes, if it holds exactly ``n_bytes``."""
        if not isinstance(raw, (bytes, bytearray, str)) or len(raw) != n_bytes:
            size = len(raw) if isinstance(raw, (bytes, bytearray, str)) else None
            raise pickle.UnpicklingError(
                f"refused raw array data of {type(raw).__name__} "
                f"(length {size}): the array needs exactly {n_bytes} bytes"
            )
        if isinstance(raw, str):
            # Python 2 pickled raw data as str, which the latin1 decoding
            # gave back as text of one character per byte.
            self._charge(n_bytes, "raw array data")
            raw = raw.encode("latin1")
        return raw

    def _call_ndarray(self, *args):
        raise pickle.UnpicklingError(
            "refused to call numpy.ndarray: a CIFAR-10 batch only names it as "
            "the type of an array to rebuild; a direct call could give an "
            "array strides or a shape that its data does not fill"
        )

    def _reconstruct(self, subtype, shape, typecode):
        if subtype is not self._ndarray:
            raise pickle.UnpicklingError(
                "refused numpy's _reconstruct of anything but numpy.ndarray"
            )
        array = _PickledArray((0,), dtype=np.uint8)
        array._check_state = self._array_state
        return array

    def _array_state(self, state):
        # NumPy's array state: (version, shape, dtype, is_fortran, raw data).
        if not (isinstance(state, tuple) and len(state) == 5 and _is_int(state[0], 1)):
            raise pickle.UnpicklingError(
                "refused an array state other than (1, shape, dtype, "
                "is_fortran, raw data)"
            )
        _, shape, dtype, is_fortran, raw = state
        dtype = _resolve_dtype(dtype)
        shape, n_bytes = _checked_shape(shape, dtype)
        if not isinstance(is_fortran, (bool, int)) or is_fortran not in (0, 1):
            raise pickle.UnpicklingError("refused an array order flag not 0 or 1")
        raw = self._raw_bytes(raw, n_bytes)
        self._charge(n_bytes, f"an array of shape {shape}")
        return (1, shape, dtype, bool(is_fortran), raw)

    def _frombuffer(self, buffer, dtype, shape, order):
        # What NumPy pickles a C- or Fortran-contiguous array as at protocol
        # 5: its raw bytes (in band, as bytearray or bytes), dtype, shape and
        # order.
        dtype = _resolve_dtype(dtype)
        shape, n_bytes = _checked_shape(shape, dtype)
        if not isinstance(order, str) or order not in ("C", "F"):
            raise pickle.UnpicklingError("refused an array order other than C or F")
        if not isinstance(buffer, (bytes, bytearray)):
            raise pickle.UnpicklingError(
                f"refused an array buffer of type {type(buffer).__name__}"
            )
        buffer = self._raw_bytes(buffer, n_bytes)
        self._charge(n_bytes, f"an array of shape {shape}")
        array = np.frombuffer(buffer, dtype=dtype, count=math.prod(shape))
        # As a _PickledArray without a check, the result refuses any BUILD.
        return array.reshape(shape, order=order).view(_PickledArray)

    def _scalar(self, dtype, raw):
        dtype = _resolve_dtype(dtype)
        if dtype.kind not in "iu":
            raise pickle.UnpicklingError(
                f"refused a numpy scalar of dtype {dtype}: a CIFAR-10 batch "
                "holds integer labels only"
            )
        raw = self._raw_bytes(raw, dtype.itemsize)
        # A Python int: nothing in the batch keeps a NumPy object from here.
        return np.frombuffer(raw, dtype=dtype)[0].item()

    def _encode(self, text, encoding):
        if not isinstance(text, str) or encoding != "latin1":
            raise pickle.UnpicklingError(
                "refused _codecs.encode other than of text to latin1 bytes"
            )
        self._charge(len(text), "bytes from _codecs.encode")
        return text.encode("latin1")

    def _empty_bytes(self, *args):
        # Python 3 pickles b"" as bytes() at protocols 0-2; with an argument
        # bytes() would allocate as much as the argument asks.
        if args:
            raise pickle.UnpicklingError("refused bytes() with arguments")
        return b""


def _read_cifar10_batch(file):
    with open(file, "rb") as stream:
        try:
            batch = _CifarUnpickler(stream).load()
        except Exception as exc:
            # Garbage input can fail in many ways inside pickle and numpy
            # (UnpicklingError, EOFError, TypeError, ...): report them all as
            # one kind of error that names the file.
            detail = str(exc)
            if isinstance(exc, MemoryError) and not detail:
                # Pickle allocates a string or frame at its declared length
                # before reading it, so a few bytes can declare too much.
                detail = "it declares an object too large to allocate"
            raise ValueError(
                f"{file} is not a valid CIFAR-10 batch: {type(exc).__name__}: {detail}"
            ) from exc
    if not isinstance(batch, dict):
        raise ValueError(
            f"{file} is not a valid CIFAR-10 batch: expected a dict, got "
            f"{type(batch).__name__}."
        )
    data = _cifar10_data(_batch_entry(batch, "data", file), file)
    labels = _cifar10_labels(_batch_entry(batch, "labels", file), len(data), file)
    # Each row is the red plane, then green, then blue, each 32x32 row-major.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _cifar10_data(data, file):
    """The batch's ``data`` entry as a uint8 ndarray of shape (n, 3072)."""
    expected = (
        f"'data' must be a uint8 array of shape (n, {_CIFAR10_IMAGE_SIZE}) or "
        f"a list of n rows of {_CIFAR10_IMAGE_SIZE} ints in 0..255, with n at "
        f"most {_CIFAR10_MAX_IMAGES}"
    )
    if isinstance(data, (list, tuple)):
        if len(data) > _CIFAR10_MAX_IMAGES:
            raise ValueError(
                f"{file} is not a valid CIFAR-10 batch: {expected}; it has "
                f"{len(data)} rows."
            )
        for i, row in enumerate(data):
            if not _is_uint8_row(row):
                raise ValueError(
                    f"{file} is not a valid CIFAR-10 batch: {expected}; row {i} is not."
                )
        data = np.array(data, dtype=np.uint8).reshape(len(data), _CIFAR10_IMAGE_SIZE)
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != _CIFAR10_IMAGE_SIZE
        or data.shape[0] > _CIFAR10_MAX_IMAGES
    ):
        raise ValueError(
            f"{file} is not a valid CIFAR-10 batch: {expected}; got "
            f"{getattr(data, 'dtype', type(data).__name__)} of shape "
            f"{getattr(data, 'shape', None)}."
        )
    return data.view(np.ndarray)


def _is_uint8_row(row):
    if isinstance(row, np.ndarray):
        return row.dtype == np.uint8 and row.shape == (_CIFAR10_IMAGE_SIZE,)
    return (
        isinstance(row, (list, tuple))
        and len(row) == _CIFAR10_IMAGE_SIZE
        and all(_is_int(value) and 0 <= value <= 255 for value in row)
    )


def _cifar10_labels(labels, n_images, file):
    """The batch's ``labels`` entry as an int64 array of ``n_images`` labels."""
    n_classes = len(CIFAR10_CLASSES)
    expected = f"'labels' must hold {n_images} integers in 0..{n_classes - 1}"
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(
                f"{file} is not a valid CIFAR-10 batch: {expected}; got a "
                f"{labels.dtype} array of shape {labels.shape}."
            )
        items = labels.tolist()
    elif isinstance(labels, (list, tuple)):
        items = labels
    else:
        raise ValueError(
            f"{file} is not a valid CIFAR-10 batch: {expected}, as a list; got "
            f"{type(labels).__name__}."
        )
    if len(items) != n_images:
        raise ValueError(
            f"{file} is not a valid CIFAR-10 batch: {expected}; it holds {len(items)}."
        )
    for i, value in enumerate(items):
        if not _is_int(value):
            # A list that holds itself or other lists would otherwise reach
            # NumPy, which fails on it without naming the file.
            what = (
                "the labels list itself"
                if value is labels
                else f"a {type(value).__name__}"
            )
            raise ValueError(
                f"{file} is not a valid CIFAR-10 batch: {expected}, as a flat "
                f"list; item {i} is {what}."
            )
        if not 0 <= value < n_classes:
            # Labels are ints of any length: show only a short one.
            shown = value if abs(value) < 10**9 else "out of range"
            raise ValueError(
                f"{file} is not a valid CIFAR-10 batch: {expected}; item {i} "
                f"is {shown}."
            )
    return np.array(items, dtype=np.int64).reshape(n_images)


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
