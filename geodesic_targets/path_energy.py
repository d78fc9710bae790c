"""One exact step of the path-energy problem with linearized level constraints.

The shortened path minimizes the discrete path energy E = 1/2 sum_i |p_{i+1} - p_i|^2
over its interior points q_1 .. q_m (ends fixed), subject to one level constraint per
point, F(q_i) <= t_i. With every constraint linearized at the current points,
F(q_i) + g_i . (q_i' - q_i) <= t_i, the step is a quadratic program solved exactly here:
the energy's Hessian is the discrete Laplacian L (tridiagonal), whose inverse K is known
in closed form, so the new points are

    q_i' = c_i - sum_j K_ij mu_j g_j,

the chord c minus the constraint gradients spread along the path by K (a tent of
width the whole path), with multipliers mu >= 0 from the m-dimensional dual

    min_{mu >= 0} 1/2 mu^T M mu - a^T mu,   M_ij = K_ij g_i . g_j,
    a_i = F(q_i) + g_i . (c_i - q_i) - t_i.

M is positive definite (a Schur product of K with a Gram matrix of non-zero gradients),
so mu is unique; the dual is a non-negative least-squares problem of m unknowns.

Why this and not pull-to-midpoint rounds: those are Jacobi sweeps on L, whose slowest
mode shrinks by ~(1 - sin^2(pi / 2T)) per round, so they need O(T^2) rounds; here L is
inverted exactly every step, and the rate is set by how far the constraints' curvature
(left out of the step) bends the path, not by T (GEODESICS.md, "Converged shortening").
Host code in float64 (numpy, scipy); the losses and gradients come from a jitted call.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.optimize


def green_matrix(num_interior: int) -> np.ndarray:
    """The inverse of tridiag(-1, 2, -1) of size m: K_ij = min(i, j) (m + 1 - max(i, j)) / (m + 1)."""
    i = np.arange(1, num_interior + 1)
    low, high = np.minimum.outer(i, i), np.maximum.outer(i, i)
    return low * (num_interior + 1 - high) / (num_interior + 1.0)


def chord_points(start: np.ndarray, end: np.ndarray, num_points: int) -> np.ndarray:
    """`num_points` equally spaced points of the segment start -> end, [n, D] (the energy's minimizer)."""
    ts = np.linspace(0.0, 1.0, num_points)[:, None]
    return (1 - ts) * start[None] + ts * end[None]


def solve_multipliers(gram_weighted: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """mu >= 0 minimizing 1/2 mu^T M mu - a^T mu, by non-negative least squares on M's Cholesky factor.

    A ridge of 1e-12 times M's largest diagonal keeps the factorization defined when
    gradients vanish; it only over-satisfies constraints by that fraction.
    """
    m = len(offsets)
    ridge = 1e-12 * max(float(np.max(np.diag(gram_weighted))), 1e-300)
    upper = scipy.linalg.cholesky(gram_weighted + ridge * np.eye(m), lower=False)
    rhs = scipy.linalg.solve_triangular(upper.T, offsets, lower=True)
    return scipy.optimize.nnls(upper, rhs, maxiter=50 * m)[0]


def energy_step(
    points: np.ndarray, values: np.ndarray, grads: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The interior points minimizing the energy under the constraints linearized at `points`.

    Args:
      points: the path, [n, D] (ends fixed).
      values: F at the interior points, [n - 2].
      grads: dF at the interior points, [n - 2, D].
      targets: the levels the interior points must reach, [n - 2].

    Returns:
      `(new interior points [n - 2, D], multipliers [n - 2])`, in float64.
    """
    points, grads = np.asarray(points, np.float64), np.asarray(grads, np.float64)
    n = points.shape[0]
    kernel = green_matrix(n - 2)
    chord = chord_points(points[0], points[-1], n)[1:-1]
    offsets = (
        np.asarray(values, np.float64)
        + np.einsum("id,id->i", grads, chord - points[1:-1])
        - np.asarray(targets, np.float64)
    )
    if np.all(offsets <= 0):  # the chord already meets every linearized constraint
        return chord, np.zeros(n - 2)
    mu = solve_multipliers(kernel * (grads @ grads.T), offsets)
    return chord - kernel @ (mu[:, None] * grads), mu
