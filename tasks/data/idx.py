"""The IDX array format of MNIST: read and write, gzipped or not.

Layout (all big-endian): two zero bytes, a type code byte, the number of
dimensions, one uint32 per dimension, then the elements in C order.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import struct
import zlib

import numpy as np

from tasks.data.paths import DataFileError

# IDX type code -> big-endian numpy dtype of the stored elements.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: pathlib.Path) -> bytes:
    """Returns the file's content, decompressed when it is gzip (by its magic bytes)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as error:
        raise DataFileError(f"IDX file {path} does not exist.") from error
    except OSError as error:
        raise DataFileError(f"cannot read IDX file {path}: {error}") from error
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFileError(
            f"{path} is a corrupt or truncated gzip file ({error}); delete it and obtain it again."
        ) from error


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file into a numpy array.

    Args:
      path: an IDX file, gzipped (detected by its content, not its name) or not.

    Returns:
      The array with its stored shape and the native-endian counterpart of its
      stored type (uint8 for MNIST).

    Raises:
      DataFileError: naming the file, when it is missing, not gzip-readable, has
        a bad magic number or type code, or its payload is shorter or longer
        than its dimensions say.
    """
    path = pathlib.Path(path)
    data = _read_bytes(path)
    fix = "The file is damaged or not IDX; delete it and obtain it again."
    if len(data) < 4:
        raise DataFileError(
            f"{path} is truncated: {len(data)} bytes, shorter than an IDX header. {fix}"
        )
    zeros, code, ndim = struct.unpack(">HBB", data[:4])
    if zeros != 0:
        raise DataFileError(
            f"{path} has a bad IDX magic number 0x{data[:4].hex()} (the first "
            f"two bytes must be zero). {fix}"
        )
    if code not in IDX_TYPES:
        raise DataFileError(f"{path} has an unknown IDX type code 0x{code:02x}. {fix}")
    if ndim == 0:
        raise DataFileError(f"{path} declares zero dimensions. {fix}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFileError(f"{path} is truncated inside its {ndim}-dimension header. {fix}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise DataFileError(
            f"{path} is truncated: shape {shape} needs {expected} data bytes, found {found}. {fix}"
        )
    if found > expected:
        raise DataFileError(
            f"{path} has {found - expected} trailing bytes after the "
            f"{expected} data bytes of shape {shape}. {fix}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes `array` as a genuine IDX file (gzipped when `path` ends with .gz).

    Used by tests and tools to produce files in the distribution format. The gzip
    header carries no timestamp, so equal arrays give equal files.

    Args:
      path: destination; its parent folder must exist.
      array: at least 1-D, of dtype uint8, int8, int16, int32, float32 or float64.

    Raises:
      ValueError: for a dtype IDX cannot store, a 0-d array, or a dimension too large.
    """
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    if array.dtype not in codes:
        raise ValueError(
            f"IDX cannot store dtype {array.dtype}; use one of {sorted(str(d) for d in codes)}."
        )
    if not 1 <= array.ndim <= 255 or any(n >= 2**32 for n in array.shape):
        raise ValueError(f"IDX cannot store an array of shape {array.shape}.")
    code = codes[array.dtype]
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    content = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    path = pathlib.Path(path)
    if path.suffix == ".gz":
        content = gzip.compress(content, mtime=0)
    path.write_bytes(content)
