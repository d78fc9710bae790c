"""Truncated unrolls of the LSTM optimizer on task instances, and the meta-losses.

An instance's inner state (params, optimizer state, step, keys) is carried from
one unroll of U steps to the next and reset when it reaches the horizon H, so
meta-gradients see U steps at a time (truncated backpropagation) while inner
problems run for H steps. Everything here is a pure function of one instance;
the caller `vmap`s it over N instances.

References:
  Andrychowicz et al. (2016): the meta-loss is the sum of inner losses along the
  trajectory; inner gradients are constants (no second derivatives).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from meta_opt.lstm_optimizer import LSTMOptimizer
from tasks.base import TaskFamily

PyTree = Any
LossKind = Literal["mean", "log", "normalized"]


@dataclasses.dataclass(frozen=True)
class UnrollOptions:
    """Attributes:
    horizon: H, inner steps before an instance is reset to fresh params.
    unroll_length: U, inner steps per meta-gradient (truncation).
    stagger: start instances at different points of the horizon, so they do not
      all reset in the same meta-step.
    second_order: differentiate through the inner gradients (default: constants).
    loss_kind: "mean" inner loss, mean "log" loss, or loss "normalized" by the
      loss at the unroll's start.
    """

    horizon: int = 100
    unroll_length: int = 20
    stagger: bool = True
    second_order: bool = False
    loss_kind: LossKind = "mean"

    def __post_init__(self):
        if not 1 <= self.unroll_length <= self.horizon or self.horizon % self.unroll_length:
            raise ValueError(f"need 1 <= unroll_length <= horizon with horizon a multiple of "
                             f"unroll_length (resets happen between unrolls), got {self}")
        if self.loss_kind not in ("mean", "log", "normalized"):
            raise ValueError(f"loss_kind must be mean, log or normalized, got {self.loss_kind!r}")


class InnerState(NamedTuple):
    """One task instance in flight.

    Attributes:
      params: the inner parameters.
      opt_state: the LSTM optimizer's state.
      step: inner steps since the last reset, [] int32.
      instance_key: selects the task instance (`TaskFamily.instance`).
      key: PRNG key for minibatches and the next reset.
    """

    params: PyTree
    opt_state: PyTree
    step: jax.Array
    instance_key: jax.Array
    key: jax.Array


def fresh_state(family: TaskFamily, learned: LSTMOptimizer, meta_params: PyTree,
                instance_key: jax.Array, key: jax.Array, step: jax.Array | int = 0) -> InnerState:
    """A newly initialized instance (params from `key`), at inner step `step`."""
    init_key, key = jax.random.split(key)
    params = family.instance(instance_key).init(init_key)
    opt_state = learned.transformation(meta_params).init(params)
    return InnerState(params, opt_state, jnp.asarray(step, jnp.int32), instance_key, key)


def initial_states(family: TaskFamily, learned: LSTMOptimizer, meta_params: PyTree,
                   key: jax.Array, num_instances: int, options: UnrollOptions) -> InnerState:
    """N fresh instances stacked along axis 0, staggered over the horizon if asked."""
    instance_keys = jax.random.split(jax.random.fold_in(key, 0), num_instances)
    keys = jax.random.split(jax.random.fold_in(key, 1), num_instances)
    offsets = jnp.arange(num_instances) * options.horizon // num_instances if options.stagger \
        else jnp.zeros(num_instances, jnp.int32)
    offsets = offsets // options.unroll_length * options.unroll_length
    return jax.vmap(lambda i, k, s: fresh_state(family, learned, meta_params, i, k, s))(
        instance_keys, keys, offsets)


def reduce_losses(losses: jax.Array, kind: LossKind) -> jax.Array:
    """The meta-loss term of an unroll's losses [U]: their mean, mean log, or mean over the first."""
    if kind == "log":
        return jnp.mean(jnp.log(losses + 1e-8))
    if kind == "normalized":
        return jnp.mean(losses / jax.lax.stop_gradient(losses[0] + 1e-8))
    return jnp.mean(losses)


def unroll(family: TaskFamily, learned: LSTMOptimizer, options: UnrollOptions, meta_params: PyTree,
           state: InnerState) -> tuple[InnerState, tuple[jax.Array, jax.Array]]:
    """U steps of the learned optimizer on one instance, resetting at the horizon.

    Returns:
      `(state after U steps, (meta-loss term, inner loss at the last step))`. The
      meta-loss term reduces the U minibatch losses by `options.loss_kind`.
    """
    tx = learned.transformation(meta_params)
    # Starts and the horizon are multiples of U, so an instance can only reach the horizon
    # at an unroll boundary: one reset check per unroll (under vmap a `cond` becomes a
    # select that computes both branches, so a check inside the step would cost U inits).
    state = jax.lax.cond(state.step >= options.horizon,
                         lambda s: fresh_state(family, learned, meta_params, s.instance_key, s.key),
                         lambda s: s, state)
    task = family.instance(state.instance_key)

    def step(state: InnerState, _):
        key, batch_key = jax.random.split(state.key)
        loss, grads = jax.value_and_grad(task.loss)(state.params, task.sample_batch(batch_key))
        if not options.second_order:
            grads = jax.lax.stop_gradient(grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return InnerState(params, opt_state, state.step + 1, state.instance_key, key), loss

    state, losses = jax.lax.scan(step, state, None, length=options.unroll_length)
    return state, (reduce_losses(losses, options.loss_kind), losses[-1])


def imitation_loss(family: TaskFamily, learned: LSTMOptimizer, meta_params: PyTree,
                   start: PyTree, targets: PyTree, instance_key: jax.Array, key: jax.Array,
                   second_order: bool = False) -> jax.Array:
    """Distance of the learned trajectory from a geodesic target path.

    The learned optimizer starts at `start` with a fresh state and takes T steps
    (T = the targets' leading axis); the loss is the mean over k of
    ||theta_k - target_k||^2, divided by ||target_T - start||^2 so that pairs of
    every scale weigh alike.
    """
    tx = learned.transformation(meta_params)
    task = family.instance(instance_key)
    num_points = jax.tree_util.tree_leaves(targets)[0].shape[0]

    def step(carry, batch_key):
        params, opt_state = carry
        grads = jax.grad(task.loss)(params, task.sample_batch(batch_key))
        if not second_order:
            grads = jax.lax.stop_gradient(grads)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state), params

    _, trajectory = jax.lax.scan(step, (start, tx.init(start)), jax.random.split(key, num_points))
    squared = lambda tree: sum(jnp.sum(x**2) for x in jax.tree_util.tree_leaves(tree))
    gap = jax.vmap(squared)(jax.tree_util.tree_map(jnp.subtract, trajectory, targets))
    end = jax.tree_util.tree_map(lambda t: t[-1], targets)
    scale = squared(jax.tree_util.tree_map(jnp.subtract, end, start))
    return jnp.mean(gap) / jnp.maximum(scale, 1e-12)
