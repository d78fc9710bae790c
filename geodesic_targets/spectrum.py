"""Hessian spectra of a loss over a parameter pytree, by Lanczos.

Lanczos (`geodesic_targets.lanczos`) builds, from Hessian-vector products only,
an orthonormal basis V in which V H V^T = T is tridiagonal; the eigenvalues of T
(Ritz values) converge to the spectrum of H from the outside in, so a few dozen
iterations give the extreme eigenvalues. Started from a random unit probe v, the
eigenpairs (theta_k, y_k) of T are a Gauss quadrature: v^T g(H) v ~ sum_k y_k[0]^2 g(theta_k).
Averaging over probes (stochastic Lanczos quadrature, SLQ) estimates tr g(H) / n:
the eigenvalue density, a histogram, and the index (fraction of negative ones).
`lanczos`, `tridiagonal_eigen` and `Tridiagonal` are re-exported here.

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

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from geodesic_targets.lanczos import LossFn, PyTree, Tridiagonal, lanczos, tridiagonal_eigen

__all__ = [
    "Tridiagonal",  # re-exported from geodesic_targets.lanczos, with the two below
    "lanczos",
    "tridiagonal_eigen",
    "dense_hessian",
    "density_on_grid",
    "exact_index",
    "hessian_extremes",
    "hessian_index",
    "histogram_mass",
    "spectra_at",
    "spectral_density",
]


def _num_params(params: PyTree) -> int:
    return sum(jnp.size(leaf) for leaf in jax.tree_util.tree_leaves(params))


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
