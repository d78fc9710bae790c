"""Truncated unrolls of the LSTM optimizer on task instances, and the meta-losses.

An instance's inner state (params, optimizer state, step, keys) is carried from
one unroll of U steps to the next and reset when it reaches the horizon H, so
meta-gradients see U steps at a time (truncated backpropagation) while inner
problems run for H steps. Everything here is a pure function of one instance;
the caller `vmap`s it over N instances.

References:
  Andrychowicz et al. (2016): the meta-loss is the sum of inner losses along the
  trajectory, F(theta_1) ... F(theta_T); inner gradients are constants (no second
  derivatives) unless `second_order`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from common.pytree import PyTree
from meta_opt.architectures import LearnedOptimizerConfig
from meta_opt.inner_step import InnerCarry, inner_step, task_objective
from tasks.base import TaskFamily
from tasks.supervised import log_uniform
from trainers.config.sections import LossKind, UnrollOptions

# Folded into an instance's key for the minibatch that scores theta_U (never a training batch).
SCORE_TAG = 0x5C0E
# Folded into a step's batch key for the validation minibatch that scores it (score_on: validation).
VALIDATION_TAG = 0x7A1D
# Folded into a restarting instance's key for its horizon (unroll.min_horizon).
HORIZON_TAG = 0x4012


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


def fresh_state(
    family: TaskFamily,
    learned: LearnedOptimizerConfig,
    meta_params: PyTree,
    instance_key: jax.Array,
    key: jax.Array,
    step: jax.Array | int = 0,
) -> InnerState:
    """A newly initialized instance (params from `key`), at inner step `step`."""
    init_key, key = jax.random.split(key)
    params = family.instance(instance_key).init(init_key)
    opt_state = learned.transformation(meta_params).init(params)
    return InnerState(params, opt_state, jnp.asarray(step, jnp.int32), instance_key, key)


def episode_start(key: jax.Array, options: UnrollOptions) -> jax.Array:
    """The inner step a restarted instance starts at: 0 (a run of H steps), or with
    `options.min_horizon` H minus a length drawn log-uniformly from [min_horizon, H]
    and rounded to a multiple of U, so the instance restarts after that many steps."""
    if options.min_horizon is None:
        return jnp.zeros([], jnp.int32)
    u = options.unroll_length
    length = log_uniform(key, options.min_horizon / u, options.horizon / u)
    units = jnp.clip(jnp.round(length), options.min_horizon // u, options.horizon // u).astype(
        jnp.int32
    )
    return (options.horizon - units * u).astype(jnp.int32)


def initial_states(
    family: TaskFamily,
    learned: LearnedOptimizerConfig,
    meta_params: PyTree,
    key: jax.Array,
    num_instances: int,
    options: UnrollOptions,
) -> InnerState:
    """N fresh instances stacked along axis 0, staggered over the horizon if asked."""
    instance_keys = jax.random.split(jax.random.fold_in(key, 0), num_instances)
    keys = jax.random.split(jax.random.fold_in(key, 1), num_instances)
    offsets = (
        jnp.arange(num_instances) * options.horizon // num_instances
        if options.stagger
        else jnp.zeros(num_instances, jnp.int32)
    )
    offsets = offsets // options.unroll_length * options.unroll_length
    return jax.vmap(lambda i, k, s: fresh_state(family, learned, meta_params, i, k, s))(
        instance_keys, keys, offsets
    )


def reduce_losses(losses: jax.Array, kind: LossKind, initial_loss: jax.Array) -> jax.Array:
    """The meta-loss term of an unroll's scored losses [U].

    Args:
      losses: F(theta_1), ..., F(theta_U), the loss after each update.
      kind: "mean" of the losses, mean "log" loss, or "normalized": the mean of the
        losses over `initial_loss`.
      initial_loss: F(theta_0), the loss where the unroll started (a constant of the
        meta-gradient; used by "normalized").
    """
    if kind == "log":
        return jnp.mean(jnp.log(losses + 1e-8))
    if kind == "normalized":
        return jnp.mean(losses / jax.lax.stop_gradient(initial_loss + 1e-8))
    return jnp.mean(losses)


def unroll(
    family: TaskFamily,
    learned: LearnedOptimizerConfig,
    options: UnrollOptions,
    meta_params: PyTree,
    state: InnerState,
) -> tuple[InnerState, tuple[jax.Array, jax.Array]]:
    """U steps of the learned optimizer on one instance, resetting at the horizon.

    The unroll is scored on the loss after each of its updates, F(theta_1) ...
    F(theta_U) (Andrychowicz et al. 2016, eq. 3): step k's gradient evaluation
    already gives F(theta_{k-1}) on its minibatch, so the scores are the losses of
    steps 2..U plus one more minibatch loss at theta_U. Every scored term depends
    on this unroll's updates; F(theta_0), which does not, only normalizes.

    With `options.score_on == "validation"` the U scored losses are instead each
    updated point's loss on a minibatch of the task's validation split (held out of
    the training data), so meta-training rewards what generalizes, not what fits the
    minibatches; it costs one more forward pass per step.

    Returns:
      `(state after U steps, (meta-loss term, F(theta_U) on a training minibatch))`.
      The meta-loss term reduces the U scored losses by `options.loss_kind`.
    """
    tx = learned.transformation(meta_params)
    # Starts and the horizon are multiples of U, so an instance can only reach the horizon
    # at an unroll boundary: one reset check per unroll (under vmap a `cond` becomes a
    # select that computes both branches, so a check inside the step would cost U inits).
    state = jax.lax.cond(
        state.step >= options.horizon,
        lambda s: fresh_state(
            family,
            learned,
            meta_params,
            s.instance_key,
            s.key,
            episode_start(jax.random.fold_in(s.key, HORIZON_TAG), options),
        ),
        lambda s: s,
        state,
    )
    task = family.instance(state.instance_key)
    objective = task_objective(task)
    validation = options.score_on == "validation"
    if validation and task.sample_validation_batch is None:
        raise ValueError(
            f"unroll.score_on is 'validation' but task {task.name!r} has no validation split "
            "(set task.options.validation_size > 0)"
        )
    validation_loss = lambda params, key: task.loss(params, task.sample_validation_batch(key))

    def step(state: InnerState, _):
        key, batch_key = jax.random.split(state.key)
        carry, loss = inner_step(
            objective,
            tx,
            InnerCarry(state.params, state.opt_state),
            batch_key,
            differentiate_gradient=options.second_order,
        )
        held_out = (
            validation_loss(carry.params, jax.random.fold_in(batch_key, VALIDATION_TAG))
            if validation
            else loss
        )
        return InnerState(carry.params, carry.opt_state, state.step + 1, state.instance_key, key), (
            loss,
            held_out,
        )

    start_params, start_key = state.params, jax.random.fold_in(state.key, VALIDATION_TAG)
    state, (before_update, held_out) = jax.lax.scan(step, state, None, length=options.unroll_length)
    final_loss = objective(state.params, jax.random.fold_in(state.key, SCORE_TAG))
    if validation:  # F_val(theta_1) ... F_val(theta_U), normalized by F_val(theta_0) where asked
        initial = jax.lax.stop_gradient(validation_loss(start_params, start_key))
        return state, (reduce_losses(held_out, options.loss_kind, initial), final_loss)
    scored = jnp.concatenate([before_update[1:], final_loss[None]])
    return state, (reduce_losses(scored, options.loss_kind, before_update[0]), final_loss)
