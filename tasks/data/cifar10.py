"""CIFAR-10 from either official distribution: binary (`*.bin`) or python (pickled) batches.

Both store an image as 3,072 bytes: the red 32x32 plane, then green, then blue,
each row-major. The loaders return HWC uint8 images and int32 labels.
"""

from __future__ import annotations

import os
import pathlib
import pickle

import numpy as np

from tasks.base import LabeledSplits
from tasks.data.paths import DataFileError, resolve_data_dir
from tasks.data.safe_pickle import RestrictedUnpickler

BIN_DIR, PY_DIR = "cifar-10-batches-bin", "cifar-10-batches-py"
NUM_TRAIN_BATCHES = 5
RECORD_BYTES = 1 + 3 * 32 * 32
FORMATS = ("auto", "bin", "py")
_HINT = (
    "To obtain it, run `meta-opt data download cifar10 --data-dir {root}`, or extract "
    "cifar-10-binary.tar.gz or cifar-10-python.tar.gz from "
    "https://www.cs.toronto.edu/~kriz/cifar.html into that folder, or set META_OPT_DATA."
)


def batch_names(split: str, fmt: str, max_batches: int | None = None) -> list[str]:
    """Returns the batch file names of `split` ("train"/"test") in format "bin" or "py"."""
    if split == "test":
        stems = ["test_batch"]
    else:
        stems = [f"data_batch_{i}" for i in range(1, (max_batches or NUM_TRAIN_BATCHES) + 1)]
    return [s + ".bin" if fmt == "bin" else s for s in stems]


def _chw_to_hwc(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def read_bin_batch(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads one binary batch: records of a label byte and 3,072 pixel bytes."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD_BYTES:
        raise DataFileError(
            f"{path} has {raw.size} bytes, not a positive multiple of the "
            f"{RECORD_BYTES}-byte CIFAR-10 record; it is truncated or not a "
            f"CIFAR-10 batch. Delete it and extract the archive again."
        )
    records = raw.reshape(-1, RECORD_BYTES)
    return _chw_to_hwc(records[:, 1:]), records[:, 0].astype(np.int32)


def read_py_batch(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads one python batch through `RestrictedUnpickler` (never plain pickle)."""
    try:
        with open(path, "rb") as f:
            batch = RestrictedUnpickler(f, encoding="bytes", source=path).load()
    except DataFileError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
        OverflowError,
        MemoryError,
    ) as error:
        raise DataFileError(
            f"{path} is not a readable CIFAR-10 python batch ({error}). "
            f"Delete it and extract the archive again."
        ) from error
    if not isinstance(batch, dict):
        raise DataFileError(f"{path} holds a {type(batch).__name__}, not a batch dict.")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DataFileError(f"{path} lacks the 'data' or 'labels' entry of a CIFAR-10 batch.")
    data = batch["data"]
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
    ):
        raise DataFileError(f"{path}: 'data' must be a uint8 array [N, 3072].")
    try:
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (TypeError, ValueError) as error:
        raise DataFileError(f"{path}: 'labels' is not a list of integers.") from error
    if labels.shape != (len(data),):
        raise DataFileError(f"{path} has {labels.size} labels for {len(data)} images.")
    return _chw_to_hwc(data), labels.astype(np.int32)


def find_batches(
    split: str, root: pathlib.Path, fmt: str = "auto", max_batches: int | None = None
) -> tuple[str, list[pathlib.Path]]:
    """Returns `(format, batch paths)` of `split` under `root` or `root/cifar10`.

    "auto" prefers the binary distribution when both are complete.

    Raises:
      DataFileError: no complete set, naming the files looked for.
    """
    looked: list[str] = []
    for form in ("bin", "py") if fmt == "auto" else (fmt,):
        for base in (root, root / "cifar10"):
            folder = base / (BIN_DIR if form == "bin" else PY_DIR)
            paths = [folder / name for name in batch_names(split, form, max_batches)]
            missing = [str(p) for p in paths if not p.is_file()]
            if not missing:
                return form, paths
            looked.append(", ".join(missing) if folder.is_dir() else f"{folder}/")
    raise DataFileError(
        f"CIFAR-10 {split} files not found; missing {'; '.join(looked)}. " + _HINT.format(root=root)
    )


def load_cifar10(
    split: str,
    data_dir: str | os.PathLike | None = None,
    fmt: str = "auto",
    max_batches: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reads one CIFAR-10 split.

    Args:
      split: "train" (data_batch_1..5, 50,000 images) or "test" (test_batch).
      data_dir: data folder; None resolves it with `resolve_data_dir`.
      fmt: "bin", "py", or "auto" (whichever distribution is complete, bin first).
      max_batches: read only the first this many training batches (1..5), for
        quick runs; ignored for "test".

    Returns:
      `(images, labels)`: uint8 [N, 32, 32, 3] (HWC, RGB) and int32 [N] in 0..9.

    Raises:
      DataFileError: files missing or malformed, naming the file and the remedy.
      ValueError: bad `split`, `fmt` or `max_batches`.
    """
    if split not in ("train", "test"):
        raise ValueError(f"CIFAR-10 split must be 'train' or 'test', got {split!r}.")
    if fmt not in FORMATS:
        raise ValueError(f"CIFAR-10 fmt must be one of {FORMATS}, got {fmt!r}.")
    if max_batches is not None and not 1 <= max_batches <= NUM_TRAIN_BATCHES:
        raise ValueError(f"max_batches must be in 1..{NUM_TRAIN_BATCHES}, got {max_batches}.")
    form, paths = find_batches(split, resolve_data_dir(data_dir), fmt, max_batches)
    reader = read_bin_batch if form == "bin" else read_py_batch
    images, labels = [], []
    for path in paths:
        x, y = reader(path)
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DataFileError(f"{path} has labels outside 0..9; it is not a CIFAR-10 batch.")
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def load_cifar10_splits(
    data_dir: str | os.PathLike | None = None, fmt: str = "auto"
) -> LabeledSplits:
    """Loads the standard CIFAR-10 split (all five training batches / test batch).

    Returns:
      LabeledSplits of uint8 [N, 32, 32, 3] images and int32 labels; the
      description names the distribution and folder read.
    """
    root = resolve_data_dir(data_dir)
    x_train, y_train = load_cifar10("train", root, fmt)
    x_test, y_test = load_cifar10("test", root, fmt)
    form, paths = find_batches("test", root, fmt)
    description = (
        f"CIFAR-10 ({form} distribution, {paths[0].parent}): {len(x_train)} train / "
        f"{len(x_test)} test"
    )
    return LabeledSplits(x_train, y_train, x_test, y_test, description)


def _records(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images, labels = np.asarray(images, np.uint8), np.asarray(labels)
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3) or labels.shape != images.shape[:1]:
        raise ValueError(
            f"need images [N, 32, 32, 3] and labels [N], got {images.shape} and {labels.shape}."
        )
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072), labels.astype(np.uint8)


def write_cifar10_bin(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> None:
    """Writes a genuine binary batch (label byte + R, G, B planes per record), for tests/tools."""
    planes, labels = _records(images, labels)
    pathlib.Path(path).write_bytes(np.concatenate([labels[:, None], planes], axis=1).tobytes())


def write_cifar10_py(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> None:
    """Writes a python batch like the real ones: a protocol-2 pickle with bytes keys."""
    planes, labels = _records(images, labels)
    batch = {
        b"batch_label": b"written by tasks.data.cifar10",
        b"labels": labels.tolist(),
        b"data": planes,
        b"filenames": [b"image_%d.png" % i for i in range(len(labels))],
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
