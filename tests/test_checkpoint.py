"""Checkpoints: bitwise round trips, keep-last-two, atomicity and errors naming the file."""

from __future__ import annotations

import json
import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from trainers.io.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    restore_latest,
    run_folder_of,
    save_checkpoint,
)

CONFIG = {"task": {"name": "digits_mlp", "batch_size": 32}, "outer": {"lr": 1e-3}, "seed": 0}


def make_state(seed: int = 0) -> dict:
    """A meta-training state: meta-params, adam state, LSTM states in flight, step, keys."""
    ks = jax.random.split(jax.random.PRNGKey(seed), 4)
    meta_params = {
        "lstm": {"w_i": jax.random.normal(ks[0], (11, 80)), "b": jnp.zeros((80,))},
        "linear": {"w": jax.random.normal(ks[1], (20, 1)) * 1e-3},
    }
    opt_state = optax.adam(1e-3).init(meta_params)
    opt_state = jax.tree_util.tree_map(
        lambda x: x + 0.25 if x.dtype == jnp.float32 else x + 7, opt_state
    )  # non-trivial mu, nu and count
    lstm_states = tuple(
        (jax.random.normal(k, (5, 20)), jax.random.normal(k, (5, 20)) * 2)
        for k in jax.random.split(ks[2], 2)
    )
    return {
        "meta_params": meta_params,
        "opt_state": opt_state,
        "inner": lstm_states,
        "step": jnp.asarray(17, jnp.int32),
        "key": jax.random.PRNGKey(3),
        "typed_key": jax.random.key(4),
    }


def assert_bitwise_equal(a, b) -> None:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(la, lb):
        assert x.dtype == y.dtype and x.shape == y.shape
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_is_bitwise(tmp_path):
    state = make_state()
    path = save_checkpoint(tmp_path, 17, state, {"config": CONFIG})
    assert path == tmp_path / "checkpoints" / "ckpt-00000017"
    like = make_state(seed=1)  # same structure, other values
    restored, metadata = load_checkpoint(path, like)
    assert_bitwise_equal(restored, state)
    assert jax.dtypes.issubdtype(restored["typed_key"].dtype, jax.dtypes.prng_key)
    assert isinstance(restored["opt_state"][0], optax.ScaleByAdamState)
    assert restored["opt_state"][0].count.dtype == jnp.int32
    assert metadata == {"config": CONFIG}
    # The restored keys draw the same numbers as the originals.
    np.testing.assert_array_equal(
        jax.random.normal(restored["typed_key"], (3,)), jax.random.normal(state["typed_key"], (3,))
    )


def test_manifest_records_step_leaves_and_checksum(tmp_path):
    path = save_checkpoint(tmp_path, 5, make_state(), {"config": CONFIG})
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["step"] == 5 and manifest["metadata"] == {"config": CONFIG}
    assert manifest["num_leaves"] == len(jax.tree_util.tree_leaves(make_state()))
    by_path = {leaf["path"]: leaf for leaf in manifest["leaves"]}
    assert by_path["['meta_params']['lstm']['w_i']"] == {
        "path": "['meta_params']['lstm']['w_i']",
        "shape": [11, 80],
        "dtype": "float32",
    }
    assert by_path["['typed_key']"]["key_impl"] == "threefry2x32"
    assert len(manifest["sha256"]) == 64


def test_state_file_is_pickle_free_npz(tmp_path):
    state = make_state()
    path = save_checkpoint(tmp_path, 1, state, {})
    with np.load(path / "state.npz", allow_pickle=False) as npz:
        names = sorted(npz.files)
        assert len(names) == len(
            jax.tree_util.tree_leaves(state)
        )  # one entry per leaf, by key path
        assert {"inner/0/0", "meta_params/lstm/w_i", "opt_state/0/mu/linear/w"} <= set(names)
        assert all(npz[n].dtype != object for n in names)
    with zipfile.ZipFile(path / "state.npz") as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())


def test_keeps_last_two_and_no_tmp(tmp_path):
    state = make_state()
    (tmp_path / "checkpoints" / ".tmp-stale").mkdir(parents=True)  # left by a killed run
    for step in range(1, 5):
        save_checkpoint(tmp_path, step, state, {"step": step})
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["ckpt-00000003", "ckpt-00000004"]
    assert [p.name for p in list_checkpoints(tmp_path)] == names
    assert latest_checkpoint(tmp_path).name == "ckpt-00000004"


def test_run_folder_of_inverts_the_checkpoint_layout(tmp_path):
    path = save_checkpoint(tmp_path / "run", 2, make_state(), {})
    assert run_folder_of(path) == tmp_path / "run"
    copied = tmp_path / "elsewhere" / path.name  # a checkpoint folder taken out of its run
    copied.parent.mkdir()
    path.rename(copied)
    assert run_folder_of(copied) is None
    assert run_folder_of(tmp_path / "run" / "checkpoints") is None  # not a ckpt-<step> folder


def test_steps_sort_numerically_and_resave_replaces(tmp_path):
    state = make_state()
    save_checkpoint(tmp_path, 9, state, {}, keep=5)
    save_checkpoint(tmp_path, 100_000_000, state, {}, keep=5)  # nine digits
    assert latest_checkpoint(tmp_path).name == "ckpt-100000000"
    save_checkpoint(tmp_path, 9, make_state(seed=2), {"again": True}, keep=5)
    restored, metadata = load_checkpoint(tmp_path / "checkpoints" / "ckpt-00000009", state)
    assert metadata == {"again": True}
    assert_bitwise_equal(restored, make_state(seed=2))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "ckpt-00000009",
        "ckpt-100000000",
    ]


def test_truncated_state_names_file_and_previous_checkpoint(tmp_path):
    state = make_state()
    save_checkpoint(tmp_path, 1, state, {"step": 1})
    latest = save_checkpoint(tmp_path, 2, state, {"step": 2})
    data = (latest / "state.npz").read_bytes()
    (latest / "state.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="state.npz") as err:
        load_checkpoint(latest, state)
    assert str(latest / "state.npz") in str(err.value)
    with pytest.raises(CheckpointError) as err:
        restore_latest(tmp_path, state)
    previous = tmp_path / "checkpoints" / "ckpt-00000001"
    message = str(err.value)
    assert str(latest / "state.npz") in message
    assert f"resume from {previous}" in message and f"move {latest}" in message
    restored, metadata = load_checkpoint(previous, state)
    assert metadata == {"step": 1}
    assert_bitwise_equal(restored, state)


def test_flipped_byte_is_checksum_error(tmp_path):
    state = make_state()
    path = save_checkpoint(tmp_path, 3, state, {})
    data = bytearray((path / "state.npz").read_bytes())
    data[len(data) // 2] ^= 0x01
    (path / "state.npz").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch") as err:
        load_checkpoint(path, state)
    assert str(path / "state.npz") in str(err.value)


def test_shape_mismatch_names_leaf_path(tmp_path):
    state = make_state()
    path = save_checkpoint(tmp_path, 1, state, {})
    like = jax.tree_util.tree_map(lambda x: x, state)
    like["inner"] = (like["inner"][0], (like["inner"][1][0], jnp.zeros((6, 20))))
    with pytest.raises(CheckpointError, match=r"\['inner'\]\[1\]\[1\] differs in shape") as err:
        load_checkpoint(path, like)
    assert str(path) in str(err.value)


def test_structure_mismatch_is_error(tmp_path):
    state = make_state()
    path = save_checkpoint(tmp_path, 1, state, {})
    fewer = {k: v for k, v in state.items() if k != "typed_key"}
    with pytest.raises(CheckpointError, match="leaves"):
        load_checkpoint(path, fewer)
    renamed = {("key2" if k == "key" else k): v for k, v in state.items()}
    with pytest.raises(CheckpointError, match=r"\['key2'\] differs in path"):
        load_checkpoint(path, renamed)
    as_legacy = {**state, "typed_key": jax.random.key_data(state["typed_key"])}
    with pytest.raises(CheckpointError, match=r"\['typed_key'\] differs in shape"):
        load_checkpoint(path, as_legacy)


def test_bad_manifest_json_names_file(tmp_path):
    state = make_state()
    path = save_checkpoint(tmp_path, 1, state, {})
    text = (path / "manifest.json").read_text()
    (path / "manifest.json").write_text(text[: len(text) // 3])
    with pytest.raises(CheckpointError, match="not valid JSON") as err:
        load_checkpoint(path, state)
    assert str(path / "manifest.json") in str(err.value)
    (path / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="manifest.json: missing"):
        load_checkpoint(path, state)


def test_crash_during_save_keeps_previous(tmp_path, monkeypatch):
    state = make_state()
    previous = save_checkpoint(tmp_path, 1, state, {"step": 1})

    def crash(*args, **kwargs):
        raise OSError("killed")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="killed"):
        save_checkpoint(tmp_path, 2, make_state(seed=5), {"step": 2})
    monkeypatch.undo()
    assert list_checkpoints(tmp_path) == [previous]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["ckpt-00000001"]
    restored, metadata, path = restore_latest(tmp_path, state)
    assert path == previous and metadata == {"step": 1}
    assert_bitwise_equal(restored, state)


def test_no_checkpoint_and_bad_metadata_are_errors(tmp_path):
    assert latest_checkpoint(tmp_path) is None and list_checkpoints(tmp_path) == []
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        restore_latest(tmp_path, make_state())
    with pytest.raises(CheckpointError, match="not JSON-serializable"):
        save_checkpoint(tmp_path, 1, make_state(), {"lr": np.float32(1.0)})
    assert list(list_checkpoints(tmp_path)) == []
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
