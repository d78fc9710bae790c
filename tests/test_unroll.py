"""Truncated unrolls: staggering, horizon resets, loss kinds and second derivatives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import tasks
from meta_opt import LSTMOptimizer
from trainers.config.sections import UnrollOptions
from trainers.core.unroll import initial_states, reduce_losses, unroll

KEY = jax.random.PRNGKey(0)
LEARNED = LSTMOptimizer(hidden_sizes=(8,))


def test_instances_are_staggered_and_reset_at_the_horizon():
    family = tasks.get_family("quadratic")
    options = UnrollOptions(horizon=20, unroll_length=5)
    meta_params = LEARNED.init(KEY)
    states = initial_states(family, LEARNED, meta_params, KEY, 4, options)
    np.testing.assert_array_equal(states.step, [0, 5, 10, 15])
    run = jax.jit(jax.vmap(lambda s: unroll(family, LEARNED, options, meta_params, s)))
    before = states
    states, _ = run(states)
    np.testing.assert_array_equal(states.step, [5, 10, 15, 20])
    states, _ = run(states)  # the last instance restarted: 5 steps since its reset
    np.testing.assert_array_equal(states.step, [10, 15, 20, 5])
    np.testing.assert_array_equal(states.instance_key, before.instance_key)  # same problems
    assert not np.allclose(before.params["theta"][3], states.params["theta"][3])


def test_loss_kinds_reduce_as_documented():
    losses, initial = jnp.array([4.0, 2.0, 1.0]), jnp.array(8.0)
    np.testing.assert_allclose(reduce_losses(losses, "mean", initial), 7.0 / 3, rtol=1e-6)
    np.testing.assert_allclose(reduce_losses(losses, "log", initial), np.mean(np.log([4.0, 2.0, 1.0])), rtol=1e-5)
    np.testing.assert_allclose(reduce_losses(losses, "normalized", initial), (0.5 + 0.25 + 0.125) / 3, rtol=1e-6)


def test_second_order_meta_gradient_differs_from_first_order_and_is_finite():
    family = tasks.get_family("quadratic")
    meta_params = LEARNED.init(KEY)

    def gradient(second_order):
        options = UnrollOptions(horizon=20, unroll_length=5, second_order=second_order)
        state = initial_states(family, LEARNED, meta_params, KEY, 1, options)
        one = jax.tree_util.tree_map(lambda x: x[0], state)
        loss = lambda mp: unroll(family, LEARNED, options, mp, one)[1][0]
        return jax.flatten_util.ravel_pytree(jax.grad(loss)(meta_params))[0]

    first, second = gradient(False), gradient(True)
    assert np.all(np.isfinite(first)) and np.all(np.isfinite(second))
    assert not np.allclose(first, second, rtol=1e-3)
