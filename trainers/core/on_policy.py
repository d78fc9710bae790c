"""On-policy imitation (DAgger-style): targets from the learned optimizer's own states.

Off-policy imitation starts every segment at a teacher iterate θ_t with a fresh LSTM
state, states the learned optimizer may never visit. Here a segment starts where
the learned optimizer itself is after w warm-up steps on a fresh instance (its
parameters *and* its LSTM state), w drawn uniformly from 0 .. `max_warmup`; the
teacher then takes T steps from there, and the learned optimizer, continuing from
its own state, is scored against the teacher's iterates with the shared imitation
loss (`path_mismatch`). Everything is one traced function, so the targets are
regenerated inside every meta-step with the current meta-parameters (Ross et al.
2011's DAgger with the teacher queried on the learner's states). Only targets that
need no path search (the teacher's iterates, or the chord of its displacement) can
be made this way; a string-sampling target from the learner's states would need
the search inside the step.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from common.pytree import PyTree
from meta_opt.architectures import LearnedOptimizerConfig
from meta_opt.inner_step import InnerCarry, init_carry, inner_step, task_objective
from tasks.base import TaskFamily
from trainers.core.imitation import path_mismatch


@dataclasses.dataclass(frozen=True)
class OnPolicy:
    """What on-policy segments are made of.

    Attributes:
      teacher: the optimizer whose T steps from the learner's state are the targets.
      horizon: T, steps per segment.
      max_warmup: the learner's warm-up steps are drawn from 0 .. max_warmup.
      path: "teacher" (its iterates) or "chord" (T points on its displacement).
    """

    teacher: optax.GradientTransformation
    horizon: int
    max_warmup: int
    path: Literal["teacher", "chord"] = "teacher"

    def inner_steps(self) -> int:
        """Inner steps one segment computes: the warm-up (always max_warmup, masked), teacher and learner."""
        return self.max_warmup + 2 * self.horizon


class Segment(NamedTuple):
    """Where the learner is after warm-up (start params and its optimizer state) and the T targets."""

    start: PyTree
    opt_state: PyTree
    targets: PyTree
    warmup: jax.Array


def _teacher_iterates(
    objective, teacher: optax.GradientTransformation, params: PyTree, keys: jax.Array
) -> PyTree:
    """The teacher's iterates theta_1 ... theta_T from `params` (fresh teacher state), leaves [T, ...]."""

    def step(carry, step_key):
        carry, _ = inner_step(objective, teacher, carry, step_key, differentiate_gradient=False)
        return carry, carry.params

    return jax.lax.scan(step, init_carry(teacher, params), keys)[1]


def make_segment(
    family: TaskFamily,
    learned: LearnedOptimizerConfig,
    meta_params: PyTree,
    options: OnPolicy,
    instance_key: jax.Array,
    key: jax.Array,
) -> Segment:
    """The learner's state after its warm-up on a fresh instance, and the teacher's T steps from there.

    No gradient flows through the segment (it is data for the imitation loss).
    """
    meta_params = jax.lax.stop_gradient(meta_params)
    task = family.instance(instance_key)
    objective = task_objective(task)
    init_key, warm_key, count_key, teacher_key = jax.random.split(key, 4)
    tx = learned.transformation(meta_params)
    warmup = jax.random.randint(count_key, (), 0, options.max_warmup + 1)

    def warm(carry, step_and_key):
        index, step_key = step_and_key
        moved, _ = inner_step(objective, tx, carry, step_key, differentiate_gradient=False)
        return jax.tree_util.tree_map(
            lambda a, b: jnp.where(index < warmup, a, b), moved, carry
        ), None

    carry = init_carry(tx, task.init(init_key))
    if options.max_warmup:
        carry, _ = jax.lax.scan(
            warm,
            carry,
            (jnp.arange(options.max_warmup), jax.random.split(warm_key, options.max_warmup)),
        )
    iterates = _teacher_iterates(
        objective, options.teacher, carry.params, jax.random.split(teacher_key, options.horizon)
    )
    if options.path == "chord":
        end = jax.tree_util.tree_map(lambda x: x[-1], iterates)
        fractions = jnp.arange(1, options.horizon + 1) / options.horizon
        iterates = jax.tree_util.tree_map(
            lambda a, b: a[None] + fractions.reshape((-1,) + (1,) * a.ndim) * (b - a)[None],
            carry.params,
            end,
        )
    return jax.lax.stop_gradient(Segment(carry.params, carry.opt_state, iterates, warmup))


def on_policy_loss(
    family: TaskFamily,
    learned: LearnedOptimizerConfig,
    meta_params: PyTree,
    options: OnPolicy,
    instance_key: jax.Array,
    key: jax.Array,
    second_order: bool = False,
) -> jax.Array:
    """`path_mismatch` of the learner's T steps, continuing from its own state, against the segment."""
    segment_key, run_key = jax.random.split(key)
    segment = make_segment(family, learned, meta_params, options, instance_key, segment_key)
    tx = learned.transformation(meta_params)
    objective = task_objective(family.instance(instance_key))

    def step(carry, batch_key):
        carry, _ = inner_step(objective, tx, carry, batch_key, differentiate_gradient=second_order)
        return carry, carry.params

    _, trajectory = jax.lax.scan(
        step,
        InnerCarry(segment.start, segment.opt_state),
        jax.random.split(run_key, options.horizon),
    )
    return path_mismatch(trajectory, segment.targets, segment.start)
