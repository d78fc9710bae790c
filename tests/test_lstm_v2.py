"""The v2 LSTM optimizer: selectable inputs, direction x exp(magnitude), and v1 left as it was."""

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

from meta_opt import LSTMOptimizer, LSTMOptimizerState, LSTMv2State, features, get_optimizer
from meta_opt.architectures import LearnedOptimizerConfig
from meta_opt.options import INPUTS
from tests.test_lstm_optimizer import float64

KEY = jax.random.PRNGKey(0)
ALL = LSTMOptimizer(inputs=INPUTS, horizon=50, relative_update=True)
NORMALIZED_ONLY = dict(inputs=("rms_normalized", "step_embedding", "tensor_context"), rms_eps=1e-30)


def normal_tree(seed: int, scale: float = 1.0):
    ka, kb = jax.random.split(jax.random.PRNGKey(seed))
    return {"v": scale * jax.random.normal(ka, (7,)), "w": scale * jax.random.normal(kb, (5, 3))}


@functools.cache
def meta_params_of(config: LSTMOptimizer):
    """`config.init(KEY)`, float32, jitted (faster than Haiku's op-by-op init) and kept."""
    return jax.jit(config.init)(KEY)


def run(config: LSTMOptimizer, params, grads, meta_params=None):
    """Updates of `len(grads)` steps (params += updates after each), stacked per leaf."""
    tx = config.transformation(meta_params_of(config) if meta_params is None else meta_params)
    update, state, out = jax.jit(tx.update), tx.init(params), []
    for g in grads:
        u, state = update(g, state, params)
        params = optax.apply_updates(params, u)
        out.append(u)
    return jax.tree_util.tree_map(lambda *u: np.stack(u), *out), state


# 1. Permutation equivariance, with the per-tensor statistics on.


def test_permuting_a_tensors_coordinates_permutes_its_updates_over_steps():
    rng = np.random.default_rng(0)
    pv, pw = rng.permutation(7), rng.permutation(5)
    permute = lambda t: {"v": t["v"][pv], "w": t["w"][pw]}
    params, grads = normal_tree(1), [normal_tree(10 + i, 0.1) for i in range(4)]
    plain, _ = run(ALL, params, grads)
    permuted, _ = run(ALL, permute(params), [permute(g) for g in grads])
    np.testing.assert_allclose(permuted["v"], plain["v"][:, pv], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(permuted["w"], plain["w"][:, pw], rtol=1e-5, atol=1e-8)
    assert np.abs(plain["v"]).min() > 0 and not np.allclose(plain["v"][:, pv], plain["v"])


def test_tensor_statistics_couple_the_coordinates_of_one_tensor_only():
    params, grads = normal_tree(1), [normal_tree(10 + i, 0.1) for i in range(3)]
    plain, _ = run(ALL, params, grads)
    changed = [{"v": g["v"].at[0].multiply(30.0), "w": g["w"]} for g in grads]
    other, _ = run(ALL, params, changed)
    np.testing.assert_array_equal(other["w"], plain["w"])  # another tensor: untouched
    assert not np.allclose(other["v"][:, 1:], plain["v"][:, 1:], rtol=1e-4)  # same tensor: coupled


# 2. Loss-scale invariance with normalized inputs only, and its failure with log/sign inputs.


def quadratic_trajectories(
    config: LSTMOptimizer, scales: tuple[float, ...], steps: int = 20
) -> np.ndarray:
    """Flat params after each of `steps` updates on c * F for each c, F a random quadratic (float64)."""
    params = normal_tree(3)
    flat0, _ = ravel_pytree(params)
    a = jax.random.normal(jax.random.PRNGKey(4), (flat0.size, flat0.size))
    hessian, target = (
        a @ a.T / flat0.size + 0.5 * jnp.eye(flat0.size),
        jnp.linspace(-1, 1, flat0.size),
    )
    tx = config.transformation(config.init(KEY))

    @jax.jit
    def trajectory(c):
        loss = lambda p: (
            c * 0.5 * (ravel_pytree(p)[0] - target) @ hessian @ (ravel_pytree(p)[0] - target)
        )

        def step(carry, _):
            params, state = carry
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            params = optax.apply_updates(params, updates)
            return (params, state), ravel_pytree(params)[0]

        return jax.lax.scan(step, (params, tx.init(params)), None, length=steps)[1]

    return np.stack([trajectory(jnp.asarray(c, jnp.float64)) for c in scales])


def test_normalized_inputs_give_the_same_trajectory_on_a_scaled_loss():
    with float64():
        config = LSTMOptimizer(output_scale=1.0, **NORMALIZED_ONLY)
        reference, small, large = quadratic_trajectories(config, (1.0, 0.01, 100.0))
        assert np.abs(reference[-1] - ravel_pytree(normal_tree(3))[0]).max() > 1e-2  # it moves
        np.testing.assert_allclose(small, reference, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(large, reference, rtol=1e-9, atol=1e-12)


def test_log_sign_gradient_input_breaks_loss_scale_invariance():
    with float64():
        config = LSTMOptimizer(
            output_scale=1.0,
            inputs=("log_sign_gradient",) + NORMALIZED_ONLY["inputs"],
            rms_eps=NORMALIZED_ONLY["rms_eps"],
        )
        reference, small = quadratic_trajectories(config, (1.0, 0.01))
        assert np.abs(small - reference).max() > 1e-3


# 3. The default config is v1, as it was.


def numpy_v1(meta_params, grads, p=10.0, scale=0.1, hidden=(20, 20)):
    """The 2016 optimizer written out in numpy (haiku's LSTM: gates i, g, f, o; forget bias 1)."""
    mp = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), meta_params)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))
    n = grads[0].size
    h = [np.zeros((n, k)) for k in hidden]
    c = [np.zeros((n, k)) for k in hidden]
    out = []
    for g in grads:
        g = np.asarray(g, np.float64)
        large = np.abs(g) >= np.exp(-p)
        x = np.stack(
            [
                np.where(large, np.log(np.maximum(np.abs(g), np.exp(-p))) / p, -1.0),
                np.where(large, np.sign(g), np.exp(p) * g),
            ],
            -1,
        )
        for i in range(len(hidden)):
            lin = mp[f"lstm_{i}/linear"]
            i_, g_, f_, o_ = np.split(np.concatenate([x, h[i]], 1) @ lin["w"] + lin["b"], 4, axis=1)
            c[i] = sigmoid(f_ + 1) * c[i] + sigmoid(i_) * np.tanh(g_)
            h[i] = x = sigmoid(o_) * np.tanh(c[i])
        out.append(scale * (x @ mp["output"]["w"] + mp["output"]["b"])[:, 0])
    return np.stack(out)


def test_default_config_is_v1_with_its_state_meta_params_and_updates():
    config = LSTMOptimizer()
    assert config.kind == "lstm_v1" and config.num_features == 2
    meta_params = config.init(KEY)
    assert jax.tree_util.tree_map(jnp.shape, meta_params) == {
        "lstm_0/linear": {"w": (22, 80), "b": (80,)},
        "lstm_1/linear": {"w": (40, 80), "b": (80,)},
        "output": {"w": (20, 1), "b": (1,)},
    }
    grads = [
        jax.random.normal(k, (9,)) * s for k, s in zip(jax.random.split(KEY, 3), (1.0, 1e-3, 1e-6))
    ]
    tx = config.transformation(meta_params)
    state, updates = tx.init(grads[0]), []
    for g in grads:
        u, state = tx.update(g, state)
        updates.append(u)
    assert type(state) is LSTMOptimizerState and state.momentum.shape == (9,)
    assert state.count.dtype == jnp.int32 and int(state.count) == 3
    np.testing.assert_allclose(
        np.stack(updates), numpy_v1(meta_params, grads), rtol=2e-5, atol=1e-8
    )


# 4. Feature values against numpy, for a known gradient sequence.


def test_features_match_an_independent_numpy_computation():
    decays, rms_decay, eps = (0.5, 0.9), 0.99, 1e-8
    config = LSTMOptimizer(
        inputs=INPUTS,
        horizon=40,
        momentum_decays=decays,
        rms_decay=rms_decay,
        rms_eps=eps,
        step_timescales=(1.0, 10.0),
    )
    tree = {"a": jnp.zeros(4), "b": jnp.zeros((2, 3))}
    rng = np.random.default_rng(5)
    gs = [rng.normal(size=10) * 10.0**-i for i in range(3)]  # flat: a then b
    theta = rng.normal(size=10)
    momenta, second = jnp.zeros((10, 2)), jnp.zeros(10)
    for g in gs:
        momenta, second = features.update_moments(
            config, momenta, second, jnp.asarray(g, jnp.float32)
        )
    segments = features.segments_of(tree)
    raw = features.raw_inputs(
        config,
        jnp.asarray(gs[-1], jnp.float32),
        momenta,
        second,
        jnp.asarray(2, jnp.int32),
        jnp.asarray(theta, jnp.float32),
        segments,
    )
    g = np.stack(gs)  # [t=3, n]
    m_hat = np.stack(
        [sum((1 - d) * d ** (2 - i) * g[i] for i in range(3)) / (1 - d**3) for d in decays], 1
    )
    v_hat = sum((1 - rms_decay) * rms_decay ** (2 - i) * g[i] ** 2 for i in range(3)) / (
        1 - rms_decay**3
    )
    r = g[-1] / np.sqrt(v_hat + eps)
    seg = [slice(0, 4), slice(4, 10)]
    context = np.concatenate(
        [
            np.tile(
                [
                    0.5 * np.log(np.mean(r[s] ** 2) + features.LOG_EPS),
                    0.5 * np.log(np.mean(theta[s] ** 2) + features.LOG_EPS),
                    np.log(s.stop - s.start),
                ],
                (s.stop - s.start, 1),
            )
            for s in seg
        ]
    )
    expected = {
        "log_sign_gradient": np.stack([np.log(np.abs(g[-1])) / 10, np.sign(g[-1])], 1),
        "momenta": m_hat,
        "rms_normalized": np.concatenate([g[-1][:, None], m_hat], 1)
        / np.sqrt(v_hat + eps)[:, None],
        "step_embedding": np.tile(np.tanh([2.0, 0.2]), (10, 1)),
        "horizon_fraction": np.full((10, 1), 2 / 40),
        "tensor_context": context,
        "param": theta[:, None],
    }
    assert list(raw) == list(INPUTS)
    for name in INPUTS:
        np.testing.assert_allclose(raw[name], expected[name], rtol=2e-5, atol=1e-6, err_msg=name)
    matrix = np.asarray(features.feature_matrix(config, raw, segments))
    assert matrix.shape == (10, config.num_features) == (10, 2 + 2 + 3 + 2 + 1 + 3 + 1)
    normalized = matrix[:, 2:4]  # momenta, divided by their RMS over each tensor
    for s in seg:
        rms = np.sqrt(np.mean(m_hat[s] ** 2, 0) + features.NORMALIZER_EPS)
        np.testing.assert_allclose(normalized[s], m_hat[s] / rms, rtol=2e-5)
    unnormalized = np.concatenate([expected[k] for k in ("log_sign_gradient",) + INPUTS[3:6]], 1)
    np.testing.assert_allclose(
        np.delete(matrix, np.r_[2:7, 13], axis=1), unnormalized, rtol=2e-5, atol=1e-6
    )


def test_transformation_state_holds_the_uncorrected_moving_averages():
    config = LSTMOptimizer(
        inputs=("momenta", "rms_normalized"), momentum_decays=(0.9,), rms_decay=0.5
    )
    gs = [np.full(3, 2.0, np.float32), np.full(3, -1.0, np.float32)]
    _, state = run(config, jnp.zeros(3), [jnp.asarray(g) for g in gs])
    assert type(state) is LSTMv2State and state.count.dtype == jnp.int32 and int(state.count) == 2
    np.testing.assert_allclose(state.momenta[:, 0], 0.9 * 0.1 * 2.0 + 0.1 * -1.0, rtol=1e-6)
    np.testing.assert_allclose(state.second_moment, 0.5 * 0.5 * 4.0 + 0.5 * 1.0, rtol=1e-6)


# 5. Config validation.


@pytest.mark.parametrize(
    "fields, field",
    [
        (dict(inputs=("momenta", "curvature")), "inputs"),
        (dict(inputs=("momenta", "momenta")), "inputs"),
        (dict(inputs=("horizon_fraction",)), "horizon"),
        (dict(inputs=("momenta",), horizon=0), "horizon"),
        (dict(inputs=("momenta",), momentum_decays=()), "momentum_decays"),
        (dict(inputs=("momenta",), momentum_decays=(0.9, 1.0)), "momentum_decays"),
        (dict(inputs=("momenta",), momentum_decays=(-0.1,)), "momentum_decays"),
        (dict(inputs=("momenta",), momentum_decays=(0.9, 0.9)), "momentum_decays"),
        (dict(inputs=("momenta",), rms_decay=1.0), "rms_decay"),
        (dict(inputs=("momenta",), rms_eps=0.0), "rms_eps"),
        (dict(inputs=("momenta",), step_timescales=(10.0, 0.0)), "step_timescales"),
        (dict(inputs=("momenta",), relative_floor=0.0), "relative_floor"),
        (dict(inputs=("log_sign_gradient",), preprocess_p=None), "preprocess_p"),
        (dict(inputs=("momenta",), features=("gradient", "momentum")), "features"),
        (dict(horizon=100), "horizon"),  # a v2-only field on a v1 config
        (dict(momentum_decays=(0.9,)), "momentum_decays"),
    ],
)
def test_config_errors_name_the_field(fields, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        LSTMOptimizer(**fields)


def test_yaml_config_loads_v2_fields_without_jax():
    code = (
        "import sys; from trainers.config.typed import from_dict, to_dict; "
        "from meta_opt.architectures import LearnedOptimizerConfig as L; "
        "c = from_dict(L, {'inputs': ['momenta', 'horizon_fraction'], 'horizon': 100, "
        "'momentum_decays': [0.9, 0.99], 'step_timescales': [1, 10], 'relative_update': True}); "
        "assert c.inputs == ('momenta', 'horizon_fraction') and c.step_timescales == (1.0, 10.0), c; "
        "assert from_dict(L, to_dict(c)) == c; "
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'optax', 'haiku'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
    from trainers.config.typed import ConfigError, from_dict

    with pytest.raises(ConfigError, match="horizon"):
        from_dict(LearnedOptimizerConfig, {"inputs": ["horizon_fraction"]})


# 6. Feature counts and meta-parameter shapes.


@pytest.mark.parametrize(
    "inputs, expected",
    [
        (("log_sign_gradient",), 2),
        (("momenta", "param"), 4 + 1),
        (("rms_normalized",), 5),
        (("step_embedding", "tensor_context"), 7 + 3),
        (INPUTS, 2 + 4 + 5 + 7 + 1 + 3 + 1),
    ],
)
def test_first_lstm_layer_width_is_the_number_of_v2_features(inputs, expected):
    config = LSTMOptimizer(inputs=inputs, horizon=10)
    assert config.kind == "lstm_v2" and config.num_features == expected
    meta_params = config.init(KEY)
    assert meta_params["lstm_0/linear"]["w"].shape == (expected + 20, 80)
    assert meta_params["direction_magnitude"]["w"].shape == (20, 2) and "output" not in meta_params
    tree = normal_tree(1)
    raw = features.raw_inputs(
        config,
        ravel_pytree(tree)[0],
        jnp.zeros((22, 4)),
        jnp.ones(22),
        jnp.asarray(0),
        ravel_pytree(tree)[0],
        features.segments_of(tree),
    )
    assert features.feature_matrix(config, raw, features.segments_of(tree)).shape == (22, expected)


# The transformation: jit, vmap, meta-gradients, output form.


def test_jit_does_not_recompile_and_vmap_matches_single_runs():
    traces = []
    tx = ALL.transformation(meta_params_of(ALL))

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
    assert len(traces) == 1 and states.count.shape == (3,) and np.all(states.count == 2)
    for i in range(3):
        single, state = jax.tree_util.tree_map(lambda x, i=i: x[i], params), tx.init(normal_tree(i))
        for _ in range(2):
            single, state = step(single, state, jax.tree_util.tree_map(lambda x, i=i: x[i], grads))
        for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(batched)):
            np.testing.assert_allclose(b[i], a, rtol=1e-5, atol=1e-7)


def test_update_is_direction_times_exp_magnitude_and_relative_scaling():
    base = dict(inputs=("momenta",), output_scale=0.3)
    meta_params = meta_params_of(LSTMOptimizer(**base))
    params, grads = normal_tree(1), [normal_tree(10, 0.1)]
    u = {
        s: run(LSTMOptimizer(**base, magnitude_scale=s), params, grads, meta_params)[0]
        for s in (0.0, 2.0)
    }
    u_rel, _ = run(
        LSTMOptimizer(**base, magnitude_scale=2.0, relative_update=True), params, grads, meta_params
    )
    # 0.3 * d = u[0]; 0.3 * d * exp(2 m): both factors vary over coordinates.
    ratio = u[2.0]["w"] / u[0.0]["w"]
    assert np.all(ratio > 0) and ratio.std() > 1e-3
    for name in ("v", "w"):
        rms = np.sqrt(np.mean(np.asarray(params[name]) ** 2))
        np.testing.assert_allclose(u_rel[name], u[2.0][name] * rms, rtol=1e-5)
    with pytest.raises(ValueError, match="needs params"):
        tx = ALL.transformation(meta_params_of(ALL))
        tx.update(grads[0], tx.init(params))


def test_meta_gradient_through_scanned_steps_matches_finite_differences():
    with float64():
        config = LSTMOptimizer(inputs=INPUTS, horizon=10, relative_update=True, output_scale=0.3)
        w = jax.random.normal(jax.random.PRNGKey(1), (6, 6))
        loss = lambda theta: jnp.sum((w @ theta - 1.0) ** 2)

        def meta_loss(meta_params):
            tx = config.transformation(meta_params)

            def step(carry, _):
                theta, state = carry
                updates, state = tx.update(jax.grad(loss)(theta), state, theta)
                return (theta + updates, state), loss(theta + updates)

            theta = jnp.linspace(-1.0, 1.0, 6)
            return jnp.sum(jax.lax.scan(step, (theta, tx.init(theta)), None, length=6)[1])

        meta_params = config.init(KEY)
        direction = optax.tree_utils.tree_random_like(jax.random.PRNGKey(7), meta_params)
        loss_and_gradient = jax.jit(jax.value_and_grad(meta_loss))
        gradient = loss_and_gradient(meta_params)[1]
        analytic = sum(
            jnp.vdot(g, d)
            for g, d in zip(
                jax.tree_util.tree_leaves(gradient), jax.tree_util.tree_leaves(direction)
            )
        )
        shifted = lambda s: jax.tree_util.tree_map(
            lambda p, d: p + s * 1e-6 * d, meta_params, direction
        )
        numeric = (loss_and_gradient(shifted(1.0))[0] - loss_and_gradient(shifted(-1.0))[0]) / 2e-6
        assert abs(float(analytic)) > 1e-6
        np.testing.assert_allclose(float(analytic), float(numeric), rtol=1e-4)


def test_registry_builds_v2_from_yaml_style_lists():
    meta_params = LSTMOptimizer(inputs=("momenta", "step_embedding")).init(KEY)
    tx = get_optimizer(
        "lstm",
        meta_params=meta_params,
        inputs=["momenta", "step_embedding"],
        momentum_decays=[0.5, 0.9, 0.99, 0.999],
    )
    updates, state = tx.update(normal_tree(2), tx.init(normal_tree(1)))
    assert type(state) is LSTMv2State and updates["w"].shape == (5, 3)


def test_pretrained_bundle_round_trips_a_v2_config(tmp_path):
    from meta_opt.pretrained_bundles import load_pretrained, save_pretrained

    config = LSTMOptimizer(
        inputs=("momenta", "horizon_fraction"),
        horizon=100,
        momentum_decays=(0.9, 0.99),
        relative_update=True,
    )
    meta_params = meta_params_of(config)
    save_pretrained("v2", config, meta_params, {"summary": "test"}, "# v2\n", tmp_path)
    loaded, loaded_params = load_pretrained("v2", tmp_path)
    assert loaded == config
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded_params, meta_params)
