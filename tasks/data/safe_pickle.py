"""A pickle reader that builds numpy arrays and plain containers, and nothing else.

Unpickling calls whatever callables the stream names, so a data file could run
arbitrary code. CIFAR-10's python batches are pickles; `RestrictedUnpickler`
resolves only the few globals a numpy array needs and refuses the rest.
"""

from __future__ import annotations

import builtins
import os
import pickle
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from tasks.data.paths import DataFileError

try:  # numpy >= 2 keeps the implementation in numpy._core
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

# Builtins whose calls only build plain values (protocol 2 names some by GLOBAL).
_SAFE_BUILTINS = frozenset(
    {
        "list",
        "dict",
        "tuple",
        "set",
        "frozenset",
        "bytearray",
        "bytes",
        "str",
        "int",
        "float",
        "complex",
        "bool",
    }
)


def _plain_dtype(*args: Any) -> np.dtype:
    """`numpy.dtype` for unpickling that refuses object dtypes (they could hold anything)."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"object dtype {dtype} is not allowed")
    return dtype


def _allowed_globals() -> dict[tuple[str, str], Callable[..., Any]]:
    import codecs

    table: dict[tuple[str, str], Callable[..., Any]] = {
        ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _plain_dtype,
        # Protocol 2 stores Python 3 bytes as _codecs.encode(text, "latin1").
        ("_codecs", "encode"): codecs.encode,
    }
    for name in _SAFE_BUILTINS:
        table[("builtins", name)] = table[("__builtin__", name)] = getattr(builtins, name)
    return table


_ALLOWED = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that admits only numpy arrays, plain containers and numbers.

    Use as `RestrictedUnpickler(file, encoding="bytes").load()`; set `source` to
    the file's path so a refusal names it.
    """

    def __init__(
        self, file: BinaryIO, *, source: str | os.PathLike = "<stream>", **kwargs: Any
    ) -> None:
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        """Returns an allowed global; raises DataFileError naming anything else."""
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataFileError(
                f"refusing to unpickle {module}.{name} from {self.source}: only numpy arrays, "
                f"plain containers and numbers are allowed. The file is not a genuine data "
                f"batch; delete it and obtain the data set again."
            ) from None
