"""Tests for the dataset loaders in sklearn_ispl.datasets."""

import gzip
import os
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sklearn_ispl.datasets import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    load_cifar10,
    load_digits_images,
    load_fashion_mnist,
)

REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def test_class_names():
    assert (
        len(FASHION_MNIST_CLASSES) == 10 and FASHION_MNIST_CLASSES[0] == "T-shirt/top"
    )
    assert len(CIFAR10_CLASSES) == 10 and CIFAR10_CLASSES[9] == "truck"


def test_load_digits_images():
    X, y = load_digits_images()
    assert X.shape == (1797, 8, 8) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16
    reference = load_digits()
    np.testing.assert_array_equal(X.reshape(1797, 64), reference.data)
    np.testing.assert_array_equal(y, reference.target)
    # The caller owns the result: writing to it must not leak into a reload.
    X[0] = -1
    assert load_digits_images()[0].min() == 0


# ---------------------------------------------------------------------------
# Fashion-MNIST


def _idx_bytes(array, type_code=0x08, dims=None):
    """Encode ``array`` as an IDX file; ``dims`` overrides the header."""
    dims = array.shape if dims is None else dims
    header = bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_fashion(folder, subset="train", n=7, height=28, width=28, gz=True, seed=0):
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, size=(n, height, width)).astype(np.uint8)
    labels = rng.randint(0, 10, size=n).astype(np.uint8)
    prefix = "train" if subset == "train" else "t10k"
    for name, array in [
        (f"{prefix}-images-idx3-ubyte", images),
        (f"{prefix}-labels-idx1-ubyte", labels),
    ]:
        data = _idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


class TestFashionMnist:
    @pytest.mark.parametrize("gz", [True, False])
    @pytest.mark.parametrize("subset", ["train", "test"])
    def test_round_trip(self, tmp_path, gz, subset):
        images, labels = _write_fashion(tmp_path, subset=subset, gz=gz)
        X, y = load_fashion_mnist(path=tmp_path, subset=subset)
        assert X.dtype == np.uint8 and X.shape == (7, 28, 28)
        assert y.dtype == np.int64
        np.testing.assert_array_equal(X, images)
        np.testing.assert_array_equal(y, labels)
        assert X.flags.writeable and X.flags.c_contiguous

    def test_path_as_string_and_other_image_sizes(self, tmp_path):
        images, _ = _write_fashion(tmp_path, n=3, height=5, width=4)
        X, _ = load_fashion_mnist(path=str(tmp_path))
        np.testing.assert_array_equal(X, images)

    def test_gz_preferred_over_raw(self, tmp_path):
        images, _ = _write_fashion(tmp_path, gz=True, seed=0)
        _write_fashion(tmp_path, gz=False, seed=1)
        np.testing.assert_array_equal(load_fashion_mnist(tmp_path)[0], images)

    def test_missing_files(self, tmp_path):
        with pytest.raises(
            FileNotFoundError, match="apt-get install dataset-fashion-mnist"
        ):
            load_fashion_mnist(path=tmp_path)
        with pytest.raises(FileNotFoundError, match="path="):
            load_fashion_mnist(path=tmp_path / "nowhere")

    def test_missing_labels_only(self, tmp_path):
        _write_fashion(tmp_path)
        (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
        with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
            load_fashion_mnist(path=tmp_path)

    def test_bad_subset(self, tmp_path):
        with pytest.raises(ValueError, match="subset must be one of"):
            load_fashion_mnist(path=tmp_path, subset="validation")

    @pytest.mark.parametrize(
        ("corrupt", "match"),
        [
            (lambda data: b"\x01" + data[1:], "not an IDX file"),
            (lambda data: data[:2], "not an IDX file"),
            (lambda data: data[:2] + b"\x07" + data[3:], "unknown IDX type code 0x07"),
            (lambda data: data[:3] + b"\x00", "0 dimensions"),
            (lambda data: data[:10], "truncated"),
            (lambda data: data[:-1], "corrupt"),
            (lambda data: data + b"\x00", "corrupt"),
        ],
    )
    def test_corrupt_header_or_data(self, tmp_path, corrupt, match):
        _write_fashion(tmp_path, gz=False)
        file = tmp_path / "train-images-idx3-ubyte"
        file.write_bytes(corrupt(file.read_bytes()))
        with pytest.raises(ValueError, match=match):
            load_fashion_mnist(path=tmp_path)

    def test_corrupt_gzip(self, tmp_path):
        _write_fashion(tmp_path)
        file = tmp_path / "train-images-idx3-ubyte.gz"
        file.write_bytes(file.read_bytes()[:40])
        with pytest.raises(ValueError, match="corrupt gzip"):
            load_fashion_mnist(path=tmp_path)

    def test_wrong_kind_of_file(self, tmp_path):
        _write_fashion(tmp_path, gz=False)
        # Labels where images belong: valid IDX, wrong dimensions.
        labels = (tmp_path / "train-labels-idx1-ubyte").read_bytes()
        (tmp_path / "train-images-idx3-ubyte").write_bytes(labels)
        with pytest.raises(ValueError, match="3 dimensions"):
            load_fashion_mnist(path=tmp_path)

    def test_wrong_dtype(self, tmp_path):
        _write_fashion(tmp_path, gz=False)
        floats = np.zeros((7, 28, 28), dtype=np.float32)
        (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(floats, 0x0D))
        with pytest.raises(ValueError, match="unsigned bytes"):
            load_fashion_mnist(path=tmp_path)

    def test_count_mismatch(self, tmp_path):
        _write_fashion(tmp_path, gz=False)
        labels = np.zeros(6, dtype=np.uint8)
        (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
        with pytest.raises(ValueError, match="7 images but .* 6 labels"):
            load_fashion_mnist(path=tmp_path)

    def test_label_out_of_range(self, tmp_path):
        _write_fashion(tmp_path, gz=False)
        labels = np.full(7, 10, dtype=np.uint8)
        (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
        with pytest.raises(ValueError, match="label 10"):
            load_fashion_mnist(path=tmp_path)

    @pytest.mark.skipif(
        not (REAL_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
        reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
    )
    def test_real_files(self):
        X, y = load_fashion_mnist(subset="test")
        assert X.shape == (10000, 28, 28) and X.dtype == np.uint8
        assert np.array_equal(np.bincount(y), np.full(10, 1000))
        assert X.max() == 255 and X.min() == 0


# ---------------------------------------------------------------------------
# CIFAR-10


class _Python2Pickler(pickle._Pickler):
    """Pickle bytes as Python 2 ``str`` opcodes, as the real batches have.

    Python 3 pickles bytes at protocols 0-2 through a ``_codecs.encode``
    call; Python 2, which wrote the CIFAR-10 batches, used STRING /
    BINSTRING opcodes that need no global.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj):
        if self.proto == 0:
            self.write(pickle.STRING + repr(obj)[1:].encode("ascii") + b"\n")
        elif len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str


def _python2_pickle(obj, protocol=2, reconstruct_module=b"numpy.core.multiarray"):
    import io

    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=protocol).dump(obj)
    # NumPy 2 names its reconstruct function numpy._core.multiarray; the real
    # batches, written with NumPy 1, name it numpy.core.multiarray.
    return buffer.getvalue().replace(
        b"numpy._core.multiarray\n_reconstruct", reconstruct_module + b"\n_reconstruct"
    )


def _cifar_batch(n, seed, label="training batch"):
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, size=(n, 32, 32, 3)).astype(np.uint8)
    labels = rng.randint(0, 10, size=n)
    # The real layout: each row is the red plane, then green, then blue.
    data = images.transpose(0, 3, 1, 2).reshape(n, 3072)
    batch = {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }
    return batch, images, labels


def _write_cifar(folder, protocol=2, **kwargs):
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for seed, name in enumerate(
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    ):
        batch, images, labels = _cifar_batch(n=3 + seed, seed=seed)
        (folder / name).write_bytes(_python2_pickle(batch, protocol, **kwargs))
        expected[name] = (images, labels)
    return expected


class _RunsShell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class TestCifar10:
    @pytest.mark.parametrize("protocol", [0, 2])
    def test_round_trip_python2_batches(self, tmp_path, protocol):
        expected = _write_cifar(tmp_path, protocol=protocol)
        X, y = load_cifar10(tmp_path)
        names = [f"data_batch_{i}" for i in range(1, 6)]
        assert X.shape == (3 + 4 + 5 + 6 + 7, 32, 32, 3) and X.dtype == np.uint8
        assert y.dtype == np.int64
        np.testing.assert_array_equal(
            X, np.concatenate([expected[n][0] for n in names])
        )
        np.testing.assert_array_equal(
            y, np.concatenate([expected[n][1] for n in names])
        )
        X_test, y_test = load_cifar10(tmp_path, subset="test")
        np.testing.assert_array_equal(X_test, expected["test_batch"][0])
        np.testing.assert_array_equal(y_test, expected["test_batch"][1])
        assert X_test.flags.writeable and X_test.flags.c_contiguous

    def test_real_format_uses_only_the_allowed_globals(self, tmp_path):
        import pickletools

        _write_cifar(tmp_path)
        opcodes = pickletools.genops((tmp_path / "test_batch").read_bytes())
        globals_used = {arg for op, arg, _ in opcodes if op.name == "GLOBAL"}
        assert globals_used == {
            "numpy.core.multiarray _reconstruct",
            "numpy ndarray",
            "numpy dtype",
        }

    def test_numpy2_module_name(self, tmp_path):
        expected = _write_cifar(tmp_path, reconstruct_module=b"numpy._core.multiarray")
        X, _ = load_cifar10(tmp_path, subset="test")
        np.testing.assert_array_equal(X, expected["test_batch"][0])

    def test_python3_pickle_with_str_keys(self, tmp_path):
        batch, images, labels = _cifar_batch(4, seed=0)
        batch = {key.decode(): value for key, value in batch.items()}
        (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=4))
        X, y = load_cifar10(tmp_path, subset="test")
        np.testing.assert_array_equal(X, images)
        np.testing.assert_array_equal(y, labels)

    def test_parent_of_extracted_folder(self, tmp_path):
        expected = _write_cifar(tmp_path / "cifar-10-batches-py")
        X, _ = load_cifar10(tmp_path, subset="test")
        np.testing.assert_array_equal(X, expected["test_batch"][0])

    def test_malicious_pickle_runs_nothing(self, tmp_path):
        marker = tmp_path / "pwned"
        batch = {"data": _RunsShell(f"touch {marker}"), "labels": [0]}
        for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
            (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol))
            with pytest.raises(
                ValueError, match=r"refused to load global (posix|nt)\.system"
            ):
                load_cifar10(tmp_path, subset="test")
        assert not marker.exists()
        # The payload does work when unpickled without restrictions.
        pickle.loads((tmp_path / "test_batch").read_bytes())
        assert marker.exists()

    @pytest.mark.parametrize(
        "payload",
        [
            (eval, ("1",)),
            (pickle.loads, (b"",)),
            (np.load, ("x",)),
        ],
    )
    def test_other_globals_refused(self, tmp_path, payload):
        class Payload:
            def __reduce__(self):
                return payload

        (tmp_path / "test_batch").write_bytes(pickle.dumps({"data": Payload()}))
        with pytest.raises(ValueError, match="refused to load global"):
            load_cifar10(tmp_path, subset="test")

    def test_missing_batches(self, tmp_path):
        _write_cifar(tmp_path)
        (tmp_path / "data_batch_3").unlink()
        with pytest.raises(FileNotFoundError, match="data_batch_3"):
            load_cifar10(tmp_path)
        load_cifar10(tmp_path, subset="test")  # the test batch is still there
        with pytest.raises(FileNotFoundError, match="path="):
            load_cifar10(tmp_path / "nowhere", subset="test")

    def test_bad_subset(self, tmp_path):
        with pytest.raises(ValueError, match="subset must be one of"):
            load_cifar10(tmp_path, subset="all")

    @pytest.mark.parametrize(
        ("content", "match"),
        [
            (b"not a pickle at all", "not a valid CIFAR-10 batch"),
            (b"", "not a valid CIFAR-10 batch"),
            (pickle.dumps([1, 2, 3]), "expected a dict"),
            (pickle.dumps({"labels": [0]}), "no 'data' entry"),
            (pickle.dumps({"data": np.zeros((1, 3072), np.uint8)}), "no 'labels'"),
            (
                pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}),
                "'data' must be a uint8 array",
            ),
            (
                pickle.dumps({"data": np.zeros((2, 3072)), "labels": [0, 1]}),
                "'data' must be a uint8 array",
            ),
            (
                pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}),
                "'labels' must hold 2 integers",
            ),
            (
                pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [10]}),
                "'labels' must hold 1 integers",
            ),
        ],
        ids=[
            "garbage",
            "empty",
            "list",
            "no-data",
            "no-labels",
            "wrong-width",
            "float-data",
            "label-count",
            "label-range",
        ],
    )
    def test_invalid_batches(self, tmp_path, content, match):
        (tmp_path / "test_batch").write_bytes(content)
        with pytest.raises(ValueError, match=match):
            load_cifar10(tmp_path, subset="test")


try:
    from numpy._core.multiarray import _reconstruct as _numpy_reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct as _numpy_reconstruct


def _dump(batch, protocol=pickle.DEFAULT_PROTOCOL, **kwargs):
    import io

    buffer = io.BytesIO()
    pickle.dump(batch, buffer, protocol=protocol, **kwargs)
    return buffer.getvalue()


class _Strided:
    """Pickles as a direct ``numpy.ndarray`` call: a view with given strides."""

    def __init__(self, shape, dtype, buffer, strides):
        self.args = (shape, np.dtype(dtype), buffer, 0, strides)

    def __reduce__(self):
        return (np.ndarray, self.args)


class _SharedRawArray:
    """Pickles like an ndarray whose raw bytes object other arrays share.

    Pickle stores a bytes object once and refers back to it, so a small file
    can rebuild many arrays from one raw buffer.
    """

    def __init__(self, raw, shape):
        self.raw, self.shape = raw, shape

    def __reduce__(self):
        state = (1, self.shape, np.dtype(np.uint8), False, self.raw)
        return (_numpy_reconstruct, (np.ndarray, (0,), b"b"), state)


def _test_batch_path(tmp_path):
    return re.escape(str(tmp_path / "test_batch"))


class TestCifar10Protocols:
    @pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
    @pytest.mark.parametrize("key_type", [str, bytes])
    def test_python3_batches_of_every_protocol(self, tmp_path, protocol, key_type):
        expected = {}
        for seed, name in enumerate(["test_batch", "data_batch_1"]):
            batch, images, labels = _cifar_batch(5, seed=seed)
            batch = {
                key if key_type is bytes else key.decode(): value
                for key, value in batch.items()
            }
            (tmp_path / name).write_bytes(_dump(batch, protocol))
            expected[name] = images, labels
        X, y = load_cifar10(tmp_path, subset="test")
        np.testing.assert_array_equal(X, expected["test_batch"][0])
        np.testing.assert_array_equal(y, expected["test_batch"][1])
        assert X.dtype == np.uint8 and y.dtype == np.int64
        assert X.flags.writeable and X.flags.c_contiguous

    @pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
    @pytest.mark.parametrize(
        "as_labels",
        [
            np.asarray,
            lambda labels: labels.astype(">i4"),
            lambda labels: labels.astype(np.uint8),
            list,  # a list of NumPy integer scalars
        ],
        ids=["int64-array", "big-endian-array", "uint8-array", "numpy-scalars"],
    )
    def test_labels_as_numpy_integers(self, tmp_path, protocol, as_labels):
        batch, images, labels = _cifar_batch(5, seed=1)
        batch[b"labels"] = as_labels(np.asarray(labels))
        (tmp_path / "test_batch").write_bytes(_dump(batch, protocol))
        X, y = load_cifar10(tmp_path, subset="test")
        np.testing.assert_array_equal(X, images)
        np.testing.assert_array_equal(y, labels)
        assert y.dtype == np.int64

    @pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
    def test_fortran_ordered_and_list_data(self, tmp_path, protocol):
        batch, images, labels = _cifar_batch(4, seed=2)
        for data in (np.asfortranarray(batch[b"data"]), batch[b"data"].tolist()):
            batch[b"data"] = data
            (tmp_path / "test_batch").write_bytes(_dump(batch, protocol))
            X, y = load_cifar10(tmp_path, subset="test")
            np.testing.assert_array_equal(X, images)
            np.testing.assert_array_equal(y, labels)

    @pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
    def test_batch_of_zero_images(self, tmp_path, protocol):
        expected = _write_cifar(tmp_path)
        empty = {"data": np.zeros((0, _IMAGE_SIZE), np.uint8), "labels": []}
        (tmp_path / "test_batch").write_bytes(_dump(empty, protocol))
        (tmp_path / "data_batch_2").write_bytes(_dump(empty, protocol))
        X, y = load_cifar10(tmp_path, subset="test")
        assert X.shape == (0, 32, 32, 3) and X.dtype == np.uint8
        assert y.shape == (0,) and y.dtype == np.int64
        X, y = load_cifar10(tmp_path)
        names = ["data_batch_1", "data_batch_3", "data_batch_4", "data_batch_5"]
        np.testing.assert_array_equal(
            X, np.concatenate([expected[name][0] for name in names])
        )
        np.testing.assert_array_equal(
            y, np.concatenate([expected[name][1] for name in names])
        )

    def test_out_of_band_buffers_are_refused(self, tmp_path):
        batch, _, _ = _cifar_batch(2, seed=0)
        # The buffers stay with the writer: the file does not hold the data.
        content = _dump(batch, 5, buffer_callback=lambda buffer: False)
        (tmp_path / "test_batch").write_bytes(content)
        with pytest.raises(ValueError, match=_test_batch_path(tmp_path)):
            load_cifar10(tmp_path, subset="test")


_IMAGE_SIZE = 32 * 32 * 3


class TestCifar10Bounds:
    """A small batch file must not make the loader allocate without bound."""

    @pytest.mark.parametrize("protocol", [2, 4, 5])
    @pytest.mark.parametrize("n_images", [5, 20_000, 2**30])
    def test_zero_strides_are_refused(self, tmp_path, protocol, n_images):
        # Every image a view of the same single byte: a ~200-byte file that
        # the loader would copy out into n_images * 3072 bytes.
        batch = {
            "data": _Strided((n_images, _IMAGE_SIZE), np.uint8, b"x", (0, 0)),
            "labels": _Strided((n_images,), np.int64, bytes(8), (0,)),
        }
        content = _dump(batch, protocol)
        assert len(content) < 300
        (tmp_path / "test_batch").write_bytes(content)
        with pytest.raises(ValueError, match=_test_batch_path(tmp_path)) as info:
            load_cifar10(tmp_path, subset="test")
        assert "refused to call numpy.ndarray" in str(info.value)

    def test_negative_strides_are_refused(self, tmp_path):
        data = _Strided((2, _IMAGE_SIZE), np.uint8, bytes(2 * _IMAGE_SIZE), (1, -1))
        content = _dump({"data": data, "labels": [0, 1]})
        (tmp_path / "test_batch").write_bytes(content)
        with pytest.raises(ValueError, match="refused to call numpy.ndarray"):
            load_cifar10(tmp_path, subset="test")

    @pytest.mark.parametrize("protocol", [2, 4, 5])
    def test_array_larger_than_a_batch_is_refused(self, tmp_path, protocol):
        images = np.zeros((10_001, _IMAGE_SIZE), np.uint8)
        content = _dump({"data": images, "labels": [0] * 10_001}, protocol)
        (tmp_path / "test_batch").write_bytes(content)
        with pytest.raises(ValueError, match=_test_batch_path(tmp_path)) as info:
            load_cifar10(tmp_path, subset="test")
        assert "refused an array of shape (10001, 3072)" in str(info.value)

    def test_declared_sizes_are_checked_before_allocating(self, tmp_path):
        # A raw-data length that does not match the declared shape, and a
        # shape of 2**40 images backed by 3072 bytes.
        raw = bytes(_IMAGE_SIZE)
        for shape, match in [
            ((2, _IMAGE_SIZE), "needs exactly 6144 bytes"),
            ((2**40, _IMAGE_SIZE), "refused an array with an axis longer"),
            ((10**30, 0), "refused an array with an axis longer"),
        ]:
            batch = {"data": _SharedRawArray(raw, shape), "labels": [0]}
            (tmp_path / "test_batch").write_bytes(_dump(batch))
            with pytest.raises(ValueError, match=match):
                load_cifar10(tmp_path, subset="test")

    def test_one_raw_buffer_rebuilt_many_times_is_refused(self, tmp_path):
        # Each array is within bounds, but the file refers to one full
        # batch's raw bytes three times; in all it would build three arrays.
        raw = bytes(10_000 * _IMAGE_SIZE)
        batch = {
            "data": np.zeros((1, _IMAGE_SIZE), np.uint8),
            "labels": [0],
            "extra": [_SharedRawArray(raw, (10_000, _IMAGE_SIZE)) for _ in range(3)],
        }
        content = _dump(batch)
        assert len(content) < 1.01 * len(raw)
        (tmp_path / "test_batch").write_bytes(content)
        with pytest.raises(ValueError, match=_test_batch_path(tmp_path)) as info:
            load_cifar10(tmp_path, subset="test")
        assert "more than a CIFAR-10 batch needs" in str(info.value)

    @pytest.mark.parametrize("protocol", [0, 2, 5])
    def test_full_size_batch_is_within_bounds(self, tmp_path, protocol):
        # The most a valid batch asks for: 10,000 images, labels as an int64
        # array, and file names as bytes, which Python 3 pickles through
        # _codecs.encode at protocols 0 to 2.
        rng = np.random.RandomState(0)
        data = rng.randint(0, 256, size=(10_000, _IMAGE_SIZE)).astype(np.uint8)
        labels = rng.randint(0, 10, size=10_000).astype(np.int64)
        batch = {
            b"batch_label": b"testing batch 1 of 1",
            b"data": data,
            b"labels": labels,
            b"filenames": [f"image_file_{i:05d}.png".encode() for i in range(10_000)],
        }
        (tmp_path / "test_batch").write_bytes(_dump(batch, protocol))
        X, y = load_cifar10(tmp_path, subset="test")
        assert X.shape == (10_000, 32, 32, 3)
        np.testing.assert_array_equal(X[7].transpose(2, 0, 1).ravel(), data[7])
        np.testing.assert_array_equal(y, labels)

    def test_huge_declared_length(self, tmp_path):
        # BINBYTES8 declaring 2**62 bytes, followed by three.
        content = b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"abc"
        (tmp_path / "test_batch").write_bytes(content)
        with pytest.raises(ValueError, match=_test_batch_path(tmp_path)):
            load_cifar10(tmp_path, subset="test")

    @pytest.mark.parametrize(
        "dtype", [object, "u1,u1", "datetime64[s]", "S4", "complex128"]
    )
    def test_other_dtypes_are_refused(self, tmp_path, dtype):
        data = np.zeros((2, _IMAGE_SIZE), dtype=dtype)
        (tmp_path / "test_batch").write_bytes(_dump({"data": data, "labels": [0, 1]}))
        with pytest.raises(ValueError, match=r"refused numpy\.dtype"):
            load_cifar10(tmp_path, subset="test")

    @pytest.mark.parametrize(
        "content",
        [
            # BUILD with a state for the numpy.dtype global itself.
            b"\x80\x02cnumpy\ndtype\n}X\x01\x00\x00\x00xK\x01sb.",
            # BUILD with a slot state that would set its __defaults__.
            b"\x80\x02cnumpy\ndtype\nN}X\x0c\x00\x00\x00__defaults__)s\x86b.",
        ],
    )
    def test_globals_cannot_be_changed(self, tmp_path, content):
        (tmp_path / "test_batch").write_bytes(content)
        with pytest.raises(ValueError, match="refused to set the state"):
            load_cifar10(tmp_path, subset="test")

    def test_tampered_dtype_state_is_refused(self, tmp_path):
        content = pickle.dumps({"data": np.zeros((1, _IMAGE_SIZE), np.uint8)}, 2)
        # The itemsize field of the dtype's state, -1 for a plain type.
        content = content.replace(b"NNNJ\xff\xff\xff\xff", b"NNNJ\x00\x00\x00\x01", 1)
        (tmp_path / "test_batch").write_bytes(content)
        with pytest.raises(ValueError, match="refused a state for numpy dtype"):
            load_cifar10(tmp_path, subset="test")

    def test_float_scalars_are_refused(self, tmp_path):
        batch = {
            "data": np.zeros((1, _IMAGE_SIZE), np.uint8),
            "labels": [np.float64(1)],
        }
        (tmp_path / "test_batch").write_bytes(_dump(batch))
        with pytest.raises(ValueError, match="refused a numpy scalar of dtype float64"):
            load_cifar10(tmp_path, subset="test")


def _self_referential_list():
    labels = [0]
    labels.append(labels)
    return labels


class TestCifar10Labels:
    @pytest.mark.parametrize(
        ("labels", "match"),
        [
            ([1, [2, 3]], "flat list; item 1 is a list"),
            ([[1], [2]], "flat list; item 0 is a list"),
            (_self_referential_list(), "item 1 is the labels list itself"),
            ([True, 1], "item 0 is a bool"),
            ([1.0, 2.0], "item 0 is a float"),
            ([1, 2**80], "item 1 is out of range"),
            ([1, -1], "item 1 is -1"),
            ({"a": 1}, "as a list; got dict"),
            ("ab", "as a list; got str"),
            (np.array([0.5, 1.0]), "got a float64 array of shape"),
            (np.zeros((2, 1), np.int64), r"got a int64 array of shape \(2, 1\)"),
        ],
        ids=[
            "ragged",
            "nested",
            "self-referential",
            "bool",
            "float",
            "huge",
            "negative",
            "dict",
            "str",
            "float-array",
            "2-D-array",
        ],
    )
    def test_bad_labels_name_the_file(self, tmp_path, labels, match):
        batch = {"data": np.zeros((2, _IMAGE_SIZE), np.uint8), "labels": labels}
        (tmp_path / "test_batch").write_bytes(_dump(batch))
        with pytest.raises(ValueError, match=_test_batch_path(tmp_path)) as info:
            load_cifar10(tmp_path, subset="test")
        assert re.search(match, str(info.value))
        assert "'labels' must hold 2 integers in 0..9" in str(info.value)

    @pytest.mark.parametrize(
        ("data", "match"),
        [
            ([[0] * _IMAGE_SIZE, [0] * 5], "row 1 is not"),
            ([[256] * _IMAGE_SIZE, [0] * _IMAGE_SIZE], "row 0 is not"),
            ([[0] * _IMAGE_SIZE, "x" * _IMAGE_SIZE], "row 1 is not"),
        ],
    )
    def test_bad_list_data_names_the_file(self, tmp_path, data, match):
        (tmp_path / "test_batch").write_bytes(_dump({"data": data, "labels": [0, 1]}))
        with pytest.raises(ValueError, match=_test_batch_path(tmp_path)) as info:
            load_cifar10(tmp_path, subset="test")
        assert match in str(info.value)
