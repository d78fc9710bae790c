"""The imitation term of the meta-loss: stored targets or on-policy segments, one batch per step.

`make_meta_step` adds `imitation_weight` times this term to the inner-loss term. Its
meta-gradient is always backpropagated (the targets do not depend on the meta-parameters,
so no estimator is needed). Two sources, exactly one of which a step with
`imitation_weight > 0` has:

- stored `Targets` (a `geodesic_targets.TargetSet` on device): a batch of pairs drawn with
  replacement, each scored by `trainers.core.imitation.imitation_loss`;
- `OnPolicy` segments: fresh instances of the family, segments made inside the step from the
  learner's own states (`trainers.core.on_policy`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from common.pytree import PyTree
from meta_opt.architectures import LearnedOptimizerConfig
from tasks.base import TaskFamily
from trainers.config.sections import UnrollOptions
from trainers.core.imitation import imitation_loss
from trainers.core.on_policy import OnPolicy, on_policy_loss

ImitationFn = Callable[[PyTree, jax.Array], jax.Array]  # (meta_params, key) -> scalar


class Targets(NamedTuple):
    """Supervision targets on device: start params [M, ...], points [M, T, ...], instance
    keys [M, 2], and the weight of each of the T points in the imitation loss [T]."""

    start: PyTree
    points: PyTree
    instance_keys: jax.Array
    weights: jax.Array


def imitation_term(
    family: TaskFamily,
    learned: LearnedOptimizerConfig,
    unroll_options: UnrollOptions,
    batch: int,
    targets: Targets | None = None,
    on_policy: OnPolicy | None = None,
) -> ImitationFn:
    """`(meta_params, key) -> mean imitation loss over a batch of `batch` pairs or segments`.

    With neither source the term is 0 (a loss-only meta-step).

    Raises:
      ValueError: both sources given.
    """
    if targets is not None and on_policy is not None:
        raise ValueError("give geodesic targets or on-policy segments, not both")
    second_order = unroll_options.second_order
    if on_policy is not None:

        def from_segments(meta_params, key):
            instance_key, run_key = jax.random.split(key)
            losses = jax.vmap(
                lambda i, k: on_policy_loss(
                    family, learned, meta_params, on_policy, i, k, second_order
                )
            )(jax.random.split(instance_key, batch), jax.random.split(run_key, batch))
            return jnp.mean(losses)

        return from_segments
    if targets is not None:

        def from_targets(meta_params, key):
            pick_key, run_key = jax.random.split(key)
            count = targets.instance_keys.shape[0]
            pick = jax.random.randint(pick_key, (batch,), 0, count)
            take = lambda tree: jax.tree_util.tree_map(lambda x: x[pick], tree)
            losses = jax.vmap(
                lambda s, p, i, k: imitation_loss(
                    family, learned, meta_params, s, p, i, k, second_order, targets.weights
                )
            )(
                take(targets.start),
                take(targets.points),
                targets.instance_keys[pick],
                jax.random.split(run_key, batch),
            )
            return jnp.mean(losses)

        return from_targets
    return lambda meta_params, key: jnp.zeros([])
