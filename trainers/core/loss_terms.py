"""The inner-loss term of the meta-loss and its meta-gradient: backpropagated or estimated.

The gradient estimator is the one thing that differs between truncated backprop and ES/PES
(the split of learned_optimization's `TruncatedStep` / `GradientEstimator`): both unroll
every family's N instances for U steps and return a `LossTerm`; backprop differentiates
through the unrolls, ES/PES estimates from antithetic particle pairs
(`trainers.core.estimators`). Several task families are one list: the term is the mean of
each family's mean, its meta-gradient the mean of theirs.

References:
  Metz et al., learned_optimization (github.com/google/learned_optimization),
  `outer_trainers/gradient_learner.py` and `truncated_pes.py`: an outer step composed of a
  truncated unroll and a gradient estimator. Written anew here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from common.pytree import PyTree
from meta_opt.architectures import LearnedOptimizerConfig
from meta_opt.inner_step import task_objective
from tasks.base import TaskFamily
from trainers.config.sections import EstimatorOptions, UnrollOptions
from trainers.core.estimators import PESState, es_gradient, pes_gradient
from trainers.core.unroll import SCORE_TAG, InnerState, fresh_state, unroll


class LossTerm(NamedTuple):
    """One meta-step's inner-loss term over every family.

    Attributes:
      value: the mean over families of each family's mean unroll term, [].
      grads: its meta-gradient, like the meta-parameters (zeros where not differentiated).
      inner: each family's instances after the unroll, in family order (`InnerState`s, or
        `PESState`s for ES/PES).
      final_loss: mean F(theta_U) of the first family's instances, [] (the "inner_loss" metric).
    """

    value: jax.Array
    grads: PyTree
    inner: list
    final_loss: jax.Array


LossTermFn = Callable[[PyTree, list, jax.Array], LossTerm]  # (meta_params, inner, key)


def _unroll_fn(family: TaskFamily, learned: LearnedOptimizerConfig, options: UnrollOptions):
    return lambda meta_params, state: unroll(family, learned, options, meta_params, state)


def backprop_term(
    families: Sequence[TaskFamily],
    learned: LearnedOptimizerConfig,
    options: UnrollOptions,
    differentiate: bool = True,
) -> LossTermFn:
    """Truncated backprop through each family's vmapped unroll (the key is unused).

    With `differentiate=False` (a meta-loss without the loss term) the unrolls only
    advance the instances and the gradient is zero.
    """
    unrolls = [jax.vmap(_unroll_fn(f, learned, options), in_axes=(None, 0)) for f in families]

    def value(meta_params, inner):
        outs = [run(meta_params, states) for run, states in zip(unrolls, inner)]
        term = jnp.mean(jnp.stack([jnp.mean(terms) for _, (terms, _) in outs]))
        first_final = jnp.mean(outs[0][1][1])
        return term, ([states for states, _ in outs], first_final)

    def loss_term(meta_params, inner, key):
        del key
        if differentiate:
            (term, (after, final)), grads = jax.value_and_grad(value, has_aux=True)(
                meta_params, inner
            )
        else:
            term, (after, final) = value(meta_params, inner)
            grads = jax.tree_util.tree_map(jnp.zeros_like, meta_params)
        return LossTerm(term, grads, after, final)

    return loss_term


def antithetic_term(
    families: Sequence[TaskFamily],
    learned: LearnedOptimizerConfig,
    options: UnrollOptions,
    estimator: EstimatorOptions,
) -> LossTermFn:
    """ES or PES (`estimator.name`) on each family's particle pairs; family i > 0 folds i into the key."""
    estimate = pes_gradient if estimator.name == "pes" else es_gradient
    starts_fresh = lambda s: s.step >= options.horizon

    def one_family(family, meta_params, particles: PESState, key):
        run = _unroll_fn(family, learned, options)
        term = lambda mp, s: (lambda out: (out[0], out[1][0]))(run(mp, s))
        grads, particles, metrics = estimate(
            term, starts_fresh, meta_params, particles, key, sigma=estimator.sigma
        )
        final = jax.vmap(  # F(theta_U) of the +particles, scored as `unroll` scores it
            lambda s: task_objective(family.instance(s.instance_key))(
                s.params, jax.random.fold_in(s.key, SCORE_TAG)
            )
        )(particles.positive)
        return grads, particles, metrics["loss"], jnp.mean(final)

    def loss_term(meta_params, inner, key):
        keys = [key] + [jax.random.fold_in(key, i) for i in range(1, len(families))]
        outs = [one_family(f, meta_params, p, k) for f, p, k in zip(families, inner, keys)]
        grads = jax.tree_util.tree_map(lambda *g: sum(g) / len(g), *[o[0] for o in outs])
        value = jnp.mean(jnp.stack([o[2] for o in outs]))
        return LossTerm(value, grads, [o[1] for o in outs], outs[0][3])

    return loss_term


def all_finite(tree: PyTree) -> jax.Array:
    """Whether every entry of every leaf is finite, [] bool."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


def select_where(flag: jax.Array, new: PyTree, old: PyTree) -> PyTree:
    """`new` where `flag` (a scalar) holds, else `old`, leaf by leaf."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(flag, a, b), new, old)


def reset_nonfinite(
    family: TaskFamily, learned: LearnedOptimizerConfig, meta_params: PyTree, states
) -> tuple[InnerState | PESState, jax.Array]:
    """Instances whose parameters are not finite restart fresh; returns them and the count.

    For ES/PES both particles of a pair restart, and its accumulated perturbation is zeroed.
    """

    def fresh(state):
        return fresh_state(family, learned, meta_params, state.instance_key, state.key)

    if isinstance(states, PESState):

        def fix_pair(positive, negative, accumulated):
            ok = all_finite(positive.params) & all_finite(negative.params)
            new, zeros = fresh(positive), jax.tree_util.tree_map(jnp.zeros_like, accumulated)
            pair = (select_where(ok, positive, new), select_where(ok, negative, new))
            return (*pair, select_where(ok, accumulated, zeros), ~ok)

        positive, negative, accumulated, broken = jax.vmap(fix_pair)(*states)
        return PESState(positive, negative, accumulated), jnp.sum(broken)

    def fix(state):
        ok = all_finite(state.params)
        return select_where(ok, state, fresh(state)), ~ok

    fixed, broken = jax.vmap(fix)(states)
    return fixed, jnp.sum(broken)
