"""MNIST from its four standard IDX files, with a fallback for when only the test set exists."""

from __future__ import annotations

import os
import pathlib
import warnings

import numpy as np

from tasks.base import LabeledSplits
from tasks.data.idx import read_idx
from tasks.data.paths import DataFileError, how_to_obtain, resolve_data_dir

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILES = {"train": (TRAIN_IMAGES, TRAIN_LABELS), "test": (TEST_IMAGES, TEST_LABELS)}
SOURCES = ("auto", "full", "test_only")
SPLIT_SEED = 0  # numpy RandomState seed of the test_only permutation


def candidate_paths(name: str, data_dir: pathlib.Path) -> list[pathlib.Path]:
    """Returns where an MNIST file may lie, in lookup order.

    Args:
      name: a standard file name such as `t10k-images-idx3-ubyte.gz`.
      data_dir: the data folder.

    Returns:
      `<data_dir>/mnist/` then `<data_dir>/` itself (so a folder holding the four
      files works), each with the gzipped name and then the uncompressed one.
    """
    plain = name[:-3] if name.endswith(".gz") else name
    return [folder / n for folder in (data_dir / "mnist", data_dir) for n in (name, plain)]


def find_file(name: str, data_dir: pathlib.Path) -> pathlib.Path:
    """Returns the first existing candidate of `name`, or raises DataFileError listing them."""
    candidates = candidate_paths(name, data_dir)
    for path in candidates:
        if path.is_file():
            return path
    raise DataFileError(
        f"MNIST file {name} not found; looked for "
        f"{', '.join(map(str, candidates))}. {how_to_obtain('mnist', data_dir)}"
    )


def load_mnist(
    split: str, data_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reads one MNIST split from its IDX files.

    Args:
      split: "train" (60,000 images) or "test" (the 10,000 t10k images).
      data_dir: data folder; None resolves it with `resolve_data_dir`.

    Returns:
      `(images, labels)`: uint8 [N, 28, 28] and uint8 [N].

    Raises:
      DataFileError: a file is missing (naming the paths searched), or its
        content is not MNIST-shaped (naming the file).
      ValueError: `split` is neither "train" nor "test".
    """
    if split not in FILES:
        raise ValueError(f"MNIST split must be 'train' or 'test', got {split!r}.")
    root = resolve_data_dir(data_dir)
    images_path, labels_path = (find_file(name, root) for name in FILES[split])
    images, labels = read_idx(images_path), read_idx(labels_path)
    remedy = "Replace it with the standard MNIST file."
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataFileError(
            f"{images_path} holds {images.dtype} {images.shape}, not uint8 "
            f"images [N, 28, 28]. {remedy}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataFileError(
            f"{labels_path} holds {labels.dtype} {labels.shape}, not uint8 labels [N]. {remedy}"
        )
    if len(labels) != len(images):
        raise DataFileError(
            f"{labels_path} has {len(labels)} labels but {images_path} has "
            f"{len(images)} images. {remedy}"
        )
    if labels.size and labels.max() > 9:
        raise DataFileError(f"{labels_path} has label {labels.max()}, outside 0..9. {remedy}")
    return images, labels


def _has_train_files(root: pathlib.Path) -> bool:
    return all(any(p.is_file() for p in candidate_paths(name, root)) for name in FILES["train"])


def load_mnist_splits(
    data_dir: str | os.PathLike | None = None,
    source: str = "auto",
    test_only_train_size: int = 8000,
) -> LabeledSplits:
    """Loads MNIST as training and held-out parts.

    Args:
      data_dir: data folder; None resolves it with `resolve_data_dir`.
      source: "full" (60,000 train / 10,000 test), "test_only" (only the t10k
        files, split by a fixed permutation because machines without the
        training files must still run real-MNIST experiments), or "auto" (full
        when both training files exist, else test_only with a warning).
      test_only_train_size: training images taken from the t10k set by
        "test_only"; the rest are held out.

    Returns:
      LabeledSplits of raw uint8 images [N, 28, 28] and int32 labels; the
      description names the source, files and split.

    Raises:
      DataFileError: files are missing or malformed.
      ValueError: unknown `source`, or `test_only_train_size` leaves a part empty.
    """
    if source not in SOURCES:
        raise ValueError(f"MNIST source must be one of {SOURCES}, got {source!r}.")
    root = resolve_data_dir(data_dir)
    if source == "auto":
        source = "full" if _has_train_files(root) else "test_only"
        if source == "test_only":
            warnings.warn(
                f"MNIST training files are not in {root}; using source='test_only': "
                f"the t10k test images split into {test_only_train_size} training "
                f"and the rest held out.",
                stacklevel=2,
            )
    if source == "full":
        x_train, y_train = load_mnist("train", root)
        x_test, y_test = load_mnist("test", root)
        description = (
            f"MNIST full: {len(x_train)} train ({TRAIN_IMAGES}) / {len(x_test)} test "
            f"({TEST_IMAGES}) from {find_file(TEST_IMAGES, root).parent}"
        )
        return LabeledSplits(
            x_train, y_train.astype(np.int32), x_test, y_test.astype(np.int32), description
        )
    images, labels = load_mnist("test", root)
    if not 0 < test_only_train_size < len(images):
        raise ValueError(
            f"test_only_train_size must be in 1..{len(images) - 1} for "
            f"{len(images)} test images, got {test_only_train_size}."
        )
    # The legacy RandomState stream is frozen across numpy versions, so the split is too.
    order = np.random.RandomState(SPLIT_SEED).permutation(len(images))
    train, held_out = order[:test_only_train_size], order[test_only_train_size:]
    description = (
        f"MNIST test_only: the {len(images)} images of {TEST_IMAGES} in "
        f"{find_file(TEST_IMAGES, root).parent} split by "
        f"numpy.random.RandomState({SPLIT_SEED}).permutation into {len(train)} "
        f"train / {len(held_out)} held-out (no MNIST training files used)"
    )
    return LabeledSplits(
        images[train],
        labels[train].astype(np.int32),
        images[held_out],
        labels[held_out].astype(np.int32),
        description,
    )
