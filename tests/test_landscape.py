"""Points to measure a landscape at: segment high points, trajectory points, their spectra, the fit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from geodesic_targets.landscape import (
    index_loss_fit,
    measure_points,
    record_trajectory,
    segment_high_points,
)
from geodesic_targets.options import SpectrumOptions
from geodesic_targets.paths import stack


def bump(params):
    """A ridge at x = 1: exp(-(x - 1)^2 / 0.1) plus a quadratic in y."""
    return jnp.exp(-((params["x"] - 1.0) ** 2) / 0.1) + 0.5 * params["y"] ** 2


def test_segment_high_points_find_each_segments_ridge():
    beads = stack(
        [
            {"x": jnp.float32(0.0), "y": jnp.float32(0.0)},
            {"x": jnp.float32(2.0), "y": jnp.float32(0.0)},
            {"x": jnp.float32(2.0), "y": jnp.float32(2.0)},
        ]
    )
    points, ts, losses = segment_high_points(bump, beads, num_grid=41)
    # segment 1 crosses the ridge at x = 1 (t = 1/2); segment 2 climbs in y to its end (t = 1)
    np.testing.assert_allclose(ts, [0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(points["x"], [1.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(losses, [1.0, np.exp(-10.0) + 2.0], rtol=1e-5)


def test_record_trajectory_keeps_the_points_of_a_hand_run_loop():
    objective = lambda params, key: jnp.sum((params["w"] - jax.random.normal(key, (3,))) ** 2)
    start, key = {"w": jnp.ones(3)}, jax.random.PRNGKey(4)
    points, steps = record_trajectory(
        objective, optax.sgd(0.1), start, key=key, num_steps=6, num_points=4
    )
    assert steps.tolist() == [0, 2, 4, 6]
    params, expected = start, [start["w"]]
    for t, k in enumerate(jax.random.split(key, 6), start=1):
        params = {"w": params["w"] - 0.1 * jax.grad(objective)(params, k)["w"]}
        if t in (2, 4, 6):
            expected.append(params["w"])
    np.testing.assert_allclose(points["w"], np.stack(expected), rtol=1e-6)
    with pytest.raises(ValueError, match="num_points"):
        record_trajectory(objective, optax.sgd(0.1), start, key=key, num_steps=6, num_points=1)


def test_measure_points_on_a_saddle_family():
    # f = 1/2 sum_i d_i x_i^2 with d = (-1, -1, 1, 2, 3, 4) * s: index 1/3, extremes -s and 4s at every x
    d = jnp.asarray([-1.0, -1.0, 1.0, 2.0, 3.0, 4.0])
    loss = lambda params: 0.5 * jnp.sum(params["s"] * d * params["x"] ** 2) + 0.0 * params["s"]
    scales = jnp.asarray([0.5, 1.0, 2.0, 3.0, 5.0])
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 6))
    points = {"x": x, "s": scales}
    fixed = lambda params: loss({"x": params["x"], "s": jax.lax.stop_gradient(params["s"])})
    options = SpectrumOptions(num_iterations=7, num_probes=2, chunk=2)  # 7 = all parameters: exact
    measured = measure_points(fixed, points, key=jax.random.PRNGKey(1), options=options)
    assert set(measured) == {"loss", "grad_norm", "smallest", "largest", "index"}
    # 6 of the 7 coordinates curve (s is held fixed: a zero eigenvalue), 2 of them downwards
    np.testing.assert_allclose(measured["index"], 2 / 7, atol=1e-6)
    np.testing.assert_allclose(measured["smallest"], -np.asarray(scales), rtol=1e-4)
    np.testing.assert_allclose(measured["largest"], 4 * np.asarray(scales), rtol=1e-4)
    np.testing.assert_allclose(measured["loss"], jax.vmap(fixed)(points), rtol=1e-6)
    grad_norms = np.linalg.norm(np.asarray(scales)[:, None] * np.asarray(d) * np.asarray(x), axis=1)
    np.testing.assert_allclose(measured["grad_norm"], grad_norms, rtol=1e-5)


def test_index_loss_fit_recovers_a_line_and_refuses_too_few_points():
    losses = np.array([0.1, 0.4, 0.9, 1.6])
    fit = index_loss_fit(losses, 0.2 * losses + 0.05)
    assert fit["slope"] == pytest.approx(0.2) and fit["intercept"] == pytest.approx(0.05)
    assert fit["correlation"] == pytest.approx(1.0) and fit["points"] == 4
    assert np.isnan(index_loss_fit(losses[:2], losses[:2])["slope"])
    assert np.isnan(index_loss_fit(np.ones(4), losses)["slope"])
