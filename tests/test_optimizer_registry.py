"""Optimizers by name: construction, errors, and use inside optax chains."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from meta_opt import LSTMOptimizer, get_optimizer, list_optimizers

HPARAMS = {
    "sgd": {"learning_rate": 0.05},
    "momentum": {"learning_rate": 0.02},
    "adam": {"learning_rate": 0.1},
    "rmsprop": {"learning_rate": 0.02},
    "esgd": {"learning_rate": 0.2, "update_interval": 5},
    "jacobi": {"learning_rate": 0.05, "damping": 1.0},
    "rmsprop_bc": {"learning_rate": 0.02},
    "adam_cosine": {"learning_rate": 0.1, "decay_steps": 60},
}


def test_every_named_optimizer_is_listed():
    assert list_optimizers() == sorted([*HPARAMS, "lstm"])


@pytest.mark.parametrize("name", sorted(HPARAMS))
def test_each_optimizer_descends_inside_a_clipping_chain(name):
    h = jnp.diag(jnp.array([1.0, 4.0, 9.0]))
    f = lambda p: 0.5 * p["x"] @ h @ p["x"]
    params = {"x": jnp.array([1.0, -1.0, 0.5])}
    tx = optax.chain(optax.clip_by_global_norm(1.0), get_optimizer(name, **HPARAMS[name]))
    state = tx.init(params)
    start = float(f(params))

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(f)(params), state, params, value_fn=f)
        return optax.apply_updates(params, updates), state

    for _ in range(60):
        params, state = step(params, state)
    assert float(f(params)) < 0.5 * start


def test_named_adam_equals_optax_adam():
    params, grads = jnp.array([1.0, 2.0]), jnp.array([0.3, -0.7])
    ours, theirs = get_optimizer("adam", learning_rate=0.1), optax.adam(0.1)
    np.testing.assert_allclose(
        ours.update(grads, ours.init(params), params, value_fn=None)[0],
        theirs.update(grads, theirs.init(params))[0],
        rtol=1e-6,
    )


def test_lstm_by_name_takes_meta_params_and_config():
    meta_params = LSTMOptimizer(hidden_sizes=(8,)).init(jax.random.PRNGKey(0))
    tx = get_optimizer("lstm", meta_params=meta_params, hidden_sizes=[8], output_scale=0.05)
    updates, state = tx.update(jnp.ones(5), tx.init(jnp.zeros(5)), jnp.zeros(5))
    assert updates.shape == (5,) and state.rnn_state[0].hidden.shape == (5, 8)


def test_unknown_names_and_hyperparameters_are_named():
    with pytest.raises(KeyError, match="adamw.*known"):
        get_optimizer("adamw", learning_rate=0.1)
    with pytest.raises(TypeError, match="lerning_rate"):
        get_optimizer("esgd", lerning_rate=0.1)
    with pytest.raises(TypeError, match="learning_rate"):
        get_optimizer("sgd")
    with pytest.raises(TypeError, match="hidden_size"):
        get_optimizer("lstm", meta_params={}, hidden_size=(3,))


def test_the_config_hyperparameter_table_matches_the_factories():
    """`meta_opt.options.HPARAMS` (checked at config load, without JAX) names real arguments."""
    import inspect

    from meta_opt.options import HPARAMS, check_hparams
    from meta_opt.registry import OPTIMIZERS

    assert set(HPARAMS) == set(OPTIMIZERS) - {"lstm"}
    for name, names in HPARAMS.items():
        assert set(names) <= set(inspect.signature(OPTIMIZERS[name]).parameters), name
    check_hparams("adam", {"learning_rate": 0.1, "b1": 0.8})
    with pytest.raises(KeyError, match="unknown optimizer 'adamw'"):
        check_hparams("adamw", {"learning_rate": 0.1})
    with pytest.raises(TypeError, match=r"no hyperparameter\(s\) \['lr'\]"):
        check_hparams("adam", {"lr": 0.1})
    with pytest.raises(TypeError, match="needs hyperparameter"):
        check_hparams("sgd", {})


def test_each_baseline_row_tunes_its_own_hyperparameters_over_the_evaluation_grids():
    """The grid of `baseline(name, ...)` is the product of the grids its table row tunes."""
    from meta_opt.options import BASELINE_TABLE
    from trainers.config.evaluation_section import BASELINES, EvaluationConfig
    from trainers.evaluation.contenders import baseline

    grids = EvaluationConfig().grids
    assert BASELINES == tuple(b.name for b in BASELINE_TABLE)
    for row in BASELINE_TABLE:
        assert set(row.tuned) <= set(row.hparams) and set(row.tuned) <= set(grids), row
        contender = baseline(row.name, (0.1, 0.3), (1e-3, 1e-2, 1e-1), num_steps=5)
        assert set(contender.grid) == set(row.tuned)
        size = 2 * (3 if "damping" in row.tuned else 1)
        assert all(len(v) == size for v in contender.grid.values()), row.name
    esgd = baseline("esgd", (0.1, 0.3), (1e-3, 1e-2))
    settings = set(zip(esgd.grid["learning_rate"].tolist(), esgd.grid["damping"].tolist()))
    assert settings == {
        (np.float32(a).item(), np.float32(b).item()) for a in (0.1, 0.3) for b in (1e-3, 1e-2)
    }
    with pytest.raises(ValueError, match="needs the run's length"):
        baseline("adam_cosine", (0.1,))


def test_rmsprop_bias_correction_removes_the_first_step_burst():
    """First step on gradient g: plain RMSProp moves lr*g/sqrt(0.1 g^2) = 3.16 lr per coordinate
    (its average starts at 0); corrected, lr*g/|g| = lr, as Adam's first step."""
    params, grads = {"x": jnp.zeros(3)}, {"x": jnp.array([2.0, -0.5, 0.3])}
    first = lambda tx: np.asarray(tx.update(grads, tx.init(params), params)[0]["x"])
    np.testing.assert_allclose(
        first(get_optimizer("rmsprop_bc", learning_rate=0.1)), [-0.1, 0.1, -0.1], rtol=1e-4
    )
    np.testing.assert_allclose(
        first(get_optimizer("rmsprop", learning_rate=0.1)),
        -0.1 / np.sqrt(0.1) * np.sign([2.0, -0.5, 0.3]),
        rtol=1e-4,
    )


def test_adam_cosine_decays_its_step_to_zero_over_the_run():
    """On a constant gradient Adam's direction is fixed (m/sqrt(v) = 1), so step k moves
    lr * (1 + cos(pi k / K)) / 2: the cosine schedule itself."""
    tx, params = get_optimizer("adam_cosine", learning_rate=0.2, decay_steps=4), {"x": jnp.zeros(1)}
    state, steps = tx.init(params), []
    for _ in range(5):
        updates, state = tx.update({"x": jnp.ones(1)}, state, params)
        steps.append(-float(updates["x"][0]))
    expected = [0.2 * (1 + np.cos(np.pi * k / 4)) / 2 for k in range(5)]
    np.testing.assert_allclose(steps, expected, rtol=1e-4, atol=1e-7)
