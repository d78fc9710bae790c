"""Lanczos tridiagonalization of a loss's Hessian over a parameter pytree.

Lanczos builds, from Hessian-vector products only, an orthonormal basis V in
which V H V^T = T is tridiagonal; the eigenvalues of T (Ritz values) converge to
the spectrum of H from the outside in, so a few dozen iterations give the
extreme eigenvalues. This module holds the iteration itself (`lanczos`, with full
reorthogonalization and restarts on breakdown) and the eigendecomposition of T
(`tridiagonal_eigen`); the spectral estimates built on them (extremes, density,
index) are in `geodesic_targets.spectrum`.

It works on the raveled parameters (`ravel_pytree`), takes a static int for the
iteration count, and can be jitted and vmapped over `params` and `key`. Memory is
num_iterations * n floats (the basis is kept for full reorthogonalization).

References:
  Lanczos, "An iteration method for the solution of the eigenvalue problem of
  linear differential and integral operators", 1950.
  Parlett, "The Symmetric Eigenvalue Problem", 1998 (ch. 6-7: reorthogonalization,
  Kahan's "twice is enough").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from common.pytree import PyTree
from meta_opt.curvature import hessian_vector_product

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
