"""One meta-training step: unroll N instances, meta-gradient, outer update, NaN guard.

The whole step is one pure function of a `MetaState`, jitted once by the caller.
A step whose meta-loss or meta-gradient is not finite leaves the meta-parameters
and the outer optimizer untouched and is counted; an instance whose parameters
became non-finite is reset to fresh parameters, so one bad task cannot poison
the following steps or a checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from common.pytree import PyTree
from meta_opt.inner_step import task_objective
from meta_opt.options import LSTMOptimizer
from tasks.base import TaskFamily
from trainers.config.sections import EstimatorOptions, UnrollOptions
from trainers.core.estimators import PESState, es_gradient, pes_gradient
from trainers.core.imitation import imitation_loss
from trainers.core.on_policy import OnPolicy, on_policy_loss
from trainers.core.unroll import SCORE_TAG, InnerState, fresh_state, unroll


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


class Targets(NamedTuple):
    """Supervision targets on device: start params [M, ...], points [M, T, ...], instance
    keys [M, 2], and the weight of each of the T points in the imitation loss [T]."""

    start: PyTree
    points: PyTree
    instance_keys: jax.Array
    weights: jax.Array


class MetaState(NamedTuple):
    """Everything meta-training carries (and checkpoints).

    Attributes:
      meta_params: the LSTM optimizer's weights.
      outer_state: the outer optimizer's state.
      inner: the N instances in flight (leading axis N): an `InnerState`, or for the
        ES/PES estimators a `PESState` (both particles of each instance, and PES's
        accumulated perturbations).
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


def _all_finite(tree: PyTree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


def _select(flag: jax.Array, new: PyTree, old: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(flag, a, b), new, old)


def make_meta_step(
    family: TaskFamily,
    learned: LSTMOptimizer,
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
    inside the step from the learned optimizer's own states (`trainers.core.on_policy`).
    The inner-loss term's meta-gradient is backpropagated through each unroll, or with
    `estimator` ES or PES estimated from antithetic unrolls (`state.inner` is then a
    `PESState`); the imitation term's is always backpropagated. With `extra_families`
    `state.inner` is a tuple, the instances of `family` first, and the inner-loss term
    is the mean of each family's term ("inner_loss" reports `family`'s alone).

    Raises:
      ValueError: an imitation weight without targets or on-policy segments, or both given.
    """
    if objective.imitation_weight > 0 and (targets is None) == (on_policy is None):
        raise ValueError("imitation_weight > 0 needs either geodesic targets or on-policy segments")
    families = (family, *extra_families)
    members = (lambda inner: inner) if extra_families else (lambda inner: (inner,))
    joined = tuple if extra_families else (lambda states: states[0])
    one_unroll = lambda fam: (
        lambda meta_params, inner: unroll(fam, learned, unroll_options, meta_params, inner)
    )

    def imitation(meta_params, key):
        if objective.imitation_weight == 0:
            return jnp.zeros([])
        if (
            on_policy is not None
        ):  # fresh instances of the family, segments from the learner's states
            instance_key, run_key = jax.random.split(key)
            return jnp.mean(
                jax.vmap(
                    lambda i, k: on_policy_loss(
                        family, learned, meta_params, on_policy, i, k, unroll_options.second_order
                    )
                )(
                    jax.random.split(instance_key, objective.imitation_batch),
                    jax.random.split(run_key, objective.imitation_batch),
                )
            )
        count = targets.instance_keys.shape[0]
        pick_key, run_key = jax.random.split(key)
        pick = jax.random.randint(pick_key, (objective.imitation_batch,), 0, count)
        take = lambda tree: jax.tree_util.tree_map(lambda x: x[pick], tree)
        losses = jax.vmap(
            lambda s, p, i, k: imitation_loss(
                family,
                learned,
                meta_params,
                s,
                p,
                i,
                k,
                unroll_options.second_order,
                targets.weights,
            )
        )(
            take(targets.start),
            take(targets.points),
            targets.instance_keys[pick],
            jax.random.split(run_key, objective.imitation_batch),
        )
        return jnp.mean(losses)

    def meta_loss(meta_params, inner, key):
        outs = [
            jax.vmap(one_unroll(fam), in_axes=(None, 0))(meta_params, states)
            for fam, states in zip(families, members(inner))
        ]
        loss_term = jnp.mean(jnp.stack([jnp.mean(terms) for _, (terms, _) in outs]))
        imitation_term = imitation(meta_params, key)
        total = objective.loss_weight * loss_term + objective.imitation_weight * imitation_term
        return total, (
            joined([o[0] for o in outs]),
            loss_term,
            imitation_term,
            jnp.mean(outs[0][1][1]),
        )

    def reset_broken(fam, meta_params, inner: InnerState) -> tuple[InnerState, jax.Array]:
        def fix(state):
            ok = _all_finite(state.params)
            fresh = fresh_state(fam, learned, meta_params, state.instance_key, state.key)
            return _select(ok, state, fresh), ~ok

        fixed, broken = jax.vmap(fix)(inner)
        return fixed, jnp.sum(broken)

    def estimate(fam, meta_params, particles: PESState, key):
        """ES/PES on one family's pairs: (gradient, particles, mean loss term, mean F(theta_U))."""
        estimator_fn = pes_gradient if estimator.name == "pes" else es_gradient
        term = lambda mp, s: (lambda out: (out[0], out[1][0]))(one_unroll(fam)(mp, s))
        grads, particles, estimated = estimator_fn(
            term,
            lambda s: s.step >= unroll_options.horizon,
            meta_params,
            particles,
            key,
            sigma=estimator.sigma,
        )
        final = jax.vmap(
            lambda s: task_objective(fam.instance(s.instance_key))(
                s.params, jax.random.fold_in(s.key, SCORE_TAG)
            )
        )(particles.positive)  # F(theta_U), as `unroll`
        return grads, particles, estimated["loss"], jnp.mean(final)

    def antithetic_loss(meta_params, inner, key):
        """ES/PES: (total, aux, grads) like `value_and_grad(meta_loss)`, the loss term estimated."""
        estimate_key, imitation_key = jax.random.split(key)
        keys = [estimate_key] + [
            jax.random.fold_in(estimate_key, i) for i in range(1, len(families))
        ]
        outs = [
            estimate(fam, meta_params, particles, k)
            for fam, particles, k in zip(families, members(inner), keys)
        ]
        loss_grads = jax.tree_util.tree_map(lambda *g: sum(g) / len(g), *[o[0] for o in outs])
        loss_term = jnp.mean(jnp.stack([o[2] for o in outs]))
        imitation_term, imitation_grads = jax.value_and_grad(imitation)(meta_params, imitation_key)
        grads = jax.tree_util.tree_map(
            lambda a, b: objective.loss_weight * a + objective.imitation_weight * b,
            loss_grads,
            imitation_grads,
        )
        total = objective.loss_weight * loss_term + objective.imitation_weight * imitation_term
        return total, (joined([o[1] for o in outs]), loss_term, imitation_term, outs[0][3]), grads

    def reset_broken_pairs(fam, meta_params, particles: PESState) -> tuple[PESState, jax.Array]:
        def fix(positive, negative, accumulated):
            ok = _all_finite(positive.params) & _all_finite(negative.params)
            fresh = fresh_state(fam, learned, meta_params, positive.instance_key, positive.key)
            zeros = jax.tree_util.tree_map(jnp.zeros_like, accumulated)
            return (
                _select(ok, positive, fresh),
                _select(ok, negative, fresh),
                _select(ok, accumulated, zeros),
                ~ok,
            )

        positive, negative, accumulated, broken = jax.vmap(fix)(*particles)
        return PESState(positive, negative, accumulated), jnp.sum(broken)

    def meta_step(state: MetaState) -> tuple[MetaState, dict[str, jax.Array]]:
        key, step_key = jax.random.split(state.key)
        if estimator.antithetic:
            total, (inner, loss_term, imitation_term, inner_loss), grads = antithetic_loss(
                state.meta_params, state.inner, step_key
            )
        else:
            (total, (inner, loss_term, imitation_term, inner_loss)), grads = jax.value_and_grad(
                meta_loss, has_aux=True
            )(state.meta_params, state.inner, step_key)
        finite = jnp.isfinite(total) & _all_finite(grads)
        updates, outer_state = outer.update(grads, state.outer_state, state.meta_params)
        meta_params = _select(
            finite, optax.apply_updates(state.meta_params, updates), state.meta_params
        )
        outer_state = _select(finite, outer_state, state.outer_state)
        reset = reset_broken_pairs if estimator.antithetic else reset_broken
        fixed = [reset(fam, meta_params, states) for fam, states in zip(families, members(inner))]
        inner, resets = joined([f[0] for f in fixed]), sum(f[1] for f in fixed)
        skipped = state.skipped + (~finite).astype(jnp.int32)
        metrics = {
            "meta_loss": total,
            "loss_term": loss_term,
            "imitation_loss": imitation_term,
            "inner_loss": inner_loss,
            "meta_grad_norm": optax.tree_utils.tree_norm(grads),
            "skipped_steps": skipped,
            "instance_resets": resets,
        }
        return MetaState(meta_params, outer_state, inner, key, state.step + 1, skipped), metrics

    return meta_step
