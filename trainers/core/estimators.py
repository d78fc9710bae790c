"""Meta-gradient estimators from antithetic perturbations: PES and truncated ES.

They plug in beside truncated backprop: each consumes a per-instance truncated
unroll `unroll_fn(meta_params, inner_state) -> (inner_state, loss)` and returns a
meta-gradient estimate, never differentiating through `unroll_fn`. Each of the N
instances in flight is a pair of particles, one unrolled with meta-parameters
theta + epsilon and one with theta - epsilon, epsilon ~ N(0, sigma^2 I) drawn
afresh for every unroll and shared by the pair. Inner states carry their own PRNG
keys, so both particles of a pair see the same minibatches and resets (common
random numbers) and L+ - L- measures the perturbation alone.

Truncated ES (`es_gradient`) weights L+ - L- by this unroll's epsilon only. Like
truncated backprop it ignores how the meta-parameters of earlier unrolls shaped
the state the unroll starts from, so it is biased the same way (toward greedy,
short-horizon behaviour). PES (`pes_gradient`) keeps each particle's own state
across unrolls and weights L+ - L- by the sum of all the perturbations applied
since the instance's last reset, which also credits earlier unrolls' meta-parameters
with their effect on this loss. Summed over the unrolls of a horizon, the PES
estimates are unbiased for the gradient of the Gaussian-smoothed sum of the
unroll losses (full backprop through the horizon, as sigma -> 0), at the price
of a variance that grows with the number of unrolls since the reset.

Both return the mean over the N pairs of (L+ - L-) * direction / (2 sigma^2): a
gradient of the mean over instances of one unroll's loss, the normalisation of
`trainers.core.meta_step` (whose meta-loss averages the N unroll terms).

References:
  Vicol, Metz & Sohl-Dickstein, "Unbiased gradient estimation in unrolled
  computation graphs with persistent evolution strategies", ICML 2021 (PES,
  Algorithm 2, antithetic variant).
  Salimans et al., "Evolution strategies as a scalable alternative to
  reinforcement learning", 2017 (antithetic ES).
  Metz et al., learned_optimization (github.com/google/learned_optimization),
  `outer_trainers/truncated_pes.py` (`compute_pes_grad`: the accumulator
  restarts at the fresh perturbation where an instance finished, and the
  estimate is delta_loss * perturbation / (2 std^2) averaged over tasks) and
  `outer_trainers/truncated_es.py` (`compute_es_grad`; it carries on from the
  positive particle's state, as `es_gradient` does). Written anew here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from common.pytree import PyTree

UnrollFn = Callable[[PyTree, PyTree], tuple[PyTree, jax.Array]]
StartsFreshFn = Callable[[PyTree], jax.Array]


class PESState(NamedTuple):
    """The particles in flight and their perturbation sums (leading axis N everywhere).

    Attributes:
      positive: the inner states of the +epsilon particles, batched [N, ...].
      negative: the inner states of the -epsilon particles, batched [N, ...].
      accumulated: per instance, the sum of the perturbations applied since its
        last reset; a pytree like the meta-parameters with leading axis N. After
        an estimator step it includes that step's perturbation.
    """

    positive: PyTree
    negative: PyTree
    accumulated: PyTree


def _num_instances(tree: PyTree) -> int:
    return jax.tree_util.tree_leaves(tree)[0].shape[0]


def init_particles(inner_states: PyTree, meta_params: PyTree) -> PESState:
    """Both particles of each pair start as the given instance, with nothing accumulated.

    Args:
      inner_states: N inner states stacked along axis 0.
      meta_params: the meta-parameters (shapes and dtypes of the accumulators).

    Returns:
      A `PESState` whose particles are copies of `inner_states` and whose
      accumulated perturbations are zeros of shape [N, *meta_param.shape].
    """
    n = _num_instances(inner_states)
    chex.assert_tree_shape_prefix(inner_states, (n,))
    zeros = jax.tree_util.tree_map(
        lambda p: jnp.zeros((n,) + jnp.shape(p), jnp.result_type(p)), meta_params
    )
    return PESState(inner_states, inner_states, zeros)


def _perturbation(meta_params: PyTree, key: jax.Array, sigma: float) -> PyTree:
    """One epsilon ~ N(0, sigma^2 I) shaped like the meta-parameters (a key per leaf)."""
    leaves, treedef = jax.tree_util.tree_flatten(meta_params)
    keys = jax.random.split(key, len(leaves))
    noise = [
        sigma * jax.random.normal(k, jnp.shape(p), jnp.result_type(p)) for k, p in zip(keys, leaves)
    ]
    return jax.tree_util.tree_unflatten(treedef, noise)


def _pair_unroll(
    unroll_fn: UnrollFn, meta_params: PyTree, epsilon: PyTree, positive: PyTree, negative: PyTree
) -> tuple[PyTree, PyTree, jax.Array, jax.Array]:
    """One instance's antithetic pair: unrolls at theta + epsilon and theta - epsilon."""
    plus = jax.tree_util.tree_map(lambda t, e: t + e, meta_params, epsilon)
    minus = jax.tree_util.tree_map(lambda t, e: t - e, meta_params, epsilon)
    positive, loss_plus = unroll_fn(plus, positive)
    negative, loss_minus = unroll_fn(minus, negative)
    return positive, negative, loss_plus, loss_minus


def _accumulate(keep: jax.Array, accumulated: PyTree, epsilon: PyTree) -> PyTree:
    """One instance's new perturbation sum: previous + epsilon, or epsilon alone after a reset."""
    return jax.tree_util.tree_map(lambda a, e: jnp.where(keep, a + e, e), accumulated, epsilon)


def _estimate(delta: jax.Array, directions: PyTree, sigma: float) -> PyTree:
    """mean_i delta_i * direction_i / (2 sigma^2), with delta [N] and directions [N, ...]."""
    scale = delta / (2.0 * sigma**2)
    weighted = lambda d: scale.reshape((-1,) + (1,) * (d.ndim - 1)).astype(d.dtype) * d
    return jax.tree_util.tree_map(lambda d: jnp.mean(weighted(d), axis=0), directions)


def _antithetic_step(
    unroll_fn: UnrollFn,
    starts_fresh_fn: StartsFreshFn,
    meta_params: PyTree,
    state: PESState,
    key: jax.Array,
    sigma: float,
    persistent: bool,
):
    """One unroll of every pair and the estimate; PES if `persistent`, else truncated ES."""
    n = _num_instances(state.accumulated)
    chex.assert_tree_shape_prefix((state.positive, state.negative, state.accumulated), (n,))
    epsilon = jax.vmap(_perturbation, in_axes=(None, 0, None))(
        meta_params, jax.random.split(key, n), sigma
    )
    fresh = jax.vmap(starts_fresh_fn, in_axes=0)(state.positive)
    chex.assert_shape(fresh, (n,))
    keep = jnp.logical_not(fresh) if persistent else jnp.zeros((n,), bool)
    accumulated = jax.vmap(_accumulate, in_axes=(0, 0, 0))(keep, state.accumulated, epsilon)
    positive, negative, loss_plus, loss_minus = jax.vmap(
        functools.partial(_pair_unroll, unroll_fn), in_axes=(None, 0, 0, 0)
    )(meta_params, epsilon, state.positive, state.negative)
    chex.assert_shape((loss_plus, loss_minus), (n,))
    delta = loss_plus - loss_minus
    gradient = _estimate(delta, accumulated, sigma)
    if not persistent:  # both particles go on from one state, as learned_optimization's TruncatedES
        negative = positive
    metrics = {
        "loss": jnp.mean((loss_plus + loss_minus) / 2.0),
        "delta_loss": jnp.mean(jnp.abs(delta)),
        "resets": jnp.sum(fresh.astype(jnp.int32)),
    }
    return gradient, PESState(positive, negative, accumulated), metrics


def pes_gradient(
    unroll_fn: UnrollFn,
    starts_fresh_fn: StartsFreshFn,
    meta_params: PyTree,
    state: PESState,
    key: jax.Array,
    *,
    sigma: float,
) -> tuple[PyTree, PESState, dict[str, jax.Array]]:
    """Antithetic Persistent Evolution Strategies: one unroll of N pairs, one estimate.

    Each pair draws epsilon_i; its +particle unrolls with theta + epsilon_i and its
    -particle with theta - epsilon_i, each from its own persistent state. The
    accumulated perturbation becomes epsilon_i if the instance starts fresh in this
    unroll (`starts_fresh_fn` of its state before the unroll), otherwise the
    previous sum plus epsilon_i. The estimate is
    mean_i (L+_i - L-_i) * accumulated_i / (2 sigma^2).

    Args:
      unroll_fn: one instance's truncated unroll, `(meta_params, inner_state) ->
        (inner_state, scalar loss)`; deterministic given the state (its keys).
      starts_fresh_fn: `inner_state -> bool[]`, whether the unroll from that state
        begins with a reset to a fresh inner problem.
      meta_params: theta, the unperturbed meta-parameters.
      state: the pairs in flight (`init_particles`).
      key: PRNG key of this step's perturbations.
      sigma: standard deviation of each perturbation coordinate; small enough that
        Gaussian smoothing does not bias the estimate, large enough for float
        precision in L+ - L-.

    Returns:
      `(gradient like meta_params, new PESState, metrics)`; metrics hold "loss",
      the mean of (L+ + L-)/2, "delta_loss", the mean |L+ - L-|, and "resets".
    """
    return _antithetic_step(
        unroll_fn, starts_fresh_fn, meta_params, state, key, sigma, persistent=True
    )


def es_gradient(
    unroll_fn: UnrollFn,
    starts_fresh_fn: StartsFreshFn,
    meta_params: PyTree,
    state: PESState,
    key: jax.Array,
    *,
    sigma: float,
) -> tuple[PyTree, PESState, dict[str, jax.Array]]:
    """Antithetic truncated ES: as `pes_gradient`, but only this unroll's perturbation counts.

    The accumulation restarts every unroll (`accumulated` becomes epsilon_i) and,
    after the unroll, both particles continue from the +particle's state, so the
    next pair starts from one state. The estimate smooths the loss of this unroll
    alone with its start state held fixed: biased like truncated backprop, with
    lower variance than PES. `starts_fresh_fn` only feeds the "resets" metric.

    Args and Returns: as `pes_gradient`.
    """
    return _antithetic_step(
        unroll_fn, starts_fresh_fn, meta_params, state, key, sigma, persistent=False
    )
