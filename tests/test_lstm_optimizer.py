"""The coordinatewise LSTM optimizer: pytrees, jit, vmap, coordinatewise sharing, meta-gradients."""

from __future__ import annotations

import contextlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from meta_opt import LSTMOptimizer, get_optimizer

KEY = jax.random.PRNGKey(0)
# Explicit dtypes: weak-typed leaves would become strong after one update and retrace.
MIXED = {
    "dense": {"w": jnp.ones((3, 4)), "b": jnp.zeros(4)},
    "scale": jnp.array(2.0, jnp.float32),
    "conv": jnp.full((2, 1, 3, 3), 0.5, jnp.float32),
}


def random_like(key, tree, scale=1.0):
    return jax.tree_util.tree_map(lambda x: scale * x, optax.tree_utils.tree_random_like(key, tree))


def test_mixed_shape_pytree_updates_keep_structure():
    optimizer = LSTMOptimizer()
    tx = optimizer.transformation(optimizer.init(KEY))
    state = tx.init(MIXED)
    updates, state = tx.update(random_like(KEY, MIXED), state)
    assert jax.tree_util.tree_structure(updates) == jax.tree_util.tree_structure(MIXED)
    for u, p in zip(jax.tree_util.tree_leaves(updates), jax.tree_util.tree_leaves(MIXED)):
        assert u.shape == p.shape and np.all(np.isfinite(u))
    assert int(state.count) == 1 and state.rnn_state[0].hidden.shape == (12 + 4 + 1 + 18, 20)


def test_weights_are_shared_across_coordinates_and_states_are_not():
    optimizer = LSTMOptimizer()
    tx = optimizer.transformation(optimizer.init(KEY))
    grads = [jax.random.normal(k, (16,)) for k in jax.random.split(KEY, 3)]
    permutation = np.random.default_rng(0).permutation(16)

    def run(sequence):
        state, out = tx.init(sequence[0]), []
        for g in sequence:
            update, state = tx.update(g, state)
            out.append(update)
        return np.stack(out)

    plain = run(grads)
    np.testing.assert_allclose(
        run([g[permutation] for g in grads]), plain[:, permutation], rtol=1e-6
    )
    changed = [g.at[3].set(100.0) for g in grads]  # coordinate 3 only
    other = np.delete(np.arange(16), 3)
    np.testing.assert_allclose(run(changed)[:, other], plain[:, other], rtol=1e-6)
    assert not np.allclose(run(changed)[:, 3], plain[:, 3])


def test_output_scale_scales_updates_linearly():
    meta_params = LSTMOptimizer().init(KEY)
    grads = random_like(KEY, MIXED)
    updates = [
        LSTMOptimizer(output_scale=s)
        .transformation(meta_params)
        .update(grads, LSTMOptimizer().transformation(meta_params).init(MIXED))[0]
        for s in (0.1, 0.3)
    ]
    chex.assert_trees_all_close(
        jax.tree_util.tree_map(lambda u: 3 * u, updates[0]), updates[1], rtol=1e-5
    )


def test_momentum_feature_changes_inputs_and_updates():
    optimizer = LSTMOptimizer(features=("gradient", "momentum"))
    assert optimizer.num_features == 4 and LSTMOptimizer(preprocess_p=None).num_features == 1
    meta_params = optimizer.init(KEY)
    assert meta_params["lstm_0/linear"]["w"].shape == (4 + 20, 80)
    tx = optimizer.transformation(meta_params)
    state = tx.init(MIXED)
    _, state = tx.update(random_like(KEY, MIXED), state)
    flat_grad = jax.flatten_util.ravel_pytree(random_like(KEY, MIXED))[0]
    np.testing.assert_allclose(state.momentum, 0.1 * flat_grad, rtol=1e-6)
    with pytest.raises(ValueError, match="features"):
        LSTMOptimizer(features=("gradient", "curvature"))


def test_jit_second_call_does_not_recompile():
    optimizer = LSTMOptimizer()
    meta_params = optimizer.init(KEY)
    traces = []

    @jax.jit
    def step(meta_params, params, state, grads):
        traces.append(1)
        updates, state = optimizer.transformation(meta_params).update(grads, state)
        return optax.apply_updates(params, updates), state

    state = optimizer.transformation(meta_params).init(MIXED)
    params = MIXED
    for i in range(3):
        params, state = step(meta_params, params, state, random_like(jax.random.PRNGKey(i), MIXED))
    assert len(traces) == 1 and int(state.count) == 3


def test_vmap_over_four_parameter_sets_gives_independent_states():
    optimizer = LSTMOptimizer()
    tx = optimizer.transformation(optimizer.init(KEY))
    params = jax.vmap(lambda k: random_like(k, MIXED))(jax.random.split(KEY, 4))
    grads = jax.vmap(lambda k: random_like(k, MIXED))(jax.random.split(jax.random.PRNGKey(1), 4))
    states = jax.vmap(tx.init)(params)
    updates, states = jax.vmap(tx.update)(grads, states)
    hidden = np.asarray(states.rnn_state[-1].hidden)
    assert hidden.shape == (4, 35, 20)
    assert all(not np.allclose(hidden[i], hidden[j]) for i in range(4) for j in range(i))
    for i in range(4):
        one = lambda tree, i=i: jax.tree_util.tree_map(lambda x: x[i], tree)
        single_update, single_state = tx.update(one(grads), tx.init(one(params)))
        jax.tree_util.tree_map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8),
            one(updates),
            single_update,
        )
        np.testing.assert_allclose(
            hidden[i], single_state.rnn_state[-1].hidden, rtol=1e-5, atol=1e-7
        )


def test_works_inside_a_chain_with_clipping():
    meta_params = LSTMOptimizer().init(KEY)
    tx = optax.chain(
        optax.clip_by_global_norm(1.0),
        get_optimizer("lstm", meta_params=meta_params, hidden_sizes=[20, 20]),
    )
    state = tx.init(MIXED)
    updates, _ = tx.update(random_like(KEY, MIXED, 1e3), state, MIXED, value_fn=lambda p: 0.0)
    assert all(np.all(np.isfinite(u)) for u in jax.tree_util.tree_leaves(updates))


def meta_loss_fn(optimizer: LSTMOptimizer, steps: int = 20):
    """Sum of a quadratic's losses over `steps` learned-optimizer steps (float64)."""
    w = jax.random.normal(jax.random.PRNGKey(1), (6, 6))
    y = jax.random.normal(jax.random.PRNGKey(2), (6,))
    loss = lambda theta: jnp.sum((w @ theta - y) ** 2)

    def meta_loss(meta_params):
        tx = optimizer.transformation(meta_params)
        theta = jnp.zeros(6)

        def step(carry, _):
            theta, state = carry
            updates, state = tx.update(jax.grad(loss)(theta), state)
            theta = theta + updates
            return (theta, state), loss(theta)

        _, losses = jax.lax.scan(step, (theta, tx.init(theta)), None, length=steps)
        return jnp.sum(losses)

    return meta_loss


@contextlib.contextmanager
def float64():
    """Double precision for one test (portable: `jax.enable_x64` is new in jax 0.7)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.mark.slow
def test_meta_gradient_through_twenty_scanned_steps_matches_finite_differences():
    with float64():
        optimizer = LSTMOptimizer(output_scale=0.1)
        meta_params = optimizer.init(KEY)
        meta_loss = meta_loss_fn(optimizer)
        gradient = jax.grad(meta_loss)(meta_params)
        direction = random_like(jax.random.PRNGKey(7), meta_params)
        norm = jnp.sqrt(sum(jnp.sum(d**2) for d in jax.tree_util.tree_leaves(direction)))
        direction = jax.tree_util.tree_map(lambda d: d / norm, direction)
        analytic = sum(
            jnp.sum(g * d)
            for g, d in zip(
                jax.tree_util.tree_leaves(gradient), jax.tree_util.tree_leaves(direction)
            )
        )
        eps = 1e-5
        shifted = lambda s: jax.tree_util.tree_map(
            lambda p, d: p + s * eps * d, meta_params, direction
        )
        numeric = (meta_loss(shifted(1.0)) - meta_loss(shifted(-1.0))) / (2 * eps)
        assert jax.tree_util.tree_leaves(gradient)[0].dtype == jnp.float64
        assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(gradient))
        assert abs(float(analytic)) > 1e-6
        np.testing.assert_allclose(float(analytic), float(numeric), rtol=1e-2)
