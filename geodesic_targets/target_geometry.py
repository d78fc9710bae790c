"""How a target path differs from the chord and from the teacher, and where its T points sit.

Measured per pair before any meta-training, so that a target set can be judged as
supervision: a path of normalized length 1 that stays on the chord is chord imitation,
whatever produced it.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from common.pytree import PyTree
from geodesic_targets.certify import path_excess
from geodesic_targets.interpolation import grid, interpolated_losses
from geodesic_targets.paths import bead, resample, stack


def chord_deviation(beads: PyTree) -> float:
    """The largest distance of a bead from the chord between the ends, over the chord's length."""
    flat = jax.vmap(
        lambda p: jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(p)])
    )(beads)
    start, chord = flat[0], flat[-1] - flat[0]
    length = jnp.linalg.norm(chord)
    t = jnp.clip((flat - start) @ chord / jnp.maximum(length**2, 1e-30), 0.0, 1.0)
    distances = jnp.linalg.norm(flat - start - t[:, None] * chord[None, :], axis=1)
    return float(jnp.max(distances) / jnp.maximum(length, 1e-30))


def chord_break_fraction(
    loss_fn: Callable[[PyTree], jax.Array], start: PyTree, end: PyTree, teacher_losses: np.ndarray
) -> float:
    """The fraction of teacher steps k = 1 .. T-1 at which the chord at k/T is above F(theta_{t+k}).

    Where the chord breaks the teacher's schedule, a path that keeps pace with the
    teacher must leave the chord: targets there can differ from both.
    """
    horizon = len(teacher_losses) - 1
    if horizon < 2:
        return 0.0
    ts = jnp.arange(1, horizon) / horizon
    chord = np.asarray(interpolated_losses(loss_fn, start, end, ts))
    return float(np.mean(chord > np.asarray(teacher_losses[1:-1])))


def chord_keeps_pace(
    loss_fn: Callable[[PyTree], jax.Array],
    start: PyTree,
    end: PyTree,
    levels: np.ndarray,
    num_grid: int = 33,
) -> bool:
    """Whether the chord, walked at an uneven speed, keeps a schedule by index.

    Point k of the walk is the first point of the chord (after point k - 1) whose loss
    reaches levels[k] (`timed_by_schedule` on the chord); the walk keeps the schedule
    when it certifies under it (`geodesic_targets.certify`: every segment's loss at or
    below the higher of its two levels). Such a walk has length exactly the chord's,
    so where it certifies the shortest path that keeps the schedule is the chord: a
    pace-keeping target that bends does so for evener steps, not because the level
    sets force it.
    """
    chord = stack([start, end])
    walk, _ = timed_by_schedule(loss_fn, chord, levels)
    points = jax.tree_util.tree_map(
        lambda s, w: jnp.concatenate([jnp.asarray(s)[None], w]), start, walk
    )
    excess, _ = path_excess(
        loss_fn, points, jnp.asarray(levels, jnp.float32), "index", grid(num_grid)
    )
    return bool(jnp.all(excess <= 0))


def best_so_far(losses: np.ndarray) -> np.ndarray:
    """The running minimum: the teacher's best loss after k steps."""
    return np.minimum.accumulate(np.asarray(losses))


def teacher_levels(losses: np.ndarray) -> np.ndarray:
    """The teacher's schedule: level_k = max(min_{j <= k} F(theta_{t+j}), F(theta_{t+T})).

    The best-so-far loss, floored at the end's loss: a minibatch teacher often ends
    above its own earlier best, and without the floor such a pair could never be
    certified (the end, which does not move, would lie above its level). With it,
    every descending pair's ends keep their levels, so only the level set's shape can
    stop a pair from certifying.
    """
    losses = np.asarray(losses)
    return np.maximum(best_so_far(losses), losses[-1])


def timed_by_schedule(
    loss_fn: Callable[[PyTree], jax.Array],
    beads: PyTree,
    teacher_levels: np.ndarray,
    per_segment: int = 8,
) -> tuple[PyTree, np.ndarray]:
    """T target points: point k is the first point of the path whose loss reaches teacher_levels[k].

    The path is resampled finely (`per_segment` points per target interval); targets
    never move backwards along it; a level the path never reaches gives its end,
    which is also always the last target.

    Returns:
      `(points, fractions)`: the targets, leaves [T, ...], and each one's arc-length
      fraction of the path, [T].
    """
    horizon = len(teacher_levels) - 1
    fine = resample(beads, per_segment * horizon + 1)
    losses = np.asarray(jax.vmap(loss_fn)(fine))
    index, picks = 0, []
    for level in teacher_levels[1:]:
        reached = np.flatnonzero(losses[index:] <= level)
        index = index + int(reached[0]) if reached.size else len(losses) - 1
        picks.append(index)
    picks[-1] = len(losses) - 1
    return (
        jax.tree_util.tree_map(lambda x: x[np.asarray(picks)], fine),
        np.asarray(picks, np.float64) / (len(losses) - 1),
    )


def at_equal_arc_length(beads: PyTree, horizon: int) -> PyTree:
    """T target points equally spaced along the path (the start excluded, the end included)."""
    return jax.tree_util.tree_map(lambda x: x[1:], resample(beads, horizon + 1))


def first_and_last(beads: PyTree) -> tuple[PyTree, PyTree]:
    """The two ends of a stacked path."""
    return bead(beads, 0), bead(beads, -1)
