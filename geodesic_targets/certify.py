"""Certifying a path against a level schedule: the loss on a grid of every segment.

A path is certified when, at every grid point of every segment, the loss is at or
below the schedule's level there (`LevelSchedule`): for a schedule by arc-length
fraction, the level at the grid point's own fraction of the path; for a schedule by
point index, the higher of the segment's two end levels. A constant schedule is
plain level-set membership, F <= lambda, as in Freeman & Bruna's string sampling.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from common.pytree import PyTree
from geodesic_targets.interpolation import interpolated_losses
from geodesic_targets.paths import segment_lengths


def point_fractions(beads: PyTree) -> jax.Array:
    """Each bead's arc-length fraction of the path, [n] from 0 to 1 (all 0 for a point path)."""
    cum = jnp.concatenate([jnp.zeros(1), jnp.cumsum(segment_lengths(beads))])
    return cum / jnp.where(cum[-1] > 0, cum[-1], 1.0)


def point_levels(levels: jax.Array, by: str, beads: PyTree) -> jax.Array:
    """The level of each bead, [n]: by index, `levels` itself; by fraction, at its arc fraction."""
    if by == "index":
        return jnp.asarray(levels)
    return jnp.interp(point_fractions(beads), jnp.linspace(0.0, 1.0, len(levels)), levels)


def grid_levels(levels: jax.Array, by: str, beads: PyTree, ts: jax.Array) -> jax.Array:
    """The level at every grid point of every segment, [n - 1, len(ts)]."""
    levels = jnp.asarray(levels)
    if by == "index":
        upper = jnp.maximum(levels[:-1], levels[1:])
        return jnp.broadcast_to(upper[:, None], (upper.shape[0], ts.shape[0]))
    seg = segment_lengths(beads)
    cum = jnp.concatenate([jnp.zeros(1), jnp.cumsum(seg)])
    fractions = (cum[:-1, None] + ts[None, :] * seg[:, None]) / jnp.where(cum[-1] > 0, cum[-1], 1.0)
    return jnp.interp(fractions, jnp.linspace(0.0, 1.0, levels.shape[0]), levels)


def segment_excess(
    loss_fn: Callable[[PyTree], jax.Array],
    lefts: PyTree,
    rights: PyTree,
    level_grid: jax.Array,
    ts: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """How far each segment's interpolated loss rises above its levels.

    Args:
      loss_fn: the certifying loss.
      lefts, rights: the segments' ends, stacked along axis 0 ([S, ...]).
      level_grid: the level at each grid point, [S, len(ts)].
      ts: the grid of t in [0, 1].

    Returns:
      `(max excess [S], t of the max excess [S], max loss [S])`; a segment is
      certified where its max excess is <= 0.
    """
    losses = jax.vmap(lambda a, b: interpolated_losses(loss_fn, a, b, ts))(lefts, rights)
    excess = losses - level_grid
    return jnp.max(excess, axis=1), ts[jnp.argmax(excess, axis=1)], jnp.max(losses, axis=1)


def path_excess(
    loss_fn: Callable[[PyTree], jax.Array], beads: PyTree, levels: jax.Array, by: str, ts: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """`(max excess, max loss)` of every segment of a stacked path, [n - 1] each."""
    lefts = jax.tree_util.tree_map(lambda x: x[:-1], beads)
    rights = jax.tree_util.tree_map(lambda x: x[1:], beads)
    excess, _, top = segment_excess(loss_fn, lefts, rights, grid_levels(levels, by, beads, ts), ts)
    return excess, top
