"""The one inner optimization step: every place where a parameter vector takes a step.

Baseline trajectories, geodesic targets, bead training, the learned optimizer's
unrolls and evaluation runs all move parameters with `inner_step`, so that how a
step treats minibatches, the objective handed to curvature methods (`value_fn`,
for ESGD) and the gradient's differentiability is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import optax

from common.pytree import PyTree

# `(params, key) -> scalar`: the loss on the minibatch that `key` draws (a task's
# `loss(params, sample_batch(key))`, or any deterministic objective that ignores the key).
Objective = Callable[[PyTree, jax.Array], jax.Array]


class InnerCarry(NamedTuple):
    """What an inner loop carries from step to step."""

    params: PyTree
    opt_state: PyTree


def init_carry(transformation: optax.GradientTransformation, params: PyTree) -> InnerCarry:
    """The carry at the start of a run: the parameters and the optimizer's fresh state."""
    return InnerCarry(params, transformation.init(params))


def task_objective(task) -> Objective:
    """The minibatch objective of a task (anything with `loss` and `sample_batch`)."""
    return lambda params, key: task.loss(params, task.sample_batch(key))


def inner_step(
    objective: Objective,
    transformation: optax.GradientTransformation,
    carry: InnerCarry,
    key: jax.Array,
    *,
    differentiate_gradient: bool = True,
) -> tuple[InnerCarry, jax.Array]:
    """One optimizer step on the minibatch that `key` draws.

    Args:
      objective: `(params, key) -> loss`.
      transformation: any optax transformation; optimizers that take extra
        arguments (ESGD, Jacobi) get `value_fn`, the same minibatch's loss.
      carry: the parameters and optimizer state before the step.
      key: selects the minibatch.
      differentiate_gradient: False treats the gradient as a constant when the
        step itself is differentiated (first-order meta-gradients, Andrychowicz
        et al. 2016); the loss value stays differentiable either way.

    Returns:
      `(carry after the update, the minibatch loss at the parameters before it)`.
    """
    value_fn = lambda params: objective(params, key)
    loss, grads = jax.value_and_grad(value_fn)(carry.params)
    if not differentiate_gradient:
        grads = jax.lax.stop_gradient(grads)
    tx = optax.with_extra_args_support(transformation)
    updates, opt_state = tx.update(grads, carry.opt_state, carry.params, value_fn=value_fn)
    return InnerCarry(optax.apply_updates(carry.params, updates), opt_state), loss
