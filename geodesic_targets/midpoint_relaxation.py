"""The former shortener: a fixed number of pull-to-midpoint rounds, kept as a comparison.

Every round moves each interior point `pull` of the way to its neighbours' midpoint
and projects it back below alpha times its level (`project_below`). That is a Jacobi
iteration of the discrete Laplacian: its slowest mode shrinks by about
(1 - sin^2(pi / 2T)) per round, so a fixed number of rounds leaves a smoothed path,
not a shortest one, once T is large (200 rounds remove ~5% of that mode at T = 100).
Target sets up to 2026-11-26 were made with it (200 rounds); GEODESICS.md
"Converged shortening" measures it against `geodesic_targets.shortening`. Used by the
known-answer test and `benchmarks/bench_shorten_convergence.py` only.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from common.pytree import PyTree
from geodesic_targets.certify import point_levels
from geodesic_targets.paths import segment_lengths
from geodesic_targets.projection import project_below


def midpoint_relaxation(
    loss_fn: Callable[[PyTree], jax.Array],
    points: PyTree,
    levels: jax.Array,
    *,
    rounds: int,
    by: str = "index",
    pull: float = 0.5,
    alpha: float = 0.97,
    projection_steps: int = 8,
) -> PyTree:
    """`rounds` rounds of pull-to-midpoint and projection of the interior points of `points` [n, ...]."""
    max_step = jnp.mean(segment_lengths(points))

    def one_round(_, path):
        pulled = jax.tree_util.tree_map(
            lambda x: x.at[1:-1].set(x[1:-1] + pull * (0.5 * (x[:-2] + x[2:]) - x[1:-1])), path
        )
        targets = alpha * point_levels(levels, by, pulled)[1:-1]
        project = lambda p, t: project_below(loss_fn, p, t, projection_steps, max_step)
        moved = jax.vmap(project)(jax.tree_util.tree_map(lambda x: x[1:-1], pulled), targets)
        return jax.tree_util.tree_map(lambda x, y: x.at[1:-1].set(y), pulled, moved)

    return jax.lax.fori_loop(0, rounds, one_round, points)
