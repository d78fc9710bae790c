"""Shared fixtures: tiny data sets written in the genuine distribution formats."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> pathlib.Path:
    """A data folder with a small MNIST (IDX) and CIFAR-10 (binary) in standard layout."""
    from tasks.data.cifar10 import write_cifar10_bin
    from tasks.data.idx import write_idx

    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    mnist = root / "mnist"
    mnist.mkdir()
    for prefix, n in (("train", 96), ("t10k", 48)):
        write_idx(mnist / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), np.uint8))
        write_idx(mnist / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    cifar = root / "cifar-10-batches-bin"
    cifar.mkdir()
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        write_cifar10_bin(cifar / name, rng.integers(0, 256, (12, 32, 32, 3), np.uint8),
                          (np.arange(12) % 10).astype(np.uint8))
    return root
