"""Losses along straight segments between parameter pytrees.

The maximum of the loss on the segment between two beads decides whether the
pair is connected inside a level set; every segment of a string is measured in
one vmapped call.

References:
  Goodfellow, Vinyals & Saxe, "Qualitatively characterizing neural network
  optimization problems", ICLR 2015 (linear interpolation).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from common.pytree import PyTree

LossFn = Callable[[PyTree], jax.Array]


def lerp(theta_a: PyTree, theta_b: PyTree, t: jax.Array) -> PyTree:
    """(1 - t) theta_a + t theta_b."""
    return jax.tree_util.tree_map(lambda a, b: (1 - t) * a + t * b, theta_a, theta_b)


def grid(num_points: int) -> jax.Array:
    """`num_points` evenly spaced values of t in [0, 1], both ends included."""
    if num_points < 2:
        raise ValueError(f"an interpolation grid needs at least 2 points, got {num_points}")
    return jnp.linspace(0.0, 1.0, num_points)


def interpolated_losses(
    loss_fn: LossFn, theta_a: PyTree, theta_b: PyTree, ts: jax.Array
) -> jax.Array:
    """The loss at each t of `ts` on the segment from theta_a to theta_b, in one vmap."""
    return jax.vmap(lambda t: loss_fn(lerp(theta_a, theta_b, t)))(ts)


def barrier(
    loss_fn: LossFn, theta_a: PyTree, theta_b: PyTree, ts: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The maximum interpolated loss on the segment and the t where it is reached."""
    losses = interpolated_losses(loss_fn, theta_a, theta_b, ts)
    return jnp.max(losses), ts[jnp.argmax(losses)]


def segment_barriers(
    loss_fn: LossFn, lefts: PyTree, rights: PyTree, ts: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """`barrier` for many segments at once; `lefts`/`rights` are stacked along axis 0.

    Returns:
      `(max_losses [S], argmax_ts [S])`.
    """
    return jax.vmap(lambda a, b: barrier(loss_fn, a, b, ts))(lefts, rights)
