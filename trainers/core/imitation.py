"""The imitation meta-loss: how far the learned optimizer's steps land from target points.

References:
  The research proposal (`../shared/papers/research_proposal.txt`): follow the
  geodesic in Omega_lambda from theta_t to theta_{t+T}.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from common.pytree import PyTree
from meta_opt.architectures import LearnedOptimizerConfig
from meta_opt.inner_step import init_carry, inner_step, task_objective
from tasks.base import TaskFamily


def squared_norm(tree: PyTree) -> jax.Array:
    """Sum of squares over all leaves (the last axes of stacked trees are summed per entry)."""
    return sum(jnp.sum(x**2) for x in jax.tree_util.tree_leaves(tree))


def path_mismatch(
    trajectory: PyTree, targets: PyTree, start: PyTree, weights: jax.Array | None = None
) -> jax.Array:
    """Weighted mean over k of ||trajectory_k - target_k||^2, over that of ||target_k - start||^2.

    Args:
      trajectory: the optimizer's iterates theta_1 ... theta_T, leaves [T, ...].
      targets: the target points, leaves [T, ...]; the last is the pair's end.
      start: theta_0, where both began.
      weights: the weight of each point in the mean, [T] (None: all equal). The
        "endpoint" supervision weighs only the last point (`endpoint_weights`), so
        every supervision arm shares this one loss and its normalisation.

    The denominator is the score of a trajectory that stays at `start`, so standing still
    scores exactly 1 under every arm and weighting, and pairs of every scale weigh alike.
    (Normalised by ||target_T - start||^2 instead, as before issue 25, standing still
    scored 1/3 + 1/(2T) + 1/(6T^2) on an evenly spaced chord but 1 on the endpoint: the
    same beta gave the endpoint arm about three times the imitation weight.)
    """
    weights = (
        jnp.ones(jax.tree_util.tree_leaves(targets)[0].shape[0]) if weights is None else weights
    )

    def weighted_mean_distance(points: PyTree, reference: PyTree) -> jax.Array:
        distances = jax.vmap(squared_norm)(jax.tree_util.tree_map(jnp.subtract, points, reference))
        return jnp.sum(weights * distances) / jnp.sum(weights)

    starts = jax.tree_util.tree_map(lambda s, t: jnp.broadcast_to(s, t.shape), start, targets)
    standing_still = weighted_mean_distance(targets, starts)
    return weighted_mean_distance(trajectory, targets) / jnp.maximum(standing_still, 1e-12)


def endpoint_weights(num_points: int) -> jax.Array:
    """Point weights [T] that score only the last point, theta_{t+T}."""
    return jnp.zeros(num_points).at[-1].set(1.0)


def imitation_loss(
    family: TaskFamily,
    learned: LearnedOptimizerConfig,
    meta_params: PyTree,
    start: PyTree,
    targets: PyTree,
    instance_key: jax.Array,
    key: jax.Array,
    second_order: bool = False,
    weights: jax.Array | None = None,
) -> jax.Array:
    """`path_mismatch` of T learned steps from `start` (fresh optimizer state) against `targets`.

    T is the targets' leading axis; step k draws its minibatch from `key`; `weights`
    as in `path_mismatch`.
    """
    tx = learned.transformation(meta_params)
    objective = task_objective(family.instance(instance_key))
    num_points = jax.tree_util.tree_leaves(targets)[0].shape[0]

    def step(carry, batch_key):
        carry, _ = inner_step(objective, tx, carry, batch_key, differentiate_gradient=second_order)
        return carry, carry.params

    _, trajectory = jax.lax.scan(step, init_carry(tx, start), jax.random.split(key, num_points))
    return path_mismatch(trajectory, targets, start, weights)
