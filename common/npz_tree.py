"""The one pytree <-> `.npz` codec: leaves named by their key paths, no pickle.

A leaf at key path `("mlp/~/linear_0", "w")` is stored as `mlp%2F~%2Flinear_0/w`:
dict keys, sequence indices and attribute names (NamedTuple fields) joined by "/",
with "%" and "/" inside a name escaped, so Haiku module names survive. `decode`
rebuilds nested dicts from the names alone (paths, target sets); `leaf_name`
lets a reader that has a template (checkpoints) look each leaf up by its path.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from common.atomic import atomic_write
from common.pytree import PyTree


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace("/", "%2F")


def _unescape(part: str) -> str:
    return part.replace("%2F", "/").replace("%25", "%")


def leaf_name(key_path: tuple) -> str:
    """The stored name of the leaf at `key_path` (from `jax.tree_util.tree_flatten_with_path`)."""
    parts = [
        str(next((getattr(k, a) for a in ("key", "idx", "name") if hasattr(k, a)), k))
        for k in key_path
    ]
    if not all(parts):
        raise ValueError(f"{jax.tree_util.keystr(key_path)}: empty key names cannot be stored")
    return "/".join(_escape(p) for p in parts)


def encode(tree: PyTree, *, allow_raw: bool = False) -> dict[str, np.ndarray]:
    """`{leaf_name: numpy array}` of every leaf (moved to the host).

    Args:
      tree: the pytree; leaves must be arrays or numbers.
      allow_raw: accept dtypes numpy stores as raw bytes (bfloat16); the reader
        must then know the dtype (a checkpoint manifest does).

    Raises:
      ValueError: naming the leaf, for an empty key or a dtype that needs pickle.
    """
    arrays = {}
    for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        array = np.asarray(jax.device_get(leaf))
        if array.dtype.kind == "O" or (array.dtype.kind == "V" and not allow_raw):
            raise ValueError(
                f"{jax.tree_util.keystr(key_path)}: dtype {array.dtype} cannot be "
                "stored without pickle"
            )
        arrays[leaf_name(key_path)] = array
    return arrays


def decode(arrays: Mapping[str, np.ndarray], where: str = "<arrays>") -> dict[str, Any]:
    """Nested dicts from `{leaf_name: array}` (the inverse of `encode` for dict trees).

    Raises:
      ValueError: naming `where` and the key, if two names clash or one is malformed.
    """
    tree: dict[str, Any] = {}
    for name, array in arrays.items():
        *parents, last = parts = [_unescape(p) for p in name.split("/")]
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        if not all(parts) or not isinstance(node, dict) or last in node:
            raise ValueError(f"{where}: key {name!r} clashes with another or is malformed")
        node[last] = array
    return tree


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Writes `arrays` to the `.npz` file `path` (name as given), atomically."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads every array of an `.npz` file with `allow_pickle=False`.

    Raises:
      FileNotFoundError: the file is missing.
      ValueError: naming the file, if it is truncated, corrupt or not an `.npz`.
    """
    with open(path, "rb") as f:
        try:
            data = np.load(f, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with data:
                return {name: data[name] for name in data.files}
        except (
            OSError,
            EOFError,
            ValueError,
            KeyError,
            NotImplementedError,
            zipfile.BadZipFile,
        ) as err:
            raise ValueError(f"{path}: not a readable .npz file ({err})") from err
