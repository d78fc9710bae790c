"""Data loaders against files written byte by byte in the genuine layouts, and real MNIST."""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import pickle
import struct
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tasks.data import (
    DataFileError,
    load_cifar10,
    load_cifar10_splits,
    load_digits_splits,
    load_mnist,
    load_mnist_splits,
    read_idx,
    resolve_data_dir,
    write_cifar10_bin,
    write_cifar10_py,
    write_idx,
)

SHARED_MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
RNG = np.random.default_rng(1)


def idx_bytes(array: np.ndarray, code: int = 8) -> bytes:
    """IDX built by hand (independent of write_idx): magic, dims, big-endian payload."""
    return (
        struct.pack(">HBB", 0, code, array.ndim)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.astype(array.dtype.newbyteorder(">")).tobytes()
    )


def test_resolve_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("META_OPT_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("META_OPT_DATA")
    assert resolve_data_dir() == tmp_path / "xdg" / "geodesic-meta-opt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert resolve_data_dir() == pathlib.Path.home() / ".cache" / "geodesic-meta-opt"
    assert not (tmp_path / "xdg").exists()


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_hand_assembled(tmp_path, gz):
    raw = struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 2, 3, 4) + bytes(range(24))
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    out = read_idx(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    floats = tmp_path / "f.idx"
    floats.write_bytes(struct.pack(">HBBI", 0, 0x0D, 1, 3) + struct.pack(">3f", 1.5, -2.0, 3.25))
    np.testing.assert_array_equal(read_idx(floats), np.array([1.5, -2.0, 3.25], np.float32))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.int16])
@pytest.mark.parametrize("name", ["x.idx", "x.idx.gz"])
def test_write_idx_is_genuine_and_roundtrips(tmp_path, dtype, name):
    code = {np.uint8: 0x08, np.float32: 0x0D, np.int16: 0x0B}[dtype]
    array = (RNG.normal(size=(3, 5, 2)) * 50).astype(dtype)
    write_idx(tmp_path / name, array)
    raw = (tmp_path / name).read_bytes()
    assert (gzip.decompress(raw) if name.endswith(".gz") else raw) == idx_bytes(array, code)
    assert read_idx(tmp_path / name).dtype == dtype
    np.testing.assert_array_equal(read_idx(tmp_path / name), array)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda raw: raw[:-1], "truncated"),
        (lambda raw: raw[:6], "truncated"),
        (lambda raw: b"\x01" + raw[1:], "magic"),
        (lambda raw: raw[:2] + b"\x07" + raw[3:], "type code"),
        (lambda raw: raw + b"\x00", "trailing"),
        (lambda raw: gzip.compress(raw)[:-12], "gzip"),
    ],
)
def test_read_idx_rejects_damaged_files(tmp_path, damage, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(damage(idx_bytes(np.zeros((2, 3, 3), np.uint8))))
    with pytest.raises(DataFileError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


@pytest.fixture
def fake_mnist(tmp_path) -> tuple[pathlib.Path, dict]:
    """20 train / 10 test images in <root>/mnist/, as gzipped hand-assembled IDX."""
    arrays = {}
    (tmp_path / "mnist").mkdir()
    for prefix, n in (("train", 20), ("t10k", 10)):
        images, labels = (
            RNG.integers(0, 256, (n, 28, 28), np.uint8),
            RNG.integers(0, 10, n, np.uint8),
        )
        arrays[prefix] = (images, labels)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            (tmp_path / "mnist" / f"{prefix}-{kind}-ubyte.gz").write_bytes(
                gzip.compress(idx_bytes(array))
            )
    return tmp_path, arrays


def test_load_mnist_reads_both_splits(fake_mnist):
    root, arrays = fake_mnist
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = load_mnist(split, root)
        assert images.dtype == labels.dtype == np.uint8
        np.testing.assert_array_equal(images, arrays[prefix][0])
        np.testing.assert_array_equal(labels, arrays[prefix][1])


def test_load_mnist_flat_uncompressed_folder_and_env(fake_mnist, tmp_path_factory, monkeypatch):
    root, arrays = fake_mnist
    flat = tmp_path_factory.mktemp("flat")
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (flat / name).write_bytes(gzip.decompress((root / "mnist" / f"{name}.gz").read_bytes()))
    monkeypatch.setenv("META_OPT_DATA", str(flat))
    np.testing.assert_array_equal(load_mnist("test")[0], arrays["t10k"][0])


def test_missing_mnist_file_names_the_path(fake_mnist):
    root, _ = fake_mnist
    (root / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataFileError) as error:
        load_mnist("test", root)
    assert str(root / "mnist" / "t10k-labels-idx1-ubyte.gz") in str(error.value)
    assert "meta-opt data download mnist" in str(error.value)


@pytest.mark.parametrize(
    "images, labels",
    [
        (np.zeros((10, 27, 28), np.uint8), np.zeros(10, np.uint8)),
        (np.zeros((10, 28, 28), np.uint8), np.zeros(9, np.uint8)),
        (np.zeros((10, 28, 28), np.uint8), np.full(10, 10, np.uint8)),
    ],
)
def test_malformed_mnist_names_the_file(tmp_path, images, labels):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DataFileError, match="t10k-(images|labels)-idx"):
        load_mnist("test", tmp_path)


def test_mnist_splits_full_test_only_and_auto(fake_mnist):
    root, arrays = fake_mnist
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = load_mnist_splits(root, source="auto")
    assert full.x_train.shape == (20, 28, 28) and full.x_test.shape == (10, 28, 28)
    assert full.y_train.dtype == full.y_test.dtype == np.int32 and "full" in full.description
    np.testing.assert_array_equal(full.y_train, arrays["train"][1])
    only = load_mnist_splits(root, source="test_only", test_only_train_size=6)
    order = np.random.RandomState(0).permutation(10)  # the documented fixed permutation
    np.testing.assert_array_equal(only.x_train, arrays["t10k"][0][order[:6]])
    np.testing.assert_array_equal(only.y_test, arrays["t10k"][1][order[6:]])
    assert "test_only" in only.description and "RandomState(0)" in only.description
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (root / "mnist" / name).unlink()
    with pytest.warns(UserWarning, match="test_only"):
        auto = load_mnist_splits(root, test_only_train_size=6)
    np.testing.assert_array_equal(auto.x_train, only.x_train)
    with pytest.raises(DataFileError):
        load_mnist_splits(root, source="full")


@pytest.fixture(scope="module")
def real_mnist() -> pathlib.Path:
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(
            f"real MNIST test files not found at {SHARED_MNIST} (the shared folder "
            f"beside the repository); nothing to check against."
        )
    return SHARED_MNIST


def test_real_mnist_test_set(real_mnist):
    raw = gzip.decompress((real_mnist / "t10k-images-idx3-ubyte.gz").read_bytes())
    assert len(raw) == 7_840_016 and struct.unpack(">I", raw[:4])[0] == 2051
    # sha256 of the genuine decompressed t10k images, as published in many public projects.
    assert hashlib.sha256(raw).hexdigest() == (
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    )
    images, labels = load_mnist("test", real_mnist)
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)
    assert abs(images.mean() / 255 - 0.1325) < 5e-4
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist_test_only_split_covers_every_image_once(real_mnist):
    images, labels = load_mnist("test", real_mnist)
    with pytest.warns(UserWarning, match="test_only"):
        splits = load_mnist_splits(real_mnist.parent)  # <data_dir>/mnist/ layout
    assert len(splits.x_train) == 8000 and len(splits.x_test) == 2000
    order = np.random.RandomState(0).permutation(10_000)
    assert sorted(order.tolist()) == list(range(10_000))
    np.testing.assert_array_equal(np.concatenate([splits.x_train, splits.x_test]), images[order])
    np.testing.assert_array_equal(np.concatenate([splits.y_train, splits.y_test]), labels[order])


def cifar_record(label: int, pixels: dict[tuple[int, int, int], int]) -> bytes:
    """One binary record by hand: label byte, then R, G, B planes of 32x32 row-major."""
    record = bytearray(3073)
    record[0] = label
    for (channel, row, col), value in pixels.items():
        record[1 + channel * 1024 + row * 32 + col] = value
    return bytes(record)


def test_cifar_bin_pixel_placement_and_writer(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    raw = cifar_record(3, {(0, 1, 2): 200, (1, 1, 2): 100, (2, 0, 0): 50}) + cifar_record(
        9, {(2, 31, 30): 7}
    )
    (folder / "test_batch.bin").write_bytes(raw)
    images, labels = load_cifar10("test", tmp_path, fmt="bin")
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int32 and labels.tolist() == [3, 9]
    assert images[0, 1, 2].tolist() == [200, 100, 0] and images[0, 0, 0].tolist() == [0, 0, 50]
    assert images[1, 31, 30, 2] == 7 and images.sum() == 200 + 100 + 50 + 7
    write_cifar10_bin(tmp_path / "again.bin", images, labels)
    assert (tmp_path / "again.bin").read_bytes() == raw


def py2_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled as Python 2 + numpy wrote the real files (protocol 2, str = bytes)."""

    def text(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<I", len(b)) + b

    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
        + text(b"b")
        + b"\x87R(K\x01M"
        + struct.pack("<H", len(data))
        + b"M\x00\x0c\x86cnumpy\ndtype\n"
        + text(b"u1")
        + b"K\x00K\x01\x87R(K\x03"
        + text(b"|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
        + text(data.tobytes())
        + b"tb"
    )
    listing = b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return b"\x80\x02}(" + text(b"data") + array + text(b"labels") + listing + b"u."


def test_cifar_py_batches_in_cifar10_subfolder(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = [
        (RNG.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), RNG.integers(0, 10, 4))
        for _ in range(6)
    ]
    for i, (x, y) in enumerate(batches[:5]):
        write_cifar10_py(folder / f"data_batch_{i + 1}", x, y)
    x, y = batches[5]
    rows = x.transpose(0, 3, 1, 2).reshape(4, 3072)  # the documented R, G, B plane order
    (folder / "test_batch").write_bytes(py2_pickle(rows, y.tolist()))
    images, labels = load_cifar10("test", tmp_path)
    assert np.array_equal(images, x) and np.array_equal(labels, y)
    np.testing.assert_array_equal(
        load_cifar10("train", tmp_path, fmt="py", max_batches=2)[0],
        np.concatenate([batches[0][0], batches[1][0]]),
    )
    splits = load_cifar10_splits(tmp_path)
    assert splits.x_train.shape == (20, 32, 32, 3) and "py" in splits.description
    np.testing.assert_array_equal(splits.y_train, np.concatenate([b[1] for b in batches[:5]]))


class _Shell:
    """Pickles as a call to os.system; only ever pickled here, never unpickled by pickle."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("payload", ["shell", "nested_shell", "object_array"])
def test_malicious_pickle_is_refused_without_side_effect(tmp_path, payload):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "pwned"
    evil = {
        "shell": _Shell(marker),
        "nested_shell": {b"data": [_Shell(marker)], b"labels": [0]},
        "object_array": {b"data": np.array([1, "x"], dtype=object), b"labels": [0]},
    }[payload]
    (folder / "test_batch").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(DataFileError) as error:
        load_cifar10("test", tmp_path, fmt="py")
    assert str(folder / "test_batch") in str(error.value)
    assert not marker.exists()


def test_cifar_bad_bin_length_labels_and_missing(tmp_path, tiny_data_dir):
    folder = tmp_path / "cifar-10-batches-bin"
    with pytest.raises(DataFileError, match="meta-opt data download cifar10"):
        load_cifar10("test", tmp_path)
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(cifar_record(1, {}) * 2 + b"\x00" * 5)
    with pytest.raises(DataFileError, match="test_batch.bin"):
        load_cifar10("test", tmp_path)
    (folder / "test_batch.bin").write_bytes(cifar_record(10, {}))
    with pytest.raises(DataFileError, match="0..9"):
        load_cifar10("test", tmp_path)
    with pytest.raises(DataFileError, match="data_batch_1.bin"):
        load_cifar10("train", tmp_path, fmt="bin")
    splits = load_cifar10_splits(tiny_data_dir)
    assert splits.x_train.shape == (60, 32, 32, 3) and splits.x_test.shape == (12, 32, 32, 3)


def test_digits_split():
    splits = load_digits_splits()
    assert splits.x_train.shape == (1437, 64) and splits.x_test.shape == (360, 64)
    assert splits.x_train.dtype == np.float32 and splits.y_train.dtype == np.int32
    both = np.concatenate([splits.x_train, splits.x_test])
    assert both.min() == 0.0 and both.max() == 1.0
    np.testing.assert_allclose(np.sort((both * 16).sum(1)), np.sort(load_digits().data.sum(1)))
    again = load_digits_splits()  # deterministic
    assert np.array_equal(again.x_train, splits.x_train) and np.array_equal(
        again.y_test, splits.y_test
    )
    train_counts, test_counts = np.bincount(splits.y_train), np.bincount(splits.y_test)
    assert len(train_counts) == len(test_counts) == 10 and test_counts.min() > 0
    np.testing.assert_allclose(test_counts / (train_counts + test_counts), 0.2, atol=0.02)
