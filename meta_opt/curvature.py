"""Curvature-preconditioned SGD: equilibrated SGD (ESGD) and the Jacobi preconditioner.

Both estimate a diagonal preconditioner from Hessian-vector products Hv with
Gaussian probes v ~ N(0, I), one probe every `update_interval` steps:

- equilibration: D accumulates (Hv)^2, whose mean is diag(H^2), the squared row
  norms of H; the preconditioner sqrt(D/k) stays positive on indefinite H.
- Jacobi: D accumulates v * Hv, whose mean is diag(H) (Hutchinson); the
  preconditioner |D/k| collapses towards zero where opposing curvatures cancel.

The step is -lr * grad / (preconditioner + damping). Hv costs about two
gradients (Pearlmutter's trick: forward-mode derivative of the gradient).

References:
  Dauphin, de Vries & Bengio, "Equilibrated adaptive learning rates for
  non-convex optimization", NeurIPS 2015.
  Pearlmutter, "Fast exact multiplication by the Hessian", 1994.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from common.pytree import PyTree

Estimator = Literal["equilibration", "jacobi"]


def hessian_vector_product(
    value_fn: Callable[[PyTree], jax.Array], params: PyTree, vector: PyTree
) -> PyTree:
    """H(params) @ vector for the Hessian H of `value_fn`, as a forward-mode derivative of its gradient."""
    return jax.jvp(jax.grad(value_fn), (params,), (vector,))[1]


class CurvatureState(NamedTuple):
    """State of `scale_by_curvature`.

    Attributes:
      count: updates seen, [] int32.
      num_probes: probes accumulated (k), [] int32.
      accumulator: the running sum (or moving average) D, shaped like params.
      key: PRNG key for the next probe.
      inverse: 1 / (preconditioner + damping), refreshed with D so that the
        steps between probes cost one multiplication.
    """

    count: jax.Array
    num_probes: jax.Array
    accumulator: PyTree
    key: jax.Array
    inverse: PyTree


def _as_key(key: jax.Array | int) -> jax.Array:
    return jax.random.PRNGKey(key) if isinstance(key, int) else key


def scale_by_curvature(
    estimator: Estimator,
    damping: float = 1e-4,
    update_interval: int = 20,
    ema_decay: float | None = None,
    key: jax.Array | int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Divides updates by a curvature estimate plus `damping`.

    Args:
      estimator: "equilibration" (ESGD) or "jacobi".
      damping: lambda added to the preconditioner.
      update_interval: a new probe every this many updates (the first update probes).
      ema_decay: None for the running mean of the probes; else the decay of a
        bias-corrected exponential moving average, which forgets old curvature.
      key: PRNG key (or integer seed) of the probes; kept in the state.

    Returns:
      A transformation whose `update(updates, state, params, value_fn=f)` needs
      the current params and the objective `f(params) -> scalar` (the keyword
      optax's line searches use). Jit the training step: called eagerly, the
      probe branch is compiled anew on every call.
    """
    if estimator not in ("equilibration", "jacobi"):
        raise ValueError(f"estimator must be 'equilibration' or 'jacobi', got {estimator!r}")
    if update_interval < 1:
        raise ValueError(f"update_interval must be >= 1, got {update_interval}")

    def init_fn(params: PyTree) -> CurvatureState:
        zeros = optax.tree_utils.tree_zeros_like(params)
        return CurvatureState(
            jnp.zeros([], jnp.int32), jnp.zeros([], jnp.int32), zeros, _as_key(key), zeros
        )

    def probe(state: CurvatureState, value_fn, params) -> CurvatureState:
        next_key, probe_key = jax.random.split(state.key)
        v = optax.tree_utils.tree_random_like(probe_key, params, jax.random.normal)
        hv = hessian_vector_product(value_fn, params, v)
        if estimator == "equilibration":
            sample = jax.tree_util.tree_map(jnp.square, hv)
        else:
            sample = jax.tree_util.tree_map(jnp.multiply, v, hv)
        if ema_decay is None:
            accumulator = jax.tree_util.tree_map(jnp.add, state.accumulator, sample)
        else:
            accumulator = jax.tree_util.tree_map(
                lambda d, s: ema_decay * d + (1 - ema_decay) * s, state.accumulator, sample
            )
        state = state._replace(
            num_probes=state.num_probes + 1, accumulator=accumulator, key=next_key
        )
        preconditioner = curvature_preconditioner(estimator, state, ema_decay)
        inverse = jax.tree_util.tree_map(lambda d: 1 / (d + damping), preconditioner)
        return state._replace(inverse=inverse)

    def update_fn(updates, state: CurvatureState, params=None, *, value_fn=None, **extra_args):
        del extra_args
        if params is None or value_fn is None:
            raise ValueError(
                f"{estimator} needs the current params and value_fn=objective "
                "in update(grads, state, params, value_fn=f)"
            )
        refresh = state.count % update_interval == 0
        state = jax.lax.cond(refresh, lambda s: probe(s, value_fn, params), lambda s: s, state)
        updates = jax.tree_util.tree_map(jnp.multiply, updates, state.inverse)
        return updates, state._replace(count=optax.safe_int32_increment(state.count))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def curvature_preconditioner(
    estimator: Estimator, state: CurvatureState, ema_decay: float | None = None
) -> PyTree:
    """The preconditioner the state encodes: sqrt(mean (Hv)^2) or |mean v*Hv|, per coordinate."""
    k = jnp.maximum(state.num_probes, 1).astype(jnp.float32)
    norm = k if ema_decay is None else 1 - ema_decay**k
    mean = jax.tree_util.tree_map(lambda d: d / norm.astype(d.dtype), state.accumulator)
    if estimator == "equilibration":
        return jax.tree_util.tree_map(jnp.sqrt, mean)
    return jax.tree_util.tree_map(jnp.abs, mean)


def _preconditioned_sgd(
    estimator: Estimator,
    learning_rate,
    damping,
    update_interval,
    ema_decay,
    momentum,
    nesterov,
    key,
) -> optax.GradientTransformationExtraArgs:
    steps = [scale_by_curvature(estimator, damping, update_interval, ema_decay, key)]
    if momentum:
        steps.append(optax.trace(decay=momentum, nesterov=nesterov))
    steps.append(optax.scale_by_learning_rate(learning_rate))
    return optax.chain(*steps)


def esgd(
    learning_rate: optax.ScalarOrSchedule,
    damping: float = 1e-4,
    update_interval: int = 20,
    *,
    ema_decay: float | None = None,
    momentum: float | None = None,
    nesterov: bool = False,
    key: jax.Array | int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Equilibrated SGD: step -lr * grad / (sqrt(D/k) + damping), D the sum of (Hv)^2.

    Args:
      learning_rate: epsilon, a float or an optax schedule.
      damping: lambda.
      update_interval: a new Hessian-vector probe every this many steps.
      ema_decay: use a bias-corrected moving average of (Hv)^2 instead of the mean.
      momentum: optional heavy-ball momentum on the preconditioned step.
      nesterov: Nesterov momentum instead of heavy-ball.
      key: PRNG key or seed of the probes.

    Returns:
      An optax transformation; call `update(grads, state, params, value_fn=f)`.
    """
    return _preconditioned_sgd(
        "equilibration", learning_rate, damping, update_interval, ema_decay, momentum, nesterov, key
    )


def jacobi(
    learning_rate: optax.ScalarOrSchedule,
    damping: float = 1e-4,
    update_interval: int = 20,
    *,
    ema_decay: float | None = None,
    momentum: float | None = None,
    nesterov: bool = False,
    key: jax.Array | int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Jacobi-preconditioned SGD: step -lr * grad / (|mean v*Hv| + damping); arguments as `esgd`."""
    return _preconditioned_sgd(
        "jacobi", learning_rate, damping, update_interval, ema_decay, momentum, nesterov, key
    )
