"""Hessian spectra of a loss over a parameter pytree, by Lanczos.

Lanczos builds, from Hessian-vector products only, an orthonormal basis V in
which V H V^T = T is tridiagonal; the eigenvalues of T (Ritz values) converge to
the spectrum of H from the outside in, so a few dozen iterations give the
extreme eigenvalues. Started from a random unit probe v, the eigenpairs
(theta_k, y_k) of T are a Gauss quadrature: v^T g(H) v ~ sum_k y_k[0]^2 g(theta_k).
Averaging over probes (stochastic Lanczos quadrature, SLQ) estimates tr g(H) / n:
the eigenvalue density, a histogram, and the index (fraction of negative ones).

Everything works on the raveled parameters (`ravel_pytree`), takes static ints
for iteration counts, and can be jitted and vmapped over `params` and `key`.
Memory is num_probes * num_iterations * n floats per point (the bases are kept
for full reorthogonalization).

References:
  Lanczos, "An iteration method for the solution of the eigenvalue problem of
  linear differential and integral operators", 1950.
  Parlett, "The Symmetric Eigenvalue Problem", 1998 (ch. 6-7: reorthogonalization,
  Kahan's "twice is enough").
  Ubaru, Chen & Saad, "Fast estimation of tr(f(A)) via stochastic Lanczos
  quadrature", SIAM J. Matrix Anal. Appl. 2017.
  Ghorbani, Krishnan & Xiao, "An investigation into neural net optimization via
  Hessian eigenvalue density", ICML 2019.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from meta_opt.curvature import hessian_vector_product

PyTree = Any
LossFn = Callable[[PyTree], jax.Array]
_HIGHEST = jax.lax.Precision.HIGHEST  # no TF32/bf16 passes: orthogonality needs full float32


class Tridiagonal(NamedTuple):
    """A Lanczos tridiagonalization V H V^T = T, m = min(num_iterations, n).

    Attributes:
      alphas: the diagonal of T, [m].
      betas: the off-diagonal of T, [m - 1]; exactly 0 where the Krylov space was
        exhausted (breakdown) and Lanczos restarted from a new direction.
      basis: the orthonormal rows of V over the raveled parameters, [m, n].
    """

    alphas: jax.Array
    betas: jax.Array
    basis: jax.Array


def _check_dtype(dtype) -> jnp.dtype:
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            "float64 Lanczos needs 64-bit JAX: call "
            'jax.config.update("jax_enable_x64", True) (or work inside '
            "`with jax.enable_x64(True):`) before building the parameters"
        )
    return dtype


def _num_params(params: PyTree) -> int:
    return sum(jnp.size(leaf) for leaf in jax.tree_util.tree_leaves(params))


def _unit(w: jax.Array) -> jax.Array:
    norm = jnp.linalg.norm(w)
    return w / jnp.where(norm > 0, norm, 1)


def _orthogonalize(w: jax.Array, basis: jax.Array) -> jax.Array:
    """w minus its projection on the rows of `basis` (zero rows are harmless), done twice."""
    for _ in range(2):
        w = w - jnp.matmul(jnp.matmul(basis, w, precision=_HIGHEST), basis, precision=_HIGHEST)
    return w


def _least_covered_axis(basis: jax.Array) -> jax.Array:
    """The coordinate vector e_i with the smallest projection on the rows of `basis`.

    With k < n orthonormal rows the squared column norms sum to k, so the smallest
    is at most k / n and e_i keeps a component of norm >= sqrt(1 - k / n) after
    orthogonalization: a deterministic restart that never vanishes.
    """
    coverage = jnp.sum(jnp.square(basis), axis=0)
    return jax.nn.one_hot(jnp.argmin(coverage), basis.shape[1], dtype=basis.dtype)


def lanczos(
    loss_fn: LossFn, params: PyTree, *, key: jax.Array, num_iterations: int, dtype=jnp.float32
) -> Tridiagonal:
    """Tridiagonalizes the Hessian of `loss_fn` at `params` with full reorthogonalization.

    Every new direction is Gram-Schmidt orthogonalized twice against all previous
    ones, so the basis stays orthonormal to working precision and no spurious
    copies of converged Ritz values appear. On breakdown (the residual falls below
    sqrt(eps) times the largest |Hv| seen, e.g. when num_iterations exceeds the
    number of distinct eigenvalues) the basis spans an invariant subspace: beta is
    set to 0 and the iteration continues from the coordinate vector least covered
    by the basis, orthogonalized against it, so T stays V H V^T (block diagonal).

    Args:
      loss_fn: params -> scalar loss.
      params: the point, a pytree of floating arrays.
      key: PRNG key of the Gaussian unit start vector.
      num_iterations: m, a static int >= 1; clipped to the number of parameters n.
      dtype: float32, or float64 (needs `jax_enable_x64`).

    Returns:
      A `Tridiagonal(alphas [m], betas [m - 1], basis [m, n])`.
    """
    dtype = _check_dtype(dtype)
    if num_iterations < 1:
        raise ValueError(f"num_iterations must be >= 1, got {num_iterations}")
    flat, unravel = ravel_pytree(jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), params))
    n = flat.size
    m = min(num_iterations, n)
    basis = jnp.zeros((m, n), dtype).at[0].set(_unit(jax.random.normal(key, (n,), dtype)))
    tolerance = jnp.sqrt(jnp.finfo(dtype).eps)

    def step(j, carry):
        basis, alphas, betas, scale = carry
        v = basis[j]
        hv = hessian_vector_product(lambda x: loss_fn(unravel(x)), flat, v).astype(dtype)
        alpha = jnp.dot(v, hv, precision=_HIGHEST)
        residual = _orthogonalize(hv, basis)
        beta = jnp.linalg.norm(residual)
        scale = jnp.maximum(scale, jnp.linalg.norm(hv))
        broke = beta <= tolerance * scale
        fresh = _orthogonalize(_least_covered_axis(basis), basis)
        next_v = _unit(jnp.where(broke, fresh, residual))
        basis = basis.at[j + 1].set(next_v, mode="drop")  # the last step's is dropped
        return (basis, alphas.at[j].set(alpha), betas.at[j].set(jnp.where(broke, 0, beta)), scale)

    init = (basis, jnp.zeros(m, dtype), jnp.zeros(m, dtype), jnp.zeros([], dtype))
    basis, alphas, betas, _ = jax.lax.fori_loop(0, m, step, init)
    return Tridiagonal(alphas, betas[: m - 1], basis)


def tridiagonal_eigen(alphas: jax.Array, betas: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Eigenvalues of the tridiagonal T (ascending) and the first component of each eigenvector.

    Returns:
      (ritz_values [m], first_components [m]); the squared first components are
      the Gauss quadrature weights of the start vector and sum to 1.
    """
    t = jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)
    values, vectors = jnp.linalg.eigh(t)
    return values, vectors[0]


def hessian_extremes(
    loss_fn: LossFn, params: PyTree, *, key: jax.Array, num_iterations: int = 30, dtype=jnp.float32
) -> tuple[jax.Array, jax.Array]:
    """(smallest, largest) Ritz values of one Lanczos run: estimates of the extreme eigenvalues.

    Ritz values lie inside [lambda_min, lambda_max] and converge to the ends first.
    """
    t = lanczos(loss_fn, params, key=key, num_iterations=num_iterations, dtype=dtype)
    values, _ = tridiagonal_eigen(t.alphas, t.betas)
    return values[0], values[-1]


def spectral_density(
    loss_fn: LossFn,
    params: PyTree,
    *,
    key: jax.Array,
    num_iterations: int = 30,
    num_probes: int = 8,
    dtype=jnp.float32,
) -> tuple[jax.Array, jax.Array]:
    """Stochastic Lanczos quadrature: nodes and weights of the Hessian's eigenvalue density.

    Each probe is a Gaussian vector normalized to the unit sphere (E[v v^T] = I / n);
    its Ritz values are the nodes and its squared first eigenvector components the
    weights, so sum_k weights[p, k] g(nodes[p, k]) estimates tr g(H) / n.

    Returns:
      (nodes [num_probes, m], weights [num_probes, m]); each probe's weights sum to 1.
    """

    def probe(probe_key):
        t = lanczos(loss_fn, params, key=probe_key, num_iterations=num_iterations, dtype=dtype)
        nodes, first = tridiagonal_eigen(t.alphas, t.betas)
        return nodes, jnp.square(first)

    return jax.vmap(probe)(jax.random.split(key, num_probes))


def density_on_grid(
    nodes: jax.Array, weights: jax.Array, grid: jax.Array, *, sigma: float
) -> jax.Array:
    """The SLQ density smoothed by Gaussians of width `sigma`, at `grid` points, [len(grid)].

    Averaged over probes (all axes but the last); integrates to 1 over a grid that
    covers the spectrum with a few sigma to spare.
    """
    num_probes = nodes.size // nodes.shape[-1]
    z = (grid[:, None] - nodes.reshape(-1)) / sigma
    kernels = jnp.exp(-0.5 * z**2) / (sigma * jnp.sqrt(2 * jnp.pi))
    return kernels @ weights.reshape(-1) / num_probes


def histogram_mass(nodes: jax.Array, weights: jax.Array, edges: jax.Array) -> jax.Array:
    """SLQ estimate of the fraction of eigenvalues in each bin of `edges`, [len(edges) - 1].

    Bins are half-open [e_i, e_i+1) except the last, which is closed (numpy's rule);
    mass outside the edges is dropped.
    """
    num_probes = nodes.size // nodes.shape[-1]
    counts, _ = jnp.histogram(nodes.reshape(-1), bins=edges, weights=weights.reshape(-1))
    return counts / num_probes


def _index_from(nodes: jax.Array, weights: jax.Array, epsilon: float, n: int) -> jax.Array:
    """Weighted SLQ fraction below -epsilon, or the plain count once m = n (see `hessian_index`)."""
    if nodes.shape[-1] == n:  # a complete Krylov basis: the Ritz values are the spectrum
        return jnp.count_nonzero(nodes < -epsilon) / nodes.size
    return jnp.sum(jnp.where(nodes < -epsilon, weights, 0)) / (nodes.size // nodes.shape[-1])


def hessian_index(
    loss_fn: LossFn,
    params: PyTree,
    *,
    key: jax.Array,
    num_iterations: int = 30,
    num_probes: int = 8,
    epsilon: float = 1e-3,
    dtype=jnp.float32,
) -> jax.Array:
    """The fraction of Hessian eigenvalues below -epsilon, estimated by SLQ.

    This is an estimate: each probe's quadrature places its mass on num_iterations
    nodes, so its resolution is about 1 / num_iterations per probe near the
    threshold, and the random probes add a sampling error of about
    sqrt(2 p (1 - p) / (n * num_probes)) for a true fraction p. For small models
    use num_iterations >= n: the basis then spans the whole space, T is
    orthogonally similar to H, and the Ritz values below -epsilon are counted
    directly, an exact count up to rounding.

    Returns:
      A scalar in [0, 1] (multiply by n for the Morse index).
    """
    nodes, weights = spectral_density(
        loss_fn, params, key=key, num_iterations=num_iterations, num_probes=num_probes, dtype=dtype
    )
    return _index_from(nodes, weights, epsilon, _num_params(params))


def dense_hessian(loss_fn: LossFn, params: PyTree) -> jax.Array:
    """The n x n Hessian over the raveled parameters (small models and tests only)."""
    flat, unravel = ravel_pytree(params)
    return jax.hessian(lambda x: loss_fn(unravel(x)))(flat)


def exact_index(loss_fn: LossFn, params: PyTree, *, epsilon: float = 1e-3) -> jax.Array:
    """The fraction of eigenvalues below -epsilon from the dense Hessian (small models, tests)."""
    eigenvalues = jnp.linalg.eigvalsh(dense_hessian(loss_fn, params))
    return jnp.count_nonzero(eigenvalues < -epsilon) / eigenvalues.size


def spectra_at(
    loss_fn: LossFn,
    points: PyTree,
    *,
    key: jax.Array,
    num_iterations: int = 30,
    num_probes: int = 8,
    epsilon: float = 1e-3,
    relative: bool = False,
    dtype=jnp.float32,
) -> dict[str, jax.Array]:
    """Spectral summaries at P points (e.g. the beads of a path), in one vmap.

    Args:
      loss_fn: params -> scalar loss, the same at every point.
      points: a pytree of parameters whose leaves have a leading axis of length P.
      key: PRNG key, split into independent keys per point.
      num_iterations, num_probes, epsilon, dtype: as in `hessian_index`.
      relative: the threshold is epsilon times the largest |Ritz value| at each point
        (so that the index does not depend on the loss's scale), not epsilon itself.

    Returns:
      {"smallest", "largest", "index"}, each [P]: the outermost Ritz values over
      all probes (estimates of the extreme eigenvalues) and the index as
      `hessian_index` computes it.
    """
    n = _num_params(jax.tree_util.tree_map(lambda x: x[0], points))
    num_points = jax.tree_util.tree_leaves(points)[0].shape[0]

    def at_point(params, point_key):
        nodes, weights = spectral_density(
            loss_fn,
            params,
            key=point_key,
            num_iterations=num_iterations,
            num_probes=num_probes,
            dtype=dtype,
        )
        threshold = epsilon * jnp.max(jnp.abs(nodes)) if relative else epsilon
        return {
            "smallest": jnp.min(nodes),
            "largest": jnp.max(nodes),
            "index": _index_from(nodes, weights, threshold, n),
        }

    return jax.vmap(at_point)(points, jax.random.split(key, num_points))
