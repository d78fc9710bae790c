"""The one inner step: the update, the loss it returns, and what a meta-gradient sees through it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from meta_opt import get_optimizer
from meta_opt.inner_step import InnerCarry, init_carry, inner_step

H = jnp.array([1.0, 4.0])
OBJECTIVE = lambda params, key: 0.5 * jnp.sum(H * (params["x"] - jax.random.normal(key, (2,))) ** 2)
KEY = jax.random.PRNGKey(3)


def test_one_step_is_the_optimizer_update_on_the_keys_minibatch():
    params, tx = {"x": jnp.array([1.0, -1.0])}, optax.adam(0.1)
    carry, loss = inner_step(OBJECTIVE, tx, init_carry(tx, params), KEY)
    grads = jax.grad(OBJECTIVE)(params, KEY)
    updates, state = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(
        carry.params["x"], optax.apply_updates(params, updates)["x"], rtol=1e-6
    )
    np.testing.assert_allclose(
        loss, OBJECTIVE(params, KEY), rtol=1e-6
    )  # the loss before the update
    assert int(carry.opt_state[0].count) == int(state[0].count) == 1


def test_curvature_optimizers_probe_the_same_minibatch():
    params, tx = (
        {"x": jnp.array([1.0, -1.0])},
        get_optimizer("esgd", learning_rate=0.1, update_interval=1),
    )
    carry, _ = inner_step(OBJECTIVE, tx, init_carry(tx, params), KEY)
    expected = tx.update(
        jax.grad(OBJECTIVE)(params, KEY),
        tx.init(params),
        params,
        value_fn=lambda p: OBJECTIVE(p, KEY),
    )[0]
    np.testing.assert_allclose(carry.params["x"], params["x"] + expected["x"], rtol=1e-6)


def test_a_constant_gradient_drops_the_second_order_term_of_a_meta_gradient():
    """Two SGD steps on 0.5 x'Hx; d F(x_2) / d lr with the gradients held constant or not."""
    x0 = {"x": jnp.array([1.0, -1.0])}
    objective = lambda params, key: 0.5 * jnp.sum(H * params["x"] ** 2)

    def after_two_steps(lr, differentiate):
        carry = InnerCarry(x0, optax.sgd(lr).init(x0))
        for _ in range(2):
            carry, _ = inner_step(
                objective, optax.sgd(lr), carry, KEY, differentiate_gradient=differentiate
            )
        return objective(carry.params, KEY)

    lr = 0.1
    g0 = H * x0["x"]
    x1 = x0["x"] - lr * g0
    g1 = H * x1
    x2 = x1 - lr * g1
    constant = jnp.sum(H * x2 * (-g0 - g1))  # dx2/dlr = -g0 - g1 when the gradients are constants
    exact = jnp.sum(H * x2 * (-g0 - g1 + lr * H * g0))  # plus -lr H dx1/dlr through g(x1)
    np.testing.assert_allclose(jax.grad(after_two_steps)(lr, False), constant, rtol=1e-5)
    np.testing.assert_allclose(jax.grad(after_two_steps)(lr, True), exact, rtol=1e-5)
    assert not np.isclose(constant, exact)
