"""Checkpoints of meta-training runs: atomic, pickle-free, the newest `keep` kept.

`run_dir/checkpoints/ckpt-<step:08d>/` holds `state.npz` (the pytree's leaves named
by their key paths, `common.npz_tree`; typed PRNG keys as their key data) and
`manifest.json` (step, metadata such as the config, each leaf's path/shape/dtype,
the sha256 of state.npz). It is written to a `.tmp-*` folder, fsynced and renamed
into place, so a killed run leaves the whole checkpoint or none of it.

Several processes (multi-host jobs): the caller gathers the state, which is sharded
over processes, on every process (`trainers.core.sharding.gather_to_host`, a
collective) and calls `save_checkpoint` on process 0 only; the others never touch the
folder. On resume every process reads the same checkpoint, so run folders must sit on
a filesystem all hosts share.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import npz_tree
from common.atomic import fsync_path
from common.errors import UserError
from common.pytree import PyTree

__all__ = [
    "CheckpointError",
    "checkpoint_step",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "restore_latest",
    "run_folder_of",
    "save_checkpoint",
]

_NAME = re.compile(r"ckpt-(\d{8,})")
_FORMAT = 2  # manifest "format" version (1: leaves named leaf_00000, ... in order)


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, truncated, corrupt or does not fit the expected state."""


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _leaf_info(path: Any, x: Any) -> dict[str, Any]:
    """The manifest entry of one leaf (typed keys record their implementation)."""
    info = {"path": jax.tree_util.keystr(path), "shape": list(np.shape(x))}
    if _is_key(x):
        return {**info, "dtype": str(x.dtype), "key_impl": str(jax.random.key_impl(x))}
    return {**info, "dtype": str(x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)}


def checkpoint_step(path: str | os.PathLike) -> int:
    """The meta-step a `ckpt-<step>` folder holds, read from its name."""
    match = _NAME.fullmatch(pathlib.Path(path).name)
    if match is None:
        raise CheckpointError(f"{path}: not a checkpoint folder name (ckpt-<step>)")
    return int(match.group(1))


def run_folder_of(checkpoint: str | os.PathLike) -> pathlib.Path | None:
    """The run folder a `<run>/checkpoints/ckpt-<step>` folder belongs to (see `save_checkpoint`),
    or None for a checkpoint folder copied out of that layout."""
    checkpoint = pathlib.Path(checkpoint)
    in_layout = _NAME.fullmatch(checkpoint.name) and checkpoint.parent.name == "checkpoints"
    return checkpoint.parent.parent if in_layout else None


def list_checkpoints(run_dir: str | os.PathLike) -> list[pathlib.Path]:
    """Returns the checkpoint folders of a run, oldest step first (`.tmp-*` ignored)."""
    root = pathlib.Path(run_dir) / "checkpoints"
    found = (
        [p for p in root.iterdir() if _NAME.fullmatch(p.name) and p.is_dir()]
        if root.is_dir()
        else []
    )
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(run_dir: str | os.PathLike) -> pathlib.Path | None:
    """Returns the newest checkpoint folder of a run, or None if there is none."""
    return (list_checkpoints(run_dir) or [None])[-1]


def save_checkpoint(
    run_dir: str | os.PathLike, step: int, state: PyTree, metadata: Mapping[str, Any], keep: int = 2
) -> pathlib.Path:
    """Writes `run_dir/checkpoints/ckpt-<step:08d>` atomically; keeps the newest `keep`.

    In a multi-process job only process 0 calls it, with the state gathered to the
    host (its leaves must be addressable from this process).

    Args:
      run_dir: the run folder.
      step: the outer step, which names the folder.
      state: the pytree to save (meta-params, optimizer and inner states, keys, ...).
      metadata: JSON-serializable data saved alongside, e.g. the config dict.
      keep: how many checkpoints to keep (>= 1); the one just written is always kept.

    Returns:
      The new checkpoint folder (CheckpointError if `metadata` is not JSON-serializable).
    """
    root = pathlib.Path(run_dir) / "checkpoints"
    if keep < 1:
        raise CheckpointError(f"{root}: keep must be >= 1, got {keep}")
    flat, treedef = jax.tree_util.tree_flatten_with_path(state)
    raw = jax.tree_util.tree_map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)
    arrays = npz_tree.encode(raw, allow_raw=True)
    manifest = {
        "format": _FORMAT,
        "step": int(step),
        "metadata": dict(metadata),
        "num_leaves": len(flat),
        "leaves": [_leaf_info(p, x) for p, x in flat],
        "treedef": str(treedef),
    }
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"ckpt-{int(step):08d}"
    tmp = root / f".tmp-{secrets.token_hex(8)}"
    tmp.mkdir()
    try:
        with open(tmp / "state.npz", "wb") as f:
            np.savez(f, **arrays)
        fsync_path(tmp / "state.npz")
        manifest["sha256"] = hashlib.sha256((tmp / "state.npz").read_bytes()).hexdigest()
        try:
            text = json.dumps(manifest, indent=1)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{final}: metadata is not JSON-serializable: {err}") from None
        (tmp / "manifest.json").write_text(text)
        fsync_path(tmp / "manifest.json")
        fsync_path(tmp)
        if final.exists():  # re-saving a step: move the old copy away (deleted below as .tmp-*)
            os.rename(final, root / f".tmp-old-{secrets.token_hex(8)}")
        os.rename(tmp, final)
        fsync_path(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for path in [
        *root.glob(".tmp-*"),
        *(p for p in list_checkpoints(run_dir)[:-keep] if p != final),
    ]:
        shutil.rmtree(path, ignore_errors=True)
    return final


def _check_fits(path: pathlib.Path, manifest: dict[str, Any], like: PyTree) -> None:
    """Raises unless the saved leaves have the paths, shapes and dtypes of `like`'s."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(like)
    if manifest["num_leaves"] != len(flat) or len(manifest["leaves"]) != len(flat):
        raise CheckpointError(
            f"{path}: holds {manifest['num_leaves']} leaves, the expected state "
            f"{len(flat)}; saved {manifest.get('treedef')}, expected {treedef}"
        )
    for saved, (leaf_path, x) in zip(manifest["leaves"], flat):
        want = _leaf_info(leaf_path, x)
        bad = [f for f in ("path", "shape", "dtype", "key_impl") if saved.get(f) != want.get(f)]
        if bad:
            raise CheckpointError(
                f"{path}: leaf {want['path']} differs in {bad[0]}: saved "
                f"{saved.get(bad[0])!r}, expected {want.get(bad[0])!r}"
            )


def load_checkpoint(path: str | os.PathLike, like: PyTree) -> tuple[PyTree, dict]:
    """Reads one checkpoint folder into the structure of `like`.

    Every process of a multi-process job may read it (a shared filesystem); the arrays
    come back whole, for `trainers.core.sharding` to place.

    Args:
      path: a `ckpt-<step>` folder.
      like: a template with the saved structure, shapes and dtypes (e.g. the freshly
        initialized state); its values are not used.

    Returns:
      `(state, metadata)`: jax arrays (typed keys re-wrapped) and the saved metadata.

    Raises:
      CheckpointError: naming the file and the problem (missing, truncated, checksum
        mismatch, bad JSON, the first leaf whose path, shape or dtype differs).
    """
    path = pathlib.Path(path)
    manifest_file, state_file = path / "manifest.json", path / "state.npz"
    for file in (manifest_file, state_file):
        if not file.is_file():  # also when `path` itself does not exist
            raise CheckpointError(f"{file}: missing (not a complete checkpoint)")
    try:
        manifest = json.loads(manifest_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{manifest_file}: not valid JSON, truncated or corrupt ({err})"
        ) from None
    needed = ("format", "step", "metadata", "num_leaves", "leaves", "sha256")
    if not isinstance(manifest, dict) or not all(k in manifest for k in needed):
        raise CheckpointError(
            f"{manifest_file}: not a checkpoint manifest (keys {', '.join(needed)})"
        )
    _check_fits(path, manifest, like)
    if hashlib.sha256(state_file.read_bytes()).hexdigest() != manifest["sha256"]:
        raise CheckpointError(
            f"{state_file}: checksum mismatch with manifest.json (truncated or corrupt)"
        )
    try:
        stored = npz_tree.read_npz(state_file)
    except ValueError as err:
        raise CheckpointError(
            f"{state_file}: cannot be read as a pickle-free npz ({err})"
        ) from None
    flat = jax.tree_util.tree_flatten_with_path(like)[0]
    names = (
        [f"leaf_{i:05d}" for i in range(len(flat))]
        if manifest["format"] == 1
        else [npz_tree.leaf_name(path) for path, _ in flat]
    )
    missing = [name for name in names if name not in stored]
    if missing:
        raise CheckpointError(
            f"{state_file}: has no leaf {missing[0]!r} (truncated or not this state)"
        )
    arrays = [stored[name] for name in names]
    leaves = [
        jax.random.wrap_key_data(jnp.asarray(arr), impl=info["key_impl"])
        if "key_impl" in info
        # dtypes numpy does not know (bfloat16) come back as raw bytes: view them
        else jnp.asarray(arr.view(jnp.dtype(info["dtype"])) if arr.dtype.kind == "V" else arr)
        for info, arr in zip(manifest["leaves"], arrays)
    ]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), leaves), manifest[
        "metadata"
    ]


def restore_latest(run_dir: str | os.PathLike, like: PyTree) -> tuple[PyTree, dict, pathlib.Path]:
    """Loads the newest checkpoint of a run: `(state, metadata, path)`.

    Raises:
      CheckpointError: if there is none, or the newest is unusable; the message then
        names the newest earlier checkpoint that loads, to resume from once the bad
        folder is deleted or moved.
    """
    found = list_checkpoints(run_dir)
    if not found:
        raise CheckpointError(f"{run_dir}: no checkpoint found (looked in {run_dir}/checkpoints)")
    try:
        return (*load_checkpoint(found[-1], like), found[-1])
    except CheckpointError as err:
        for previous in reversed(found[:-1]):
            try:
                load_checkpoint(previous, like)
            except CheckpointError:
                continue
            raise CheckpointError(
                f"{err}\nThe previous checkpoint {previous} is still usable: delete "
                f"or move {found[-1]} to resume from {previous}"
            ) from None
        raise CheckpointError(f"{err}\nNo earlier checkpoint in {run_dir} loads either") from None
