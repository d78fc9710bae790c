"""One meta-training step: loss term + imitation term, outer update, NaN guard.

The step composes three parts, each with a named result:

- the inner-loss term and its meta-gradient (`trainers.core.loss_terms`: truncated
  backprop, or ES/PES from antithetic particles; the estimator is the only difference),
- the imitation term (`trainers.core.imitation_term`: stored targets or on-policy
  segments; always backpropagated),
- the outer update of `meta_loss = loss_weight * loss term + imitation_weight * imitation`.

The whole step is one pure function of a `MetaState`, jitted once by the caller
(`trainers.pipelines.train.build_meta_step` builds it from a config). A step whose
meta-loss or meta-gradient is not finite leaves the meta-parameters and the outer
optimizer untouched and is counted; an instance whose parameters became non-finite is
reset to fresh parameters, so one bad task cannot poison the following steps or a
checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from common.pytree import PyTree
from meta_opt.architectures import LearnedOptimizerConfig
from tasks.base import TaskFamily
from trainers.config.sections import EstimatorOptions, UnrollOptions
from trainers.core.imitation_term import Targets, imitation_term
from trainers.core.loss_terms import (
    all_finite,
    antithetic_term,
    backprop_term,
    reset_nonfinite,
    select_where,
)
from trainers.core.on_policy import OnPolicy
from trainers.core.unroll import InnerState


@dataclasses.dataclass(frozen=True)
class MetaObjective:
    """Meta-loss = loss_weight * inner-loss term + imitation_weight * imitation term.

    Attributes:
      loss_weight: weight of the "learning to learn" term (0 for imitation only).
      imitation_weight: beta, weight of the geodesic imitation term (0 for loss only).
      imitation_batch: target pairs drawn per meta-step.
    """

    loss_weight: float = 1.0
    imitation_weight: float = 0.0
    imitation_batch: int = 4

    def __post_init__(self):
        if (
            min(self.loss_weight, self.imitation_weight) < 0
            or self.loss_weight + self.imitation_weight <= 0
        ):
            raise ValueError(f"weights must be >= 0 and not both 0, got {self}")


class MetaState(NamedTuple):
    """Everything meta-training carries (and checkpoints).

    Attributes:
      meta_params: the LSTM optimizer's weights.
      outer_state: the outer optimizer's state.
      inner: the N instances in flight (leading axis N): an `InnerState`, or for the
        ES/PES estimators a `PESState` (both particles of each instance, and PES's
        accumulated perturbations); with extra families a tuple of those, the main
        family's first (one family keeps the bare state, as checkpoints store it).
      key: PRNG key of the imitation batches.
      step: meta-steps taken, [] int32.
      skipped: meta-steps skipped for a non-finite loss or gradient, [] int32.
    """

    meta_params: PyTree
    outer_state: PyTree
    inner: InnerState
    key: jax.Array
    step: jax.Array
    skipped: jax.Array


def make_meta_step(
    family: TaskFamily,
    learned: LearnedOptimizerConfig,
    unroll_options: UnrollOptions,
    objective: MetaObjective,
    outer: optax.GradientTransformation,
    targets: Targets | None = None,
    on_policy: OnPolicy | None = None,
    estimator: EstimatorOptions = EstimatorOptions(),
    extra_families: Sequence[TaskFamily] = (),
):
    """Builds `meta_step(state) -> (state, metrics)`; jit it once.

    The imitation term follows fixed `targets`, or, with `on_policy`, segments made
    inside the step from the learned optimizer's own states. The inner-loss term's
    meta-gradient is backpropagated through each unroll, or with `estimator` ES or PES
    estimated from antithetic unrolls (`state.inner` is then a `PESState`). With
    `extra_families` `state.inner` is a tuple, the instances of `family` first, and the
    inner-loss term is the mean of each family's term ("inner_loss" reports `family`'s alone).

    Raises:
      ValueError: an imitation weight without targets or on-policy segments, or both given.
    """
    if objective.imitation_weight > 0 and (targets is None) == (on_policy is None):
        raise ValueError("imitation_weight > 0 needs either geodesic targets or on-policy segments")
    families = (family, *extra_families)
    if estimator.antithetic:
        loss_term = antithetic_term(families, learned, unroll_options, estimator)
    else:
        loss_term = backprop_term(families, learned, unroll_options, objective.loss_weight > 0)
    if objective.imitation_weight > 0:
        batch = objective.imitation_batch
        imitation = imitation_term(family, learned, unroll_options, batch, targets, on_policy)
    else:
        imitation = imitation_term(family, learned, unroll_options, 0)  # the zero term
    as_list = (lambda inner: list(inner)) if extra_families else (lambda inner: [inner])
    packed = tuple if extra_families else (lambda states: states[0])
    weighted = lambda a, b: objective.loss_weight * a + objective.imitation_weight * b

    def meta_step(state: MetaState) -> tuple[MetaState, dict[str, jax.Array]]:
        key, step_key = jax.random.split(state.key)
        # ES/PES draw perturbations and imitation batches from two halves of the step key;
        # backprop's loss term needs no key, so its imitation batch takes the whole key.
        if estimator.antithetic:
            loss_key, imitation_key = jax.random.split(step_key)
        else:
            loss_key, imitation_key = step_key, step_key
        term = loss_term(state.meta_params, as_list(state.inner), loss_key)
        imitation_value, imitation_grads = jax.value_and_grad(imitation)(
            state.meta_params, imitation_key
        )
        grads = jax.tree_util.tree_map(weighted, term.grads, imitation_grads)
        total = weighted(term.value, imitation_value)
        finite = jnp.isfinite(total) & all_finite(grads)
        updates, outer_state = outer.update(grads, state.outer_state, state.meta_params)
        meta_params = select_where(
            finite, optax.apply_updates(state.meta_params, updates), state.meta_params
        )
        outer_state = select_where(finite, outer_state, state.outer_state)
        fixed = [
            reset_nonfinite(fam, learned, meta_params, states)
            for fam, states in zip(families, term.inner)
        ]
        inner, resets = packed([f[0] for f in fixed]), sum(f[1] for f in fixed)
        skipped = state.skipped + (~finite).astype(jnp.int32)
        metrics = {
            "meta_loss": total,
            "loss_term": term.value,
            "imitation_loss": imitation_value,
            "inner_loss": term.final_loss,
            "meta_grad_norm": optax.tree_utils.tree_norm(grads),
            "skipped_steps": skipped,
            "instance_resets": resets,
        }
        new_state = MetaState(meta_params, outer_state, inner, key, state.step + 1, skipped)
        return new_state, metrics

    return meta_step
