"""PES and truncated ES: unbiasedness over a horizon, truncation bias, resets, scale and sign."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tasks
from meta_opt.options import LSTMOptimizer
from trainers.config.sections import UnrollOptions
from trainers.core.estimators import PESState, es_gradient, init_particles, pes_gradient
from trainers.core.unroll import initial_states, unroll

# The toy family: x in R^2 on 0.5 x^T A x (condition number 10), noisy gradients, a
# heavy-ball "learned optimizer" with meta-parameters log learning rate and momentum logit.
A = jnp.array([1.0, 10.0])
X0 = jnp.array([1.0, 1.0])
NOISE = 0.1
U, K = 2, 8  # steps per unroll, unrolls per horizon
SIGMA = 0.01
PAIRS = 4096
META = {
    "log_lr": jnp.array(np.log(0.05), jnp.float32),
    "momentum_logit": jnp.array(1.0, jnp.float32),
}


class Toy(NamedTuple):
    x: jax.Array
    v: jax.Array
    step: jax.Array
    key: jax.Array


def fresh_toy(key: jax.Array) -> Toy:
    return Toy(X0, jnp.zeros_like(X0), jnp.zeros([], jnp.int32), key)


def toy_unroll(meta_params, state: Toy):
    """U heavy-ball steps, resetting at the horizon; loss = mean of the U losses after each step."""
    state = jax.lax.cond(state.step >= U * K, lambda s: fresh_toy(s.key), lambda s: s, state)
    lr, beta = jnp.exp(meta_params["log_lr"]), jax.nn.sigmoid(meta_params["momentum_logit"])

    def step(s: Toy, _):
        key, batch_key = jax.random.split(s.key)
        v = beta * s.v + A * s.x + NOISE * jax.random.normal(batch_key, s.x.shape)
        x = s.x - lr * v
        return Toy(x, v, s.step + 1, key), 0.5 * jnp.sum(A * x * x)

    state, losses = jax.lax.scan(step, state, None, length=U)
    return state, jnp.mean(losses)


def toy_starts_fresh(state: Toy) -> jax.Array:
    return state.step >= U * K


START = fresh_toy(jax.random.PRNGKey(1))


def horizon_loss(per_unroll_meta):
    """Sum of the K unroll losses of one horizon from START, unroll k using meta-params [k]."""
    return jnp.sum(jax.lax.scan(lambda s, mp: toy_unroll(mp, s), START, per_unroll_meta)[1])


def repeat(meta_params):
    return jax.tree_util.tree_map(lambda m: jnp.broadcast_to(m, (K,) + m.shape), meta_params)


def full_gradient():
    """Backprop through all K unrolls (the meta-params shared by every unroll)."""
    return jax.grad(lambda mp: horizon_loss(repeat(mp)))(META)


def truncated_gradient():
    """Sum of per-unroll gradients, each unroll's start state held constant."""

    def one(state, _):
        start = jax.lax.stop_gradient(state)
        return toy_unroll(META, state)[0], jax.grad(lambda mp: toy_unroll(mp, start)[1])(META)

    per_unroll = jax.lax.scan(one, START, None, length=K)[1]
    return jax.tree_util.tree_map(lambda g: jnp.sum(g, axis=0), per_unroll)


@functools.cache
def per_pair_horizon_estimates(estimator):
    """PAIRS independent one-pair estimators from START, each summed over the K unrolls [PAIRS]."""

    def one_pair(key):
        state = init_particles(jax.tree_util.tree_map(lambda x: x[None], START), META)
        step = lambda state, k: estimator(
            toy_unroll, toy_starts_fresh, META, state, k, sigma=SIGMA
        )[:2][::-1]
        grads = jax.lax.scan(step, state, jax.random.split(key, K))[1]
        return jax.tree_util.tree_map(lambda g: jnp.sum(g, axis=0), grads)

    samples = jax.jit(jax.vmap(one_pair))(jax.random.split(jax.random.PRNGKey(0), PAIRS))
    return {k: (float(np.mean(v)), float(np.std(v) / np.sqrt(PAIRS))) for k, v in samples.items()}


def test_gaussian_smoothing_bias_is_negligible_at_this_sigma():
    # PES is unbiased for the gradient of E[L(theta + eps_1, ..., theta + eps_K)]: check it
    # equals the plain full gradient to far below the PES standard error (~0.09).
    keys = dict(zip(META, jax.random.split(jax.random.PRNGKey(7), len(META))))
    eps = {name: SIGMA * jax.random.normal(keys[name], (8192, K)) for name in META}
    smoothed_loss = lambda e: horizon_loss(jax.tree_util.tree_map(jnp.add, repeat(META), e))
    grads = jax.jit(jax.vmap(jax.grad(smoothed_loss)))(eps)
    full = full_gradient()
    for name in META:
        smoothed = float(
            jnp.mean(jnp.sum(grads[name], axis=1))
        )  # d/dtheta = sum over the K unrolls
        assert abs(smoothed - float(full[name])) < 5e-3, (name, smoothed, float(full[name]))


def test_pes_summed_over_a_horizon_matches_full_backprop_not_truncated_backprop():
    pes, full, truncated = (
        per_pair_horizon_estimates(pes_gradient),
        full_gradient(),
        truncated_gradient(),
    )
    for name, (mean, se) in pes.items():
        assert abs(mean - float(full[name])) < 3 * se, (name, mean, se, float(full[name]))
        assert abs(float(truncated[name]) - float(full[name])) > 10 * se, (
            name,
            float(truncated[name]),
        )
    # On this problem truncation even flips the sign of the learning-rate gradient.
    assert float(full["log_lr"]) < 0 < float(truncated["log_lr"])


def test_truncated_es_is_biased_like_truncated_backprop():
    es, full, truncated = (
        per_pair_horizon_estimates(es_gradient),
        full_gradient(),
        truncated_gradient(),
    )
    for name, (mean, se) in es.items():
        assert abs(mean - float(truncated[name])) < 3 * se, (name, mean, se, float(truncated[name]))
        assert abs(mean - float(full[name])) > 10 * se, name


class Recorder(NamedTuple):
    step: jax.Array
    seen: dict


def record_unroll(meta_params, state: Recorder):
    """Remembers the meta-params it ran with; a loss linear in them."""
    return Recorder(state.step + 1, meta_params), jnp.dot(
        meta_params["w"], jnp.array([1.0, -2.0, 3.0])
    )


def _recorder_state(steps, previous):
    zero = {"w": jnp.zeros((len(steps), 3))}
    inner = Recorder(jnp.asarray(steps, jnp.int32), zero)
    return init_particles(inner, {"w": jnp.zeros(3)})._replace(accumulated={"w": previous})


@pytest.mark.parametrize("estimator", [pes_gradient, es_gradient], ids=["pes", "es"])
def test_accumulation_restarts_exactly_where_an_instance_starts_fresh(estimator):
    previous = jnp.arange(12.0).reshape(4, 3) + 1.0
    state = _recorder_state([0, 2, 1, 5], previous)
    starts_fresh = lambda s: s.step >= 2  # instances 1 and 3 reset in this unroll
    theta = {"w": jnp.zeros(3)}  # theta = 0: the particles' meta-params are exactly +eps and -eps
    _, new, metrics = estimator(
        record_unroll, starts_fresh, theta, state, jax.random.PRNGKey(3), sigma=0.5
    )
    eps = new.positive.seen["w"]
    np.testing.assert_array_equal(
        new.negative.seen["w"], -eps if estimator is pes_gradient else eps
    )
    assert np.all(np.abs(eps) > 0) and not np.allclose(eps[0], eps[1])  # a fresh draw per instance
    fresh = np.array([False, True, False, True])[:, None]
    expected = np.where(fresh, eps, previous + eps) if estimator is pes_gradient else eps
    np.testing.assert_array_equal(new.accumulated["w"], expected)
    assert int(metrics["resets"]) == 2


def test_estimate_is_delta_loss_times_direction_over_two_sigma_squared():
    w, sigma = jnp.array([1.0, -2.0, 3.0]), 0.5
    state = _recorder_state([0, 0, 0, 0], jnp.ones((4, 3)))
    never = lambda s: jnp.zeros([], bool)
    grad, new, metrics = pes_gradient(
        record_unroll, never, {"w": jnp.zeros(3)}, state, jax.random.PRNGKey(4), sigma=sigma
    )
    eps, acc = new.positive.seen["w"], new.accumulated["w"]
    delta = 2.0 * eps @ w  # L+ - L- of a loss linear in the meta-params
    np.testing.assert_allclose(
        grad["w"], np.mean(delta[:, None] * acc, axis=0) / (2 * sigma**2), rtol=1e-5
    )
    np.testing.assert_allclose(metrics["loss"], 0.0, atol=1e-6)  # (L+ + L-)/2 = w . theta = 0


def linear_chain_unroll(meta_params, state):
    """s_t = s_{t-1} + w . theta_t, loss_t = s_t, reset to 0 at step 3: d/dtheta sum = (1+2+3) w."""
    total, step = jnp.where(state[1] >= 3, 0.0, state[0]), jnp.where(state[1] >= 3, 0, state[1])
    total = total + jnp.dot(meta_params, jnp.array([1.0, -2.0]))
    return (total, step + 1), total


def test_pes_recovers_the_analytic_horizon_gradient_and_es_the_truncated_one():
    n, w = 20000, np.array([1.0, -2.0])
    theta = jnp.array([0.3, -0.1])
    states = init_particles((jnp.zeros(n), jnp.zeros(n, jnp.int32)), theta)
    starts_fresh = lambda s: s[1] >= 3
    for estimator, per_horizon in ((pes_gradient, 6.0), (es_gradient, 3.0)):  # 1+2+3 vs 1+1+1

        def step(state, key, estimator=estimator):
            grad, state, _ = estimator(
                linear_chain_unroll, starts_fresh, theta, state, key, sigma=1e-2
            )
            return state, grad

        keys = jax.random.split(jax.random.PRNGKey(5), 6)  # two horizons
        total = jnp.sum(jax.jit(lambda keys: jax.lax.scan(step, states, keys)[1])(keys), axis=0)
        # a sign error or a factor of 2 in the estimator would miss by far more than this
        np.testing.assert_allclose(total, 2 * per_horizon * w, rtol=0.1)


def test_pes_runs_on_the_real_unroll_under_jit_with_the_meta_params_structure():
    family, learned = tasks.get_family("quadratic"), LSTMOptimizer(hidden_sizes=(4,))
    options = UnrollOptions(horizon=4, unroll_length=2)
    meta_params = learned.init(jax.random.PRNGKey(0))
    inner = jax.jit(lambda mp, key: initial_states(family, learned, mp, key, 4, options))(
        meta_params, jax.random.PRNGKey(1)
    )
    unroll_fn = lambda mp, s: (lambda out: (out[0], out[1][0]))(
        unroll(family, learned, options, mp, s)
    )
    starts_fresh = lambda s: s.step >= options.horizon
    step = jax.jit(functools.partial(pes_gradient, unroll_fn, starts_fresh, sigma=0.01))
    state: PESState = init_particles(inner, meta_params)
    resets = []
    for key in jax.random.split(jax.random.PRNGKey(2), 2):
        grad, state, metrics = step(meta_params, state, key)
        resets.append(int(metrics["resets"]))
        assert jax.tree_util.tree_structure(grad) == jax.tree_util.tree_structure(meta_params)
        assert jax.tree_util.tree_map(jnp.shape, grad) == jax.tree_util.tree_map(
            jnp.shape, meta_params
        )
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grad))
        assert np.isfinite(float(metrics["loss"]))
    assert any(float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree_util.tree_leaves(grad))
    assert resets == [0, 2]  # staggered starts [0, 0, 2, 2]: two instances reach the horizon
    assert step._cache_size() == 1  # the second call did not recompile
    # the two particles of a pair stay at the same inner step (they reset together)
    np.testing.assert_array_equal(state.positive.step, state.negative.step)
