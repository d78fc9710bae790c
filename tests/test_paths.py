"""Tests for geodesic_targets.paths: lengths, arc-length resampling, stacking, .npz files."""

from __future__ import annotations

import os
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from geodesic_targets import paths

# The L-shaped path (0,0) -> (1,0) -> (1,1) along two sides of the unit right triangle.
L_PATH = {"x": jnp.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])}


def _pts(xs) -> dict:
    return {"x": jnp.asarray(xs, jnp.float32)}


def test_straight_path_with_collinear_beads_has_normalized_length_one():
    ts = jnp.array([0.0, 0.1, 0.15, 0.6, 0.61, 1.0])
    theta_a = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.array([1.0, -2.0])}
    theta_b = {"w": -jnp.ones((2, 3)), "b": jnp.array([4.0, 3.0])}
    beads = paths.interpolate_stack(theta_a, theta_b, ts)
    np.testing.assert_allclose(paths.normalized_length(beads), 1.0, atol=1e-6)
    # The segment lengths are the t-increments times the endpoint distance.
    np.testing.assert_allclose(
        paths.segment_lengths(beads), np.diff(ts) * paths.endpoint_distance(beads), rtol=1e-5
    )


def test_right_triangle_legs():
    np.testing.assert_allclose(paths.segment_lengths(L_PATH), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(paths.path_length(L_PATH), 2.0, rtol=1e-6)
    np.testing.assert_allclose(paths.endpoint_distance(L_PATH), np.sqrt(2.0), rtol=1e-6)
    np.testing.assert_allclose(paths.normalized_length(L_PATH), np.sqrt(2.0), rtol=1e-6)


def test_distances_run_over_all_leaves_together():
    # A 3-4-5 step split across two leaves of different shapes.
    beads = {"a": jnp.array([[0.0], [3.0]]), "b": jnp.array([[[0.0, 0.0]], [[0.0, 4.0]]])}
    np.testing.assert_allclose(paths.path_length(beads), 5.0, rtol=1e-6)


def test_semicircle_normalized_length_tends_to_half_pi():
    angles = jnp.linspace(jnp.pi, 0.0, 201)
    beads = _pts(jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1))
    np.testing.assert_allclose(paths.normalized_length(beads), np.pi / 2, rtol=5e-3)


def test_coinciding_endpoints():
    loop = _pts([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="endpoints coincide"):
        paths.normalized_length(loop)
    assert jnp.isinf(jax.jit(paths.normalized_length)(loop))
    assert jnp.isposinf(jax.jit(paths.normalized_length)(_pts([[1.0, 2.0]] * 3)))  # 0 / 0


def test_resample_l_path_at_five_points():
    expected = [[0, 0], [0.5, 0], [1, 0], [1, 0.5], [1, 1]]
    np.testing.assert_allclose(paths.resample(L_PATH, 5)["x"], expected, atol=1e-6)


def test_resample_straight_path_is_evenly_spaced():
    beads = _pts([[0.0, 0.0], [0.1, 0.2], [0.2, 0.4], [1.5, 3.0], [2.0, 4.0]])
    out = paths.resample(beads, 9)
    np.testing.assert_allclose(out["x"], np.linspace([0.0, 0.0], [2.0, 4.0], 9), atol=1e-5)
    seg = paths.segment_lengths(out)
    np.testing.assert_allclose(seg, np.full(8, np.sqrt(20.0) / 8), rtol=1e-5)


def test_resample_semicircle_points_are_equally_spaced_on_the_path():
    angles = jnp.linspace(0.0, jnp.pi, 101)
    beads = _pts(jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1))
    out = paths.resample(beads, 7)["x"]
    seg = paths.segment_lengths({"x": out})
    np.testing.assert_allclose(seg, np.full(6, seg.mean()), rtol=1e-3)
    # Each point lies on its chord: at radius between cos(half the bead angle step) and 1.
    radius = jnp.linalg.norm(out, axis=1)
    assert jnp.all(radius <= 1 + 1e-6) and jnp.all(radius >= jnp.cos(jnp.pi / 200) - 1e-6)


def test_resample_preserves_endpoints_exactly():
    rng = np.random.default_rng(0)  # float32 arc lengths alone miss the last bead on some paths
    for _ in range(20):
        beads = _pts(rng.normal(size=(7, 3)) * 1e3 + 100.0)
        out = paths.resample(beads, 5)
        np.testing.assert_array_equal(out["x"][0], beads["x"][0])
        np.testing.assert_array_equal(out["x"][-1], beads["x"][-1])


@pytest.mark.parametrize("duplicate", [0, 1, 2])
def test_resample_zero_length_segment(duplicate):
    xs = np.array(L_PATH["x"])
    beads = _pts(np.insert(xs, duplicate, xs[duplicate], axis=0))  # one bead twice
    out = paths.resample(beads, 5)
    assert not jnp.any(jnp.isnan(out["x"]))
    np.testing.assert_allclose(out["x"], [[0, 0], [0.5, 0], [1, 0], [1, 0.5], [1, 1]], atol=1e-6)
    grad = jax.grad(lambda b: jnp.sum(paths.resample(b, 5)["x"] ** 2) + paths.path_length(b))(beads)
    assert not jnp.any(jnp.isnan(grad["x"]))


def test_resample_all_beads_equal_gives_no_nan():
    out = paths.resample(_pts([[1.0, 2.0]] * 3), 4)
    np.testing.assert_array_equal(out["x"], np.tile([1.0, 2.0], (4, 1)))


def test_resample_under_jit_matches_eager_and_compiles_once():
    fn = jax.jit(paths.resample, static_argnums=1)
    np.testing.assert_allclose(fn(L_PATH, 5)["x"], paths.resample(L_PATH, 5)["x"], atol=1e-7)
    moved = {"x": L_PATH["x"] + 1.0}
    np.testing.assert_allclose(fn(moved, 5)["x"], paths.resample(L_PATH, 5)["x"] + 1.0, atol=1e-6)
    assert fn._cache_size() == 1


def test_resample_mixed_shape_pytree():
    # The L path again, with its two coordinates scattered over leaves of different shapes.
    beads = {
        "w": jnp.array([[[0.0, 7.0]], [[1.0, 7.0]], [[1.0, 7.0]]]),
        "b": jnp.array([0.0, 0.0, 1.0]),
    }
    out = paths.resample(beads, 5)
    assert out["w"].shape == (5, 1, 2) and out["b"].shape == (5,)
    np.testing.assert_allclose(out["w"][:, 0, 0], [0.0, 0.5, 1.0, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(out["w"][:, 0, 1], 7.0)
    np.testing.assert_allclose(out["b"], [0.0, 0.0, 0.0, 0.5, 1.0], atol=1e-6)


def test_resample_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_points"):
        paths.resample(L_PATH, 1)
    with pytest.raises(ValueError, match="leading"):
        paths.resample({"a": jnp.zeros((3, 2)), "b": jnp.zeros((4,))}, 3)


def test_interpolate_stack_hand_values():
    theta_a = {"w": jnp.array([[0.0, 2.0]]), "b": jnp.array(4.0)}
    theta_b = {"w": jnp.array([[2.0, -2.0]]), "b": jnp.array(8.0)}
    out = paths.interpolate_stack(theta_a, theta_b, [0.0, 0.5, 1.0])
    expected = {
        "w": jnp.array([[[0.0, 2.0]], [[1.0, 0.0]], [[2.0, -2.0]]]),
        "b": jnp.array([4.0, 6.0, 8.0]),
    }
    chex.assert_trees_all_close(out, expected, atol=1e-7)
    with pytest.raises(ValueError):
        paths.interpolate_stack({"w": jnp.zeros(2)}, {"w": jnp.zeros(3)}, [0.5])


def test_stack_unstack_bead_round_trip():
    trees = [{"w": jnp.full((2, 3), float(i)), "b": jnp.array([i, -i])} for i in range(4)]
    stacked = paths.stack(trees)
    assert stacked["w"].shape == (4, 2, 3) and stacked["b"].shape == (4, 2)
    chex.assert_trees_all_equal(paths.bead(stacked, 2), trees[2])
    chex.assert_trees_all_equal(paths.bead(stacked, -1), trees[3])
    back = paths.unstack(stacked)
    assert len(back) == 4
    chex.assert_trees_all_equal(back, trees)


def _nested_beads():
    rng = np.random.default_rng(0)
    return {
        "mlp/~/linear_0": {
            "w": rng.normal(size=(3, 4, 2)).astype(np.float32),
            "b": rng.normal(size=(3, 2)).astype(np.float32),
        },
        "mlp/~/linear_1": {"w": rng.normal(size=(3, 2, 1)).astype(np.float32)},
    }


def test_save_load_round_trip(tmp_path):
    beads = {
        "linear_0": _nested_beads()["mlp/~/linear_0"],
        "head": {"w": np.arange(6).reshape(3, 2)},
    }
    file = tmp_path / "runs" / "path.npz"
    paths.save_path(file, beads, energy=0.25, step=7, task="digits", ts=np.linspace(0, 1, 3))
    loaded, meta = paths.load_path(file)
    chex.assert_trees_all_equal(loaded, beads)
    assert loaded["head"]["w"].dtype == np.int64 and loaded["linear_0"]["w"].dtype == np.float32
    assert meta.keys() == {"energy", "step", "task", "ts"}
    assert meta["energy"] == 0.25 and isinstance(meta["energy"], float)
    assert meta["step"] == 7 and isinstance(meta["step"], int)
    assert meta["task"] == "digits" and isinstance(meta["task"], str)
    np.testing.assert_array_equal(meta["ts"], [0.0, 0.5, 1.0])
    assert os.listdir(file.parent) == ["path.npz"]  # no temporary file left behind

    with np.load(file, allow_pickle=False) as data:  # plain arrays only
        assert set(data.files) == {
            "beads/linear_0/w",
            "beads/linear_0/b",
            "beads/head/w",
            "meta/energy",
            "meta/step",
            "meta/task",
            "meta/ts",
        }
        assert data["meta/task"].dtype.kind == "U"


def test_save_overwrites_and_bare_array_path(tmp_path):
    file = tmp_path / "p.npz"
    paths.save_path(file, {"x": np.zeros((2, 3))})
    paths.save_path(file, jnp.ones((2, 3)), note="bare")
    loaded, meta = paths.load_path(file)
    np.testing.assert_array_equal(loaded, np.ones((2, 3)))
    assert meta == {"note": "bare"} and os.listdir(tmp_path) == ["p.npz"]


def test_haiku_names_with_slashes_and_percent_signs_round_trip(tmp_path):
    beads = {**_nested_beads(), "odd%2Fname": {"w": np.ones((3, 1), np.float32)}}
    paths.save_path(tmp_path / "p.npz", beads)
    chex.assert_trees_all_equal(paths.load_path(tmp_path / "p.npz")[0], beads)


def test_save_rejects_what_needs_pickle(tmp_path):
    with pytest.raises(ValueError, match="object"):
        paths.save_path(
            tmp_path / "p.npz", {"x": np.zeros((2, 1))}, config={"a": None, "b": [object()]}
        )
    with pytest.raises(ValueError, match="bfloat16|V2"):
        paths.save_path(tmp_path / "p.npz", {"x": jnp.zeros((2, 1), jnp.bfloat16)})
    assert not os.listdir(tmp_path)


def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    file = tmp_path / "p.npz"
    paths.save_path(file, {"x": np.zeros((2, 1))}, version=1)

    def broken_savez(f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        paths.save_path(file, {"x": np.ones((2, 1))}, version=2)
    assert os.listdir(tmp_path) == ["p.npz"]
    assert paths.load_path(file)[1] == {"version": 1}


@pytest.mark.parametrize("cut", [0, 10, 100, -30])
def test_truncated_file_raises_value_error_naming_it(tmp_path, cut):
    file = tmp_path / "path.npz"
    paths.save_path(file, {"x": np.arange(12.0).reshape(3, 4)}, energy=1.0)
    file.write_bytes(file.read_bytes()[:cut])
    with pytest.raises(ValueError, match=re.escape(str(file))):
        paths.load_path(file)


def test_non_path_files_raise_value_error(tmp_path):
    npy = tmp_path / "a.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ValueError, match="a.npy"):
        paths.load_path(npy)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz"):
        paths.load_path(other)
    with pytest.raises(FileNotFoundError):
        paths.load_path(tmp_path / "missing.npz")


def test_resample_then_save_load_keeps_bead_count(tmp_path):
    targets = paths.resample(
        jax.tree.map(jnp.asarray, {"lin": _nested_beads()["mlp/~/linear_1"]}), 4
    )
    paths.save_path(tmp_path / "t.npz", targets, num_points=4)
    loaded, meta = paths.load_path(tmp_path / "t.npz")
    chex.assert_trees_all_close(loaded, jax.tree.map(np.asarray, targets), atol=0)
    assert meta["num_points"] == loaded["lin"]["w"].shape[0] == 4
