"""Parameter rescaling: the same problem in other coordinates, for meta-training augmentation.

A task in coordinates phi = theta / s (one positive scale s per parameter tensor)
has the same losses at corresponding points, but an optimizer sees gradients s * g
and parameters theta / s. A learned optimizer meta-trained over many s cannot rely
on one tensor's gradient scale (Metz et al. 2022, VeLO's task augmentation;
Moudgil et al. 2025, Celo's parameter-scale augmentation).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from common.pytree import PyTree
from tasks.base import Task
from tasks.supervised import log_uniform


def reparameterized(task: Task, scales: PyTree) -> Task:
    """`task` in coordinates phi = theta / scales (a scale per leaf of its params).

    Every function of the task takes phi and evaluates the original at theta = scales * phi,
    and `init` returns theta_0 / scales, so losses along corresponding paths are equal.
    """
    to_theta = lambda phi: jax.tree_util.tree_map(lambda p, s: p * s, phi, scales)
    return dataclasses.replace(
        task,
        init=lambda key: jax.tree_util.tree_map(lambda t, s: t / s, task.init(key), scales),
        loss=lambda phi, batch: task.loss(to_theta(phi), batch),
        eval_loss=lambda phi: task.eval_loss(to_theta(phi)),
        metrics=lambda phi: task.metrics(to_theta(phi)),
    )


def tensor_scales(key: jax.Array, task: Task, low: float, high: float) -> PyTree:
    """One scale per parameter tensor of `task`, each drawn log-uniformly from [low, high]."""
    shapes = jax.eval_shape(task.init, jax.random.PRNGKey(0))
    leaves, treedef = jax.tree_util.tree_flatten(shapes)
    draws = [
        log_uniform(k, low, high).astype(jnp.result_type(leaf.dtype))
        for k, leaf in zip(jax.random.split(key, len(leaves)), leaves)
    ]
    return jax.tree_util.tree_unflatten(treedef, draws)


PARAM_SCALE_TAG = (
    0x5CA1  # folded into an instance key for its parameter scales (older draws unchanged)
)


def rescaled(task: Task, key: jax.Array, param_scale_range: tuple[float, float]) -> Task:
    """`task` posed in coordinates scaled by instance `key`'s draw from `param_scale_range`.

    The scales come from `key` folded with `PARAM_SCALE_TAG`, so a family's other per-instance
    draws from `key` are unchanged; (1, 1) returns `task` itself.
    """
    if tuple(param_scale_range) == (1.0, 1.0):
        return task
    return reparameterized(
        task, tensor_scales(jax.random.fold_in(key, PARAM_SCALE_TAG), task, *param_scale_range)
    )
