"""Lanczos Hessian spectra against known spectra: rotated quadratics, a saddle family, an MLP."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from geodesic_targets.spectrum import (
    dense_hessian,
    density_on_grid,
    exact_index,
    hessian_extremes,
    hessian_index,
    histogram_mass,
    lanczos,
    spectra_at,
    spectral_density,
    tridiagonal_eigen,
)

N = 50
# Known spectrum: 10 negative eigenvalues in [-2, -0.5], 40 positive in [0.5, 10].
D = np.concatenate([np.linspace(-2.0, -0.5, 10), np.linspace(0.5, 10.0, 40)])
NEGATIVE_FRACTION = 10 / N


def rotation(seed: int, n: int = N) -> np.ndarray:
    """A random orthogonal matrix, from the QR decomposition of a seeded normal matrix."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q


def flatten(theta) -> jax.Array:
    return jnp.concatenate([theta["a"], theta["b"].ravel()])


def make_params(x) -> dict:
    """The two-leaf pytree {"a": (30,), "b": (4, 5)} holding a 50-vector."""
    x = jnp.asarray(x)
    return {"a": x[:30], "b": x[30:].reshape(4, 5)}


def rotated_quadratic(d: np.ndarray, seed: int = 0, dtype=jnp.float32):
    """f(theta) = 1/2 x^T Q diag(d) Q^T x over the pytree theta, x its 50 entries."""
    q = rotation(seed)
    h = jnp.asarray(q @ np.diag(d) @ q.T, dtype)
    return lambda theta: 0.5 * flatten(theta) @ h @ flatten(theta)


QUADRATIC = rotated_quadratic(D)
POINT = make_params(np.random.default_rng(1).normal(size=N).astype(np.float32))
KEY = jax.random.PRNGKey(0)


def test_extremes_of_rotated_quadratic():
    smallest, largest = jax.jit(functools.partial(hessian_extremes, QUADRATIC))(POINT, key=KEY)
    np.testing.assert_allclose(smallest, D.min(), rtol=1e-2)
    np.testing.assert_allclose(largest, D.max(), rtol=1e-2)


def test_index_is_exact_with_a_full_krylov_basis():
    # num_iterations >= n: the Ritz values are the spectrum, counted exactly.
    index = jax.jit(functools.partial(hessian_index, QUADRATIC, num_iterations=N, num_probes=2))
    assert float(index(POINT, key=KEY)) == pytest.approx(NEGATIVE_FRACTION, abs=1e-6)
    exact = jax.jit(functools.partial(exact_index, QUADRATIC, epsilon=1e-3))(POINT)
    assert float(exact) * N == pytest.approx(10, abs=1e-5)


def test_slq_index_with_few_iterations():
    # Sampling std ~ sqrt(2 p (1 - p) / (n num_probes)) = 0.014 here; tolerance 0.05.
    index = jax.jit(functools.partial(hessian_index, QUADRATIC, num_iterations=20, num_probes=32))
    assert abs(float(index(POINT, key=KEY)) - NEGATIVE_FRACTION) < 0.05


def test_slq_histogram_and_density_match_the_known_spectrum():
    density = jax.jit(
        functools.partial(spectral_density, QUADRATIC, num_iterations=20, num_probes=32)
    )
    nodes, weights = density(POINT, key=jax.random.PRNGKey(3))
    assert nodes.shape == weights.shape == (32, 20)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)

    edges = np.linspace(-3.0, 11.0, 8)  # 7 bins of width 2
    known = np.histogram(D, bins=edges)[0] / N
    mass = histogram_mass(nodes, weights, jnp.asarray(edges))
    assert 0.5 * np.abs(np.asarray(mass) - known).sum() < 0.1  # total variation
    # (uniform weights 1/m in place of the quadrature weights give ~0.12.)

    grid = jnp.linspace(-10.0, 20.0, 3001)
    smoothed = density_on_grid(nodes, weights, grid, sigma=0.5)
    exact = density_on_grid(jnp.asarray(D), jnp.full(N, 1.0 / N), grid, sigma=0.5)
    step = float(grid[1] - grid[0])
    assert float(smoothed.sum()) * step == pytest.approx(1.0, abs=1e-3)
    assert float(jnp.abs(smoothed - exact).sum()) * step < 0.2  # L1 distance of densities


def test_lanczos_basis_is_orthonormal_and_tridiagonalizes():
    t = jax.jit(functools.partial(lanczos, QUADRATIC, num_iterations=40))(POINT, key=KEY)
    v = np.asarray(t.basis)
    assert np.abs(v @ v.T - np.eye(40)).max() < 1e-4
    h = np.asarray(jax.jit(functools.partial(dense_hessian, QUADRATIC))(POINT))
    tridiagonal = np.diag(t.alphas) + np.diag(t.betas, 1) + np.diag(t.betas, -1)
    np.testing.assert_allclose(v @ h @ v.T, tridiagonal, atol=1e-4)


def test_float64_gives_tighter_agreement():
    with pytest.raises(ValueError, match="jax_enable_x64"), jax.enable_x64(False):
        lanczos(QUADRATIC, POINT, key=KEY, num_iterations=5, dtype=jnp.float64)
    with jax.enable_x64(True):
        loss = rotated_quadratic(D, dtype=jnp.float64)
        point = make_params(np.random.default_rng(1).normal(size=N))
        t = lanczos(loss, point, key=KEY, num_iterations=N, dtype=jnp.float64)
        assert t.basis.dtype == jnp.float64
        assert np.abs(np.asarray(t.basis @ t.basis.T) - np.eye(N)).max() < 1e-12
        values, _ = tridiagonal_eigen(t.alphas, t.betas)
        np.testing.assert_allclose(np.asarray(values), np.sort(D), rtol=0, atol=1e-10)


def saddle_family(s_values, seed: int = 2):
    """f = sum_i d_i (y_i^2 / 2 + y_i^3 / 6), y = Q^T x: its Hessian Q diag(d (1 + y)) Q^T
    is s Q diag(d) Q^T at y = (s - 1) 1, so one loss gives differently scaled spectra."""
    q = rotation(seed)
    d, qj = jnp.asarray(D, jnp.float32), jnp.asarray(q, jnp.float32)

    def loss(theta):
        y = qj.T @ flatten(theta)
        return jnp.sum(d * (y**2 / 2 + y**3 / 6))

    xs = np.stack([q @ np.full(N, s - 1.0) for s in s_values]).astype(np.float32)
    return loss, {"a": jnp.asarray(xs[:, :30]), "b": jnp.asarray(xs[:, 30:].reshape(-1, 4, 5))}


def test_vmapped_spectra_over_scaled_points():
    scales = np.array([0.5, 1.0, 3.0])
    loss, points = saddle_family(scales)
    summary = jax.jit(functools.partial(spectra_at, loss, num_iterations=N, num_probes=2))(
        points, key=KEY
    )
    np.testing.assert_allclose(summary["smallest"], scales * D.min(), rtol=1e-2)
    np.testing.assert_allclose(summary["largest"], scales * D.max(), rtol=1e-2)
    np.testing.assert_allclose(summary["index"], NEGATIVE_FRACTION, atol=1e-6)

    keys = jax.random.split(jax.random.PRNGKey(5), len(scales))
    extremes = jax.jit(jax.vmap(functools.partial(hessian_extremes, loss, num_iterations=30)))
    smallest, largest = extremes(points, key=keys)
    np.testing.assert_allclose(smallest, scales * D.min(), rtol=1e-2)
    np.testing.assert_allclose(largest, scales * D.max(), rtol=1e-2)


def test_breakdown_gives_finite_values_and_the_right_extremes():
    # Three distinct eigenvalues: the Krylov space is exhausted after 3 steps.
    loss = rotated_quadratic(np.repeat([-1.0, 2.0, 5.0], [10, 20, 20]), seed=4)
    t = jax.jit(functools.partial(lanczos, loss, num_iterations=10))(POINT, key=KEY)
    assert all(np.isfinite(np.asarray(x)).all() for x in t)
    assert float(t.betas[2]) == 0.0  # breakdown detected, then restarted
    assert np.abs(np.asarray(t.basis @ t.basis.T) - np.eye(10)).max() < 1e-4
    values, first = tridiagonal_eigen(t.alphas, t.betas)
    np.testing.assert_allclose([values[0], values[-1]], [-1.0, 5.0], rtol=1e-4)
    np.testing.assert_allclose(float(jnp.sum(first**2)), 1.0, atol=1e-5)

    zero_hessian = lanczos(lambda theta: jnp.sum(flatten(theta)), POINT, key=KEY, num_iterations=4)
    assert all(np.isfinite(np.asarray(x)).all() for x in zero_hessian)
    np.testing.assert_array_equal(zero_hessian.alphas, 0.0)


def test_extremes_of_a_tanh_mlp_match_the_dense_hessian():
    keys = jax.random.split(jax.random.PRNGKey(7), 5)
    params = {
        "w1": jax.random.normal(keys[0], (4, 6)),
        "b1": jax.random.normal(keys[1], (6,)),
        "w2": jax.random.normal(keys[2], (6, 1)),
    }
    inputs, targets = jax.random.normal(keys[3], (16, 4)), jax.random.normal(keys[4], (16, 1))

    def loss(p):
        return jnp.mean((jnp.tanh(inputs @ p["w1"] + p["b1"]) @ p["w2"] - targets) ** 2)

    flat, unravel = ravel_pytree(params)
    hessian = jax.jit(jax.hessian(lambda x: loss(unravel(x))))(flat)
    eigenvalues = np.linalg.eigvalsh(np.asarray(hessian))
    smallest, largest = jax.jit(functools.partial(hessian_extremes, loss))(params, key=KEY)
    radius = np.abs(eigenvalues).max()  # 1% of the spectral radius
    assert abs(float(smallest) - eigenvalues[0]) < 1e-2 * radius
    assert abs(float(largest) - eigenvalues[-1]) < 1e-2 * radius
    assert eigenvalues[0] < 0 < eigenvalues[-1]  # a genuinely indefinite Hessian


def test_a_relative_threshold_makes_the_index_independent_of_the_loss_scale():
    # threshold 0.095 x 10 = 0.95 times the scale: only the 7 eigenvalues -2 ... -1 count, at every scale
    points = jax.tree_util.tree_map(lambda x: x[None], POINT)
    index = lambda scale, relative, epsilon: float(
        spectra_at(
            lambda theta: scale * QUADRATIC(theta),
            points,
            key=KEY,
            num_iterations=N,
            num_probes=1,
            epsilon=epsilon,
            relative=relative,
        )["index"][0]
    )
    below = np.count_nonzero(D < -0.095 * D.max()) / N
    assert 0 < below < NEGATIVE_FRACTION
    for scale in (0.01, 1.0, 100.0):
        assert index(scale, True, 0.095) == pytest.approx(below, abs=1e-6)
    assert index(0.01, False, 0.1) == pytest.approx(0.0, abs=1e-6)  # absolute: scale-dependent
    assert index(100.0, False, 0.1) == pytest.approx(NEGATIVE_FRACTION, abs=1e-6)
