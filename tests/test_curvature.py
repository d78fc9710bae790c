"""ESGD and Jacobi against analytic curvature: known Hessians, numpy formulas, saddles."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from meta_opt import (
    curvature_preconditioner,
    esgd,
    hessian_vector_product,
    jacobi,
    scale_by_curvature,
)

# A symmetric, non-diagonal, indefinite Hessian (eigenvalues of both signs).
H = np.array(
    [[2.0, -1.0, 0.5, 0.0], [-1.0, -3.0, 1.0, 0.2], [0.5, 1.0, 0.5, -2.0], [0.0, 0.2, -2.0, 1.0]]
)


def quadratic(h: np.ndarray, b: np.ndarray | None = None):
    """f(theta) = 1/2 theta^T H theta - b^T theta, with the given H."""
    h = jnp.asarray(h, jnp.float32)
    b = jnp.zeros(h.shape[0]) if b is None else jnp.asarray(b, jnp.float32)
    return lambda theta: 0.5 * theta @ h @ theta - b @ theta


def probe_many(estimator: str, h: np.ndarray, num_probes: int, ema_decay=None) -> np.ndarray:
    """The preconditioner after `num_probes` probes (one per update) at theta = 1."""
    f = quadratic(h)
    tx = scale_by_curvature(estimator, update_interval=1, ema_decay=ema_decay, key=3)
    theta = jnp.ones(h.shape[0])

    def step(state, _):
        _, state = tx.update(jax.grad(f)(theta), state, theta, value_fn=f)
        return state, None

    state, _ = jax.lax.scan(step, tx.init(theta), None, length=num_probes)
    assert int(state.num_probes) == num_probes
    return np.asarray(curvature_preconditioner(estimator, state, ema_decay))


def test_hessian_vector_product_matches_matrix_product():
    assert np.any(np.linalg.eigvalsh(H) < 0) and np.any(np.linalg.eigvalsh(H) > 0)
    v = np.array([0.3, -1.2, 2.0, 0.7])
    hv = hessian_vector_product(quadratic(H), jnp.ones(4), jnp.asarray(v, jnp.float32))
    np.testing.assert_allclose(hv, H @ v, rtol=1e-5)


def test_equilibration_converges_to_squared_row_norms():
    estimate = probe_many("equilibration", H, 20000) ** 2
    np.testing.assert_allclose(estimate, np.sum(H**2, axis=1), rtol=0.05)


def test_updates_equal_the_numpy_formula():
    lr, damping = 0.3, 1e-2
    tx = esgd(lr, damping=damping, update_interval=20, key=4)
    theta = jnp.array([1.0, -2.0, 0.5, 3.0])
    f = quadratic(H)
    state = tx.init(theta)
    first, state = tx.update(jax.grad(f)(theta), state, theta, value_fn=f)  # probes
    # The documented probe: v ~ N(0, I) drawn with the second half of split(key).
    v = np.asarray(
        optax.tree_utils.tree_random_like(jax.random.split(jax.random.PRNGKey(4))[1], theta),
        np.float64,
    )
    d = (H @ v) ** 2  # D after k = 1 probe
    expected = -lr * (H @ np.asarray(theta)) / (np.sqrt(d / 1) + damping)
    np.testing.assert_allclose(first, expected, rtol=1e-4)
    moved = theta + first
    second, _ = tx.update(jax.grad(f)(moved), state, moved, value_fn=f)  # no new probe
    expected = -lr * (H @ np.asarray(moved, np.float64)) / (np.sqrt(d) + damping)
    np.testing.assert_allclose(second, expected, rtol=1e-4)


def test_refresh_step_accumulates_squared_hessian_probe():
    tx = scale_by_curvature("equilibration", update_interval=20, key=5)
    theta = jnp.ones(4)
    state = tx.init(theta)
    _, new_state = tx.update(jnp.ones(4), state, theta, value_fn=quadratic(H))
    # The documented probe: v ~ N(0, I) drawn with the second half of split(key).
    v = np.asarray(optax.tree_utils.tree_random_like(jax.random.split(state.key)[1], theta))
    np.testing.assert_allclose(new_state.accumulator, (H @ v) ** 2, rtol=1e-5)
    assert int(new_state.num_probes) == 1


def test_probes_happen_every_update_interval():
    tx = scale_by_curvature("equilibration", update_interval=20)
    theta, f = jnp.ones(4), quadratic(H)
    step = jax.jit(lambda state: tx.update(jnp.ones(4), state, theta, value_fn=f)[1])
    state = tx.init(theta)
    for _ in range(45):
        state = step(state)
    assert int(state.num_probes) == 3 and int(state.count) == 45  # steps 0, 20, 40


def run_optimizer(tx, f, theta, steps=100):
    """`steps` updates of `tx` on `f` from `theta`, as one jitted scan."""

    def step(carry, _):
        theta, state = carry
        updates, state = tx.update(jax.grad(f)(theta), state, theta, value_fn=f)
        return (optax.apply_updates(theta, updates), state), None

    (theta, _), _ = jax.jit(lambda t: jax.lax.scan(step, (t, tx.init(t)), None, length=steps))(
        theta
    )
    return theta


def test_esgd_beats_sgd_on_an_ill_conditioned_quadratic():
    rng = np.random.default_rng(0)
    off = rng.normal(scale=0.05, size=(8, 8))
    h = np.diag(np.logspace(0, 3, 8)) + (off + off.T) / 2
    b = rng.normal(size=8)
    f = quadratic(h, b)
    optimum = float(f(jnp.asarray(np.linalg.solve(h, b), jnp.float32)))
    grid = np.logspace(-4, 0, 9)
    theta0 = jnp.zeros(8)

    def best(make):
        gaps = [float(f(run_optimizer(make(lr), f, theta0))) - optimum for lr in grid]
        gaps = [g if np.isfinite(g) else np.inf for g in gaps]
        return min(gaps)

    sgd_gap = best(optax.sgd)
    esgd_gap = best(lambda lr: esgd(lr, update_interval=5))
    assert esgd_gap < 0.1 * sgd_gap, (esgd_gap, sgd_gap)


def test_on_a_saddle_jacobi_collapses_while_equilibration_stays_positive():
    saddle = np.array([[0.0, 1.0], [1.0, 0.0]])  # curvatures +1 and -1; zero diagonal
    equilibration = probe_many("equilibration", saddle, 10000)
    np.testing.assert_allclose(equilibration, [1.0, 1.0], rtol=0.05)  # row norms of H
    few, many = probe_many("jacobi", saddle, 100), probe_many("jacobi", saddle, 10000)
    assert np.all(many < 0.05 * equilibration)
    assert np.mean(many) < np.mean(few)


def test_ema_is_bias_corrected_and_equal_to_the_mean_after_one_probe():
    f, theta = quadratic(H), jnp.ones(4)
    first = [
        esgd(0.1, ema_decay=decay, key=1).update(
            jax.grad(f)(theta), esgd(0.1, ema_decay=decay, key=1).init(theta), theta, value_fn=f
        )[0]
        for decay in (None, 0.9)
    ]
    np.testing.assert_allclose(first[0], first[1], rtol=1e-5)


def test_momentum_accumulates_the_preconditioned_step():
    f, theta = quadratic(H), jnp.ones(4)
    tx = esgd(0.1, update_interval=1000, momentum=0.9)
    state = tx.init(theta)
    grad = jax.grad(f)(theta)
    first, state = tx.update(grad, state, theta, value_fn=f)
    second, _ = tx.update(grad, state, theta, value_fn=f)  # same D, no new probe
    np.testing.assert_allclose(second, 1.9 * np.asarray(first), rtol=1e-5)


def test_missing_objective_is_a_clear_error():
    tx = jacobi(0.1)
    with pytest.raises(ValueError, match="value_fn"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)), jnp.ones(2))
    with pytest.raises(ValueError, match="estimator"):
        scale_by_curvature("newton")
