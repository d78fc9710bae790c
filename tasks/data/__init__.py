"""The data-loading layer: real data sets read from their standard distribution files.

numpy only. Each loader returns raw arrays (`tasks.base.LabeledSplits` for the
split loaders); scaling and device placement belong to the tasks. Files are
found under `resolve_data_dir()` (argument, else $META_OPT_DATA, else the user
cache); a missing or malformed file raises `DataFileError` naming the file and
how to obtain it. `download` fetches MNIST or CIFAR-10 and checks sha256.
"""

from tasks.data.cifar10 import (
    load_cifar10,
    load_cifar10_splits,
    write_cifar10_bin,
    write_cifar10_py,
)
from tasks.data.digits import load_digits_splits
from tasks.data.download import download
from tasks.data.idx import read_idx, write_idx
from tasks.data.mnist import load_mnist, load_mnist_splits
from tasks.data.paths import DataFileError, resolve_data_dir
from tasks.data.safe_pickle import RestrictedUnpickler

__all__ = [
    "DataFileError",
    "RestrictedUnpickler",
    "download",
    "load_cifar10",
    "load_cifar10_splits",
    "load_digits_splits",
    "load_mnist",
    "load_mnist_splits",
    "read_idx",
    "resolve_data_dir",
    "write_cifar10_bin",
    "write_cifar10_py",
    "write_idx",
]
