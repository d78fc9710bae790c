"""Gauss-Newton projection of a point below a loss level.

Holds `project_below`, the step that puts a path's points back at or below their
levels after they moved: converged shortening (`geodesic_targets.shortening`) runs it
after every energy step, and the fixed-rounds comparison
(`geodesic_targets.midpoint_relaxation`) after every pull to the midpoint. It lives
apart from both so that neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from common.pytree import PyTree


def _tree_dot(a: PyTree, b: PyTree) -> jax.Array:
    return sum(
        jnp.vdot(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
    )


def project_below(
    loss_fn: Callable[[PyTree], jax.Array],
    point: PyTree,
    target: jax.Array,
    steps: int,
    max_step: jax.Array,
) -> PyTree:
    """Gauss-Newton steps toward {loss <= target}, at most `steps`; stops once there.

    Each step moves p by (F(p) - target) / |grad F|^2 along -grad F (exact for a
    linear loss), at most `max_step` in norm. A point already below the target does
    not move (one loss evaluation; under `vmap` the loop runs until every point is
    done, and finished points stay put).
    """

    def keep_going(carry):
        _, step, done = carry
        return (~done) & (step < steps)

    def step_toward(carry):
        p, step, _ = carry
        value, g = jax.value_and_grad(loss_fn)(p)
        norm = jnp.sqrt(_tree_dot(g, g))
        excess = jnp.maximum(value - target, 0.0)
        distance = jnp.minimum(excess / jnp.maximum(norm, 1e-30), max_step)
        scale = jnp.where(norm > 0, distance / jnp.maximum(norm, 1e-30), 0.0)
        moved = jax.tree_util.tree_map(lambda x, gx: x - scale * gx, p, g)
        return moved, step + 1, excess <= 0

    point, _, _ = jax.lax.while_loop(
        keep_going, step_toward, (point, jnp.zeros([], jnp.int32), jnp.zeros([], bool))
    )
    return point
