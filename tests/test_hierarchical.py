"""The hierarchical optimizer: a per-tensor LSTM driving a per-parameter MLP (issue 24)."""

from __future__ import annotations

import functools
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from meta_opt import get_optimizer
from meta_opt.hierarchical import HierarchicalState
from meta_opt.hierarchical_config import HierarchicalConfig
from tests.test_lstm_optimizer import float64
from tests.test_lstm_v2 import quadratic_trajectories

KEY = jax.random.PRNGKey(0)
CONFIG = HierarchicalConfig(horizon=50, output_scale=0.1)


def normal_tree(seed: int, scale: float = 1.0):
    ka, kb = jax.random.split(jax.random.PRNGKey(seed))
    return {"v": scale * jax.random.normal(ka, (7,)), "w": scale * jax.random.normal(kb, (5, 3))}


@functools.cache
def meta_params_of(config: HierarchicalConfig):
    return jax.jit(config.init)(KEY)


def run(config, params, grads, meta_params=None):
    """Updates of `len(grads)` steps (params += updates after each), stacked per leaf."""
    tx = config.transformation(meta_params_of(config) if meta_params is None else meta_params)
    update, state, out = jax.jit(tx.update), tx.init(params), []
    for g in grads:
        u, state = update(g, state, params)
        params = optax.apply_updates(params, u)
        out.append(u)
    return jax.tree_util.tree_map(lambda *u: np.stack(u), *out), state


# An independent NumPy reading of the update the module docstring states.


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_updates(config, meta_params, params, grads):
    """The optimizer's updates, computed leaf by leaf in float64 NumPy (params move each step)."""
    mp = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), meta_params)
    lstm, head, bank = (
        mp["tensor_lstm"]["lstm_0/linear"],
        mp["tensor_lstm"]["direction_magnitude"],
        mp["mlp_bank"],
    )
    names = sorted(params)
    params = {k: np.asarray(v, np.float64) for k, v in params.items()}
    decays, k = np.asarray(config.momentum_decays), len(config.momentum_decays)
    hidden = np.zeros((len(names), config.lstm_hidden))
    cell = np.zeros_like(hidden)
    m = {n: np.zeros(params[n].shape + (k,)) for n in names}
    v = {n: np.zeros(params[n].shape) for n in names}
    out = []
    for step, g_tree in enumerate(grads):
        t = step + 1
        progress = list(np.tanh(step / np.asarray(config.step_timescales)))
        if config.horizon:
            progress.append(step / config.horizon)
        rows, columns = [], {}
        for n in names:
            g = np.asarray(g_tree[n], np.float64).reshape(-1)
            m[n] = decays * m[n] + (1 - decays) * np.asarray(g_tree[n])[..., None]
            v[n] = config.rms_decay * v[n] + (1 - config.rms_decay) * np.asarray(g_tree[n]) ** 2
            m_hat = m[n].reshape(-1, k) / (1 - decays**t)
            v_hat = v[n].reshape(-1) / (1 - config.rms_decay**t)
            denominator = np.sqrt(v_hat + config.rms_eps)[:, None]
            ratios = np.concatenate([g[:, None], m_hat], 1) / denominator
            x = np.concatenate([g[:, None], m_hat, ratios, params[n].reshape(-1, 1)], 1)
            columns[n] = x
            theta_ms = np.mean(params[n] ** 2)
            rows.append(
                progress
                + list(0.5 * np.log(np.mean(ratios**2, 0) + 1e-12))
                + [0.5 * np.log(theta_ms + 1e-12), np.log(g.size)]
            )
        gates = np.concatenate([np.asarray(rows), hidden], 1) @ lstm["w"] + lstm["b"]
        i, c_in, f, o = np.split(gates, 4, axis=1)
        cell = _sigmoid(f + 1.0) * cell + _sigmoid(i) * np.tanh(c_in)
        hidden = _sigmoid(o) * np.tanh(cell)
        lstm_out = hidden @ head["w"] + head["b"]
        updates = {}
        for row, n in enumerate(names):
            mix = np.exp(lstm_out[row, 1:]) / np.exp(lstm_out[row, 1:]).sum()
            w1 = np.einsum("b,bfh->fh", mix, bank["w1"])
            x = columns[n] / np.sqrt(1e-5 + np.mean(columns[n] ** 2, 0))
            h = np.maximum(x @ w1 + mix @ bank["b1"], 0.0)
            d_m = h @ np.einsum("b,bho->ho", mix, bank["w2"]) + mix @ bank["b2"]
            scale = config.output_scale * np.exp(lstm_out[row, 0])
            u = scale * d_m[:, 0] * np.exp(config.magnitude_scale * d_m[:, 1])
            if config.relative_update:
                u = u * max(np.sqrt(np.mean(params[n] ** 2)), config.relative_floor)
            updates[n] = u.reshape(params[n].shape)
        params = {n: params[n] + updates[n] for n in names}
        out.append(updates)
    return {n: np.stack([u[n] for u in out]) for n in names}


@pytest.mark.parametrize("relative_update", [False, True])
def test_updates_match_an_independent_numpy_computation(relative_update):
    with float64():
        config = HierarchicalConfig(
            horizon=10, relative_update=relative_update, magnitude_scale=0.5, output_scale=0.3
        )
        meta_params = config.init(KEY)
        params = normal_tree(1)
        grads = [normal_tree(10 + i, 0.1) for i in range(3)]
        got, state = run(config, params, grads, meta_params)
        expected = numpy_updates(config, meta_params, params, grads)
    for name in ("v", "w"):
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-9, atol=1e-14)
    # Most coordinates move (a ReLU MLP with all hidden units off gives exactly 0).
    assert (expected["w"] != 0).mean() > 0.5 and int(state.count) == 3


# Symmetries: coordinates within a tensor, and the loss's scale.


def test_permuting_a_tensors_coordinates_permutes_its_updates_over_steps():
    rng = np.random.default_rng(0)
    pv, pw = rng.permutation(7), rng.permutation(5)
    permute = lambda t: {"v": t["v"][pv], "w": t["w"][pw]}
    params, grads = normal_tree(1), [normal_tree(10 + i, 0.1) for i in range(4)]
    plain, _ = run(CONFIG, params, grads)
    permuted, _ = run(CONFIG, permute(params), [permute(g) for g in grads])
    np.testing.assert_allclose(permuted["v"], plain["v"][:, pv], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(permuted["w"], plain["w"][:, pw], rtol=1e-5, atol=1e-8)
    assert not np.allclose(plain["v"][:, pv], plain["v"])


def test_one_tensors_gradient_changes_only_that_tensors_update():
    params, grads = normal_tree(1), [normal_tree(10 + i, 0.1) for i in range(3)]
    plain, _ = run(CONFIG, params, grads)
    changed = [{"v": g["v"].at[0].multiply(30.0), "w": g["w"]} for g in grads]
    other, _ = run(CONFIG, params, changed)
    # The LSTM runs over the tensors as a batch: rows do not mix, so "w" is untouched.
    np.testing.assert_array_equal(other["w"], plain["w"])
    assert not np.allclose(other["v"][:, 1:], plain["v"][:, 1:], rtol=1e-4)


def test_a_scaled_loss_gives_the_same_trajectory():
    # Every input is a ratio or divided by its RMS over the tensor, so only the two ε
    # (rms_eps in g/√(v̂+ε), 1e-5 in the RMS normalizer) can tell c * F from F. With
    # param_feature off every column scales with c, and the 1e-5 weighs ~1e-5 / c² of
    # a column's mean square (of order c²): negligible from c = 100 on, a floor at small c.
    with float64():
        config = HierarchicalConfig(output_scale=0.3, rms_eps=1e-30, param_feature=False)
        unit, reference, large, huge, small = quadratic_trajectories(
            config, (1.0, 100.0, 1e4, 1e6, 1e-4)
        )
        assert np.abs(reference[-1] - ravel_pytree(normal_tree(3))[0]).max() > 1e-2
        np.testing.assert_allclose(large, reference, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(huge, reference, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(unit, reference, rtol=1e-3, atol=1e-5)
        assert np.abs(small - reference).max() > 1e-3  # the normalizer's ε is a real floor


# Transformations: jit, vmap, meta-gradients, edge cases.


def test_jit_does_not_recompile_and_vmap_matches_single_runs():
    traces = []
    tx = CONFIG.transformation(meta_params_of(CONFIG))

    @jax.jit
    def step(params, state, grads):
        traces.append(1)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params = jax.vmap(normal_tree)(jnp.arange(3))
    grads = jax.vmap(lambda s: normal_tree(s, 0.1))(jnp.arange(3) + 10)
    states = jax.vmap(tx.init)(params)
    batched = params
    for _ in range(2):
        batched, states = jax.vmap(step)(batched, states, grads)
    assert len(traces) == 1 and np.all(states.count == 2)
    for i in range(3):
        single, state = jax.tree_util.tree_map(lambda x, i=i: x[i], params), tx.init(normal_tree(i))
        for _ in range(2):
            single, state = step(single, state, jax.tree_util.tree_map(lambda x, i=i: x[i], grads))
        for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(batched)):
            np.testing.assert_allclose(b[i], a, rtol=1e-5, atol=1e-7)


def test_meta_gradient_through_scanned_steps_matches_finite_differences():
    with float64():
        config = HierarchicalConfig(horizon=10, relative_update=True, output_scale=0.3)
        w = jax.random.normal(jax.random.PRNGKey(1), (6, 6))
        loss = lambda p: jnp.sum((w @ p["a"] + p["b"] - 1.0) ** 2)

        def meta_loss(meta_params):
            tx = config.transformation(meta_params)

            def step(carry, _):
                p, state = carry
                updates, state = tx.update(jax.grad(loss)(p), state, p)
                p = optax.apply_updates(p, updates)
                return (p, state), loss(p)

            p = {"a": jnp.linspace(-1.0, 1.0, 6), "b": jnp.full((6,), 0.1)}
            return jnp.sum(jax.lax.scan(step, (p, tx.init(p)), None, length=6)[1])

        meta_params = config.init(KEY)
        direction = optax.tree_utils.tree_random_like(jax.random.PRNGKey(7), meta_params)
        value_and_grad = jax.jit(jax.value_and_grad(meta_loss))
        gradient = value_and_grad(meta_params)[1]
        analytic = optax.tree_utils.tree_vdot(gradient, direction)
        shifted = lambda s: jax.tree_util.tree_map(
            lambda p, d: p + s * 1e-6 * d, meta_params, direction
        )
        numeric = (value_and_grad(shifted(1.0))[0] - value_and_grad(shifted(-1.0))[0]) / 2e-6
        assert abs(float(analytic)) > 1e-6
        np.testing.assert_allclose(float(analytic), float(numeric), rtol=1e-4)


def test_state_shapes_empty_tensors_and_missing_params():
    config = HierarchicalConfig()
    params = {"w": jnp.ones((5, 3)), "empty": jnp.zeros((0,)), "s": jnp.ones(())}
    tx = config.transformation(meta_params_of(config))
    state = tx.init(params)
    assert isinstance(state, HierarchicalState)
    assert state.momenta["w"].shape == (4, 5, 3) and state.second_moment["s"].shape == ()
    assert state.lstm_state[0].hidden.shape == (3, config.lstm_hidden)  # one row per tensor
    grads = jax.tree_util.tree_map(lambda p: 0.1 * jnp.ones_like(p), params)
    updates, _ = jax.jit(tx.update)(grads, state, params)
    assert updates["empty"].shape == (0,) and updates["s"].shape == ()
    assert all(np.isfinite(u).all() for u in jax.tree_util.tree_leaves(updates))
    with pytest.raises(ValueError, match="needs params"):
        tx.update(grads, state)


def test_state_floats_per_parameter_counts_the_accumulators():
    config = HierarchicalConfig(momentum_decays=(0.9, 0.99))
    params = {"w": jnp.ones((100, 50)), "b": jnp.ones(50)}
    state = config.transformation(meta_params_of(config)).init(params)
    per_parameter = sum(
        x.size for x in jax.tree_util.tree_leaves((state.momenta, state.second_moment))
    )
    assert per_parameter == config.state_floats_per_parameter * 5050
    assert config.state_floats_per_parameter == 3 and config.needs_params


# The configuration: widths, errors, loading.


def test_feature_tables_fix_the_network_widths():
    config = HierarchicalConfig(momentum_decays=(0.9,), param_feature=False, horizon=None)
    assert config.num_parameter_features == 1 + 1 + 2  # g, m̂, g/√v̂ and m̂/√v̂
    assert config.num_tensor_features == 7 + 2 + 1 + 1
    meta_params = config.init(KEY)
    assert meta_params["mlp_bank"]["w1"].shape == (4, 4, 4)
    assert meta_params["tensor_lstm"]["lstm_0/linear"]["w"].shape == (11 + 32, 4 * 32)
    assert HierarchicalConfig(horizon=100).num_tensor_features == 7 + 1 + 5 + 1 + 1


@pytest.mark.parametrize(
    "fields, field",
    [
        (dict(mlp_hidden=9), "mlp_hidden"),
        (dict(mlp_hidden=0), "mlp_hidden"),
        (dict(num_mlps=0), "num_mlps"),
        (dict(momentum_decays=(0.9, 0.9)), "momentum_decays"),
        (dict(momentum_decays=(1.0,)), "momentum_decays"),
        (dict(rms_decay=1.0), "rms_decay"),
        (dict(output_scale=0.0), "output_scale"),
        (dict(step_timescales=()), "step_timescales"),
        (dict(horizon=0), "horizon"),
    ],
)
def test_config_errors_name_the_field(fields, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        HierarchicalConfig(**fields)


def test_yaml_config_loads_the_architecture_without_jax(tmp_path):
    code = (
        "import sys; from trainers.config.experiment import load_experiment; "
        "c = load_experiment('configs/hierarchical.yaml', ['meta_train.lstm.mlp_hidden=2']); "
        "print(type(c.meta_train.lstm).__name__, c.meta_train.lstm.mlp_hidden, "
        "'jax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["HierarchicalConfig", "2", "False"]


def test_registry_and_bundle_build_the_same_optimizer(tmp_path):
    from meta_opt.pretrained_bundles import load_pretrained, save_pretrained

    config = HierarchicalConfig(momentum_decays=(0.9, 0.99), num_mlps=2, horizon=30)
    meta_params = meta_params_of(config)
    save_pretrained("hier", config, meta_params, {"summary": "test"}, "# hier\n", tmp_path)
    loaded, loaded_params = load_pretrained("hier", tmp_path)
    assert loaded == config
    tx = get_optimizer(
        "lstm",
        meta_params=loaded_params,
        kind="hierarchical",
        momentum_decays=[0.9, 0.99],
        num_mlps=2,
        horizon=30,
    )
    params, grads = normal_tree(1), normal_tree(2, 0.1)
    got, _ = tx.update(grads, tx.init(params), params)
    expected, _ = run(config, params, [grads])
    for name in ("v", "w"):
        np.testing.assert_allclose(got[name], expected[name][0], rtol=1e-6)
