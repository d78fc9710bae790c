"""One meta-training step: unroll N instances, meta-gradient, outer update, NaN guard.

The whole step is one pure function of a `MetaState`, jitted once by the caller.
A step whose meta-loss or meta-gradient is not finite leaves the meta-parameters
and the outer optimizer untouched and is counted; an instance whose parameters
became non-finite is reset to fresh parameters, so one bad task cannot poison
the following steps or a checkpoint.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from meta_opt.inner_step import task_objective
from meta_opt.options import LSTMOptimizer
from tasks.base import TaskFamily
from trainers.config.sections import EstimatorOptions, UnrollOptions
from trainers.core.estimators import PESState, es_gradient, pes_gradient
from trainers.core.imitation import imitation_loss
from trainers.core.on_policy import OnPolicy, on_policy_loss
from trainers.core.unroll import SCORE_TAG, InnerState, fresh_state, unroll

PyTree = Any


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
        if min(self.loss_weight, self.imitation_weight) < 0 or self.loss_weight + self.imitation_weight <= 0:
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


def make_meta_step(family: TaskFamily, learned: LSTMOptimizer, unroll_options: UnrollOptions,
                   objective: MetaObjective, outer: optax.GradientTransformation,
                   targets: Optional[Targets] = None, on_policy: Optional[OnPolicy] = None,
                   estimator: EstimatorOptions = EstimatorOptions()):
    """Builds `meta_step(state) -> (state, metrics)`; jit it once.

    The imitation term follows fixed `targets`, or, with `on_policy`, segments made
    inside the step from the learned optimizer's own states (`trainers.core.on_policy`).
    The inner-loss term's meta-gradient is backpropagated through each unroll, or with
    `estimator` ES or PES estimated from antithetic unrolls (`state.inner` is then a
    `PESState`); the imitation term's is always backpropagated.

    Raises:
      ValueError: an imitation weight without targets or on-policy segments, or both given.
    """
    if objective.imitation_weight > 0 and (targets is None) == (on_policy is None):
        raise ValueError("imitation_weight > 0 needs either geodesic targets or on-policy segments")
    one_unroll = lambda meta_params, inner: unroll(family, learned, unroll_options, meta_params, inner)

    def imitation(meta_params, key):
        if objective.imitation_weight == 0:
            return jnp.zeros([])
        if on_policy is not None:  # fresh instances of the family, segments from the learner's states
            instance_key, run_key = jax.random.split(key)
            return jnp.mean(jax.vmap(lambda i, k: on_policy_loss(
                family, learned, meta_params, on_policy, i, k, unroll_options.second_order))(
                jax.random.split(instance_key, objective.imitation_batch),
                jax.random.split(run_key, objective.imitation_batch)))
        count = targets.instance_keys.shape[0]
        pick_key, run_key = jax.random.split(key)
        pick = jax.random.randint(pick_key, (objective.imitation_batch,), 0, count)
        take = lambda tree: jax.tree_util.tree_map(lambda x: x[pick], tree)
        losses = jax.vmap(lambda s, p, i, k: imitation_loss(
            family, learned, meta_params, s, p, i, k, unroll_options.second_order, targets.weights))(
            take(targets.start), take(targets.points), targets.instance_keys[pick],
            jax.random.split(run_key, objective.imitation_batch))
        return jnp.mean(losses)

    def meta_loss(meta_params, inner, key):
        new_inner, (terms, last_losses) = jax.vmap(one_unroll, in_axes=(None, 0))(meta_params, inner)
        loss_term, imitation_term = jnp.mean(terms), imitation(meta_params, key)
        total = objective.loss_weight * loss_term + objective.imitation_weight * imitation_term
        return total, (new_inner, loss_term, imitation_term, jnp.mean(last_losses))

    def reset_broken(meta_params, inner: InnerState) -> tuple[InnerState, jax.Array]:
        def fix(state):
            ok = _all_finite(state.params)
            fresh = fresh_state(family, learned, meta_params, state.instance_key, state.key)
            return _select(ok, state, fresh), ~ok
        fixed, broken = jax.vmap(fix)(inner)
        return fixed, jnp.sum(broken)

    def antithetic_loss(meta_params, particles: PESState, key):
        """ES/PES: (total, aux, grads) like `value_and_grad(meta_loss)`, the loss term estimated."""
        estimate = pes_gradient if estimator.name == "pes" else es_gradient
        estimate_key, imitation_key = jax.random.split(key)
        term = lambda mp, s: (lambda out: (out[0], out[1][0]))(one_unroll(mp, s))
        loss_grads, particles, estimated = estimate(term, lambda s: s.step >= unroll_options.horizon,
                                                    meta_params, particles, estimate_key, sigma=estimator.sigma)
        imitation_term, imitation_grads = jax.value_and_grad(imitation)(meta_params, imitation_key)
        grads = jax.tree_util.tree_map(lambda a, b: objective.loss_weight * a + objective.imitation_weight * b,
                                       loss_grads, imitation_grads)
        total = objective.loss_weight * estimated["loss"] + objective.imitation_weight * imitation_term
        final = jax.vmap(lambda s: task_objective(family.instance(s.instance_key))(
            s.params, jax.random.fold_in(s.key, SCORE_TAG)))(particles.positive)  # F(theta_U), as `unroll`
        return total, (particles, estimated["loss"], imitation_term, jnp.mean(final)), grads

    def reset_broken_pairs(meta_params, particles: PESState) -> tuple[PESState, jax.Array]:
        def fix(positive, negative, accumulated):
            ok = _all_finite(positive.params) & _all_finite(negative.params)
            fresh = fresh_state(family, learned, meta_params, positive.instance_key, positive.key)
            zeros = jax.tree_util.tree_map(jnp.zeros_like, accumulated)
            return _select(ok, positive, fresh), _select(ok, negative, fresh), _select(ok, accumulated, zeros), ~ok
        positive, negative, accumulated, broken = jax.vmap(fix)(*particles)
        return PESState(positive, negative, accumulated), jnp.sum(broken)

    def meta_step(state: MetaState) -> tuple[MetaState, dict[str, jax.Array]]:
        key, step_key = jax.random.split(state.key)
        if estimator.antithetic:
            total, (inner, loss_term, imitation_term, inner_loss), grads = antithetic_loss(
                state.meta_params, state.inner, step_key)
        else:
            (total, (inner, loss_term, imitation_term, inner_loss)), grads = jax.value_and_grad(
                meta_loss, has_aux=True)(state.meta_params, state.inner, step_key)
        finite = jnp.isfinite(total) & _all_finite(grads)
        updates, outer_state = outer.update(grads, state.outer_state, state.meta_params)
        meta_params = _select(finite, optax.apply_updates(state.meta_params, updates), state.meta_params)
        outer_state = _select(finite, outer_state, state.outer_state)
        inner, resets = (reset_broken_pairs if estimator.antithetic else reset_broken)(meta_params, inner)
        skipped = state.skipped + (~finite).astype(jnp.int32)
        metrics = {"meta_loss": total, "loss_term": loss_term, "imitation_loss": imitation_term,
                   "inner_loss": inner_loss, "meta_grad_norm": optax.tree_utils.tree_norm(grads),
                   "skipped_steps": skipped, "instance_resets": resets}
        return MetaState(meta_params, outer_state, inner, key, state.step + 1, skipped), metrics

    return meta_step
