"""The task library: analytic losses, determinism, vmap over families, trainability."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tasks
from tasks.synthetic import quadratic_problem

jax.config.update("jax_enable_x64", False)

KEY = jax.random.PRNGKey(0)

# Small configurations of every family, so the whole registry is exercised on CPU.
SMALL = {
    "quadratic": {"batch_noise": 0.1},
    "poly_cubic": {},
    "deep_linear": {},
    "digits_mlp": {},
    "mnist_mlp": {"batch_size": 16},
    "mnist_cnn": {"channels": (4,), "batch_size": 8},
    "cifar10_cnn": {"channels": (4,), "batch_size": 8},
    "digits_autoencoder": {},
    "mnist_autoencoder": {"encoder_sizes": (16, 4), "batch_size": 16},
    "wine_mlp": {"batch_size": 16},
    "breast_cancer_mlp": {"batch_size": 16},
    "digits_cnn": {"channels": (4,), "batch_size": 16},
    "digits_mlp_layernorm": {"batch_size": 16},
    "logreg_badly_scaled": {"batch_size": 16},
    "char_rnn_lm": {"seq_len": 8, "batch_size": 8, "eval_size": 16},
    "transformer_lm": {"seq_len": 8, "batch_size": 8, "eval_size": 16},
}
NEEDS_DATA_DIR = {"mnist_mlp", "mnist_cnn", "cifar10_cnn", "mnist_autoencoder"}
# Plain gradient-descent step sizes under which each task's full loss must fall.
LEARNING_RATE = {
    "quadratic": 1e-3,
    "poly_cubic": 0.1,
    "deep_linear": 0.05,
    "digits_mlp": 1.0,
    "mnist_mlp": 0.5,
    "mnist_cnn": 0.1,
    "cifar10_cnn": 0.05,
    "digits_autoencoder": 0.01,
    "mnist_autoencoder": 0.01,
    "wine_mlp": 0.5,
    "breast_cancer_mlp": 0.5,
    "digits_cnn": 0.5,
    "digits_mlp_layernorm": 0.1,
    "logreg_badly_scaled": 1e-3,  # features up to 100x: the curvature is ~1e4 larger
    "char_rnn_lm": 1.0,
    "transformer_lm": 0.1,
}


def small_family(name: str, data_dir) -> tasks.TaskFamily:
    options = dict(SMALL[name])
    if name in NEEDS_DATA_DIR:
        options["data_dir"] = str(data_dir)
    return tasks.get_family(name, **options)


def test_registry_lists_every_family():
    assert tasks.list_tasks() == sorted(SMALL)


def test_every_default_meta_training_variation_is_valid_and_only_classifiers_relabel():
    for name in tasks.list_tasks():
        variation = tasks.meta_training_variation(name)
        tasks.validate_options(name, variation)  # options of that family, in range
        relabels = variation.get("permute_labels", False)
        assert relabels == (
            "permute_labels" in {f.name for f in dataclasses.fields(tasks.options_type(name))}
        ), name
    assert tasks.meta_training_variation("digits_mlp") == {
        "input_scale_range": (0.5, 2.0),
        "permute_labels": True,
    }
    assert tasks.meta_training_variation("quadratic") == {}


def test_quadratic_loss_and_gradient_match_closed_form():
    task = tasks.get_task("quadratic", seed=3)
    w, y = (np.asarray(a, np.float64) for a in quadratic_problem(jax.random.PRNGKey(3), 10))
    theta = np.linspace(-1.0, 1.0, 10)
    params = {"theta": jnp.asarray(theta, jnp.float32)}
    residual = w @ theta - y
    np.testing.assert_allclose(task.eval_loss(params), residual @ residual, rtol=1e-5)
    grad = jax.grad(task.eval_loss)(params)["theta"]
    np.testing.assert_allclose(grad, 2 * w.T @ residual, rtol=1e-4, atol=1e-4)
    hessian = jax.hessian(task.eval_loss)(params)["theta"]["theta"]
    np.testing.assert_allclose(hessian, 2 * w.T @ w, rtol=1e-4, atol=1e-4)
    batch = task.sample_batch(KEY)
    np.testing.assert_allclose(task.loss(params, batch), residual @ residual, rtol=1e-5)


def test_quadratic_batch_noise_perturbs_the_target():
    task = tasks.get_task("quadratic", seed=1, batch_noise=0.5)
    params = task.init(KEY)
    losses = [float(task.loss(params, task.sample_batch(jax.random.PRNGKey(i)))) for i in range(4)]
    assert len(set(losses)) == 4
    np.testing.assert_allclose(np.mean(losses), float(task.eval_loss(params)), rtol=0.5)


def test_deep_linear_loss_matches_numpy():
    task = tasks.get_task("deep_linear", seed=2, depth=4)
    params = task.init(jax.random.PRNGKey(5))
    batch = task.sample_batch(jax.random.PRNGKey(6))
    layers = [np.asarray(params[f"layer_{i}"]["w"], np.float64) for i in range(4)]
    assert all("b" not in params[f"layer_{i}"] for i in range(4))
    product = layers[0] @ layers[1] @ layers[2] @ layers[3]
    x, y = np.asarray(batch["x"], np.float64), np.asarray(batch["y"], np.float64)
    expected = np.mean(np.sum((x @ product - y) ** 2, axis=1))
    np.testing.assert_allclose(task.loss(params, batch), expected, rtol=1e-5)


def test_poly_cubic_targets_are_a_cubic_in_unit_box():
    task = tasks.get_task("poly_cubic", seed=4, batch_size=256)
    batch = task.sample_batch(KEY)
    x, y = np.asarray(batch["x"][:, 0], np.float64), np.asarray(batch["y"][:, 0], np.float64)
    assert np.all((y >= -1e-3) & (y <= 1 + 1e-3)) and y.max() - y.min() > 0.3
    coefficients = np.polyfit(x, y, 3)
    np.testing.assert_allclose(np.polyval(coefficients, x), y, atol=1e-4)
    assert np.polyfit(x, y, 2, full=True)[1][0] > 1e-4  # genuinely cubic, not quadratic


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_key_same_init_and_batch_different_key_different(name, tiny_data_dir):
    task = small_family(name, tiny_data_dir).instance(KEY)
    key_a, key_b = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
    leaves = lambda tree: [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]
    for fn in (task.init, task.sample_batch):
        for a, b in zip(leaves(fn(key_a)), leaves(fn(key_a))):
            np.testing.assert_array_equal(a, b)
        assert any(not np.array_equal(a, b) for a, b in zip(leaves(fn(key_a)), leaves(fn(key_b))))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_vmap_over_family_keys_gives_distinct_losses(name, tiny_data_dir):
    family = small_family(name, tiny_data_dir)

    def instance_loss(key):
        task = family.instance(key)
        init_key, batch_key = jax.random.split(key)
        return task.loss(task.init(init_key), task.sample_batch(batch_key))

    keys = jax.random.split(KEY, 4)
    batched = np.asarray(jax.jit(jax.vmap(instance_loss))(keys))
    assert batched.shape == (4,) and np.all(np.isfinite(batched))
    assert len(np.unique(np.round(batched, 6))) == 4
    np.testing.assert_allclose(batched[2], instance_loss(keys[2]), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_loss_finite_and_falls_under_gradient_descent(name, tiny_data_dir):
    task = small_family(name, tiny_data_dir).instance(KEY)
    params = task.init(jax.random.PRNGKey(1))
    lr = LEARNING_RATE[name]

    @jax.jit
    def step(params):
        grads = jax.grad(task.eval_loss)(params)
        return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)

    start = float(task.eval_loss(params))
    for _ in range(10):
        params = step(params)
    end = float(task.eval_loss(params))
    assert np.isfinite(start) and np.isfinite(end)
    assert end < 0.99 * start, (start, end)
    assert all(np.isfinite(float(v)) for v in task.metrics(params).values())


def test_classifier_metrics_are_consistent():
    task = tasks.get_task("digits_mlp")
    params = task.init(KEY)
    metrics = task.metrics(params)
    assert set(metrics) == {"test_loss", "train_accuracy", "test_accuracy"}
    assert 0.0 <= float(metrics["test_accuracy"]) <= 1.0
    # Uniform logits (all-zero output layer) give cross-entropy log(10) exactly.
    zeroed = dict(params)
    last = sorted(k for k in params if "linear" in k)[-1]
    zeroed[last] = jax.tree_util.tree_map(jnp.zeros_like, params[last])
    np.testing.assert_allclose(task.eval_loss(zeroed), np.log(10.0), rtol=1e-5)


def test_family_variation_permutes_labels_and_scales_inputs():
    family = tasks.get_family("digits_mlp", permute_labels=True, input_scale_range=(0.5, 2.0))
    batch_key = jax.random.PRNGKey(9)
    a, b = family.instance(jax.random.PRNGKey(1)), family.instance(jax.random.PRNGKey(2))
    params = a.init(KEY)
    assert float(a.loss(params, a.sample_batch(batch_key))) != float(
        b.loss(params, b.sample_batch(batch_key))
    )
    plain = tasks.get_family("digits_mlp")
    same = [
        plain.instance(jax.random.PRNGKey(i)).loss(
            params, plain.instance(KEY).sample_batch(batch_key)
        )
        for i in range(2)
    ]
    np.testing.assert_allclose(same[0], same[1], rtol=1e-6)


def test_parameter_rescaling_poses_the_same_problem_in_scaled_coordinates():
    plain, scaled = (
        tasks.get_family("digits_mlp"),
        tasks.get_family("digits_mlp", param_scale_range=(0.25, 4.0)),
    )
    a, b = plain.instance(jax.random.PRNGKey(3)), scaled.instance(jax.random.PRNGKey(3))
    theta, phi = a.init(KEY), b.init(KEY)
    batch = a.sample_batch(jax.random.PRNGKey(4))
    np.testing.assert_allclose(b.loss(phi, batch), a.loss(theta, batch), rtol=1e-6)
    np.testing.assert_allclose(b.eval_loss(phi), a.eval_loss(theta), rtol=1e-6)
    # in phi = theta / s the gradient is s times theta's, with one s per tensor in the range
    g_theta, g_phi = jax.grad(a.loss)(theta, batch), jax.grad(b.loss)(phi, batch)
    found = []
    for t, p, gt, gp in zip(*(jax.tree_util.tree_leaves(x) for x in (theta, phi, g_theta, g_phi))):
        gt, gp = np.asarray(gt).ravel(), np.asarray(gp).ravel()
        big = np.abs(gt) > 1e-4 * np.abs(gt).max()
        s = float(np.median(gp[big] / gt[big]))
        np.testing.assert_allclose(gp, s * gt, rtol=1e-4, atol=1e-7 * np.abs(gt).max())
        np.testing.assert_allclose(
            np.asarray(t), s * np.asarray(p), rtol=1e-5, atol=1e-7
        )  # init theta_0 / s
        assert 0.25 <= s <= 4.0
        found.append(s)
    assert np.ptp(found) > 0.1  # tensors get different scales
    with pytest.raises(ValueError, match="param_scale_range"):
        tasks.validate_options("digits_mlp", {"param_scale_range": (2.0, 1.0)})


@pytest.mark.parametrize(
    "name,classes,features", [("wine_mlp", 3, 13), ("breast_cancer_mlp", 2, 30)]
)
def test_tabular_families_start_at_chance_on_standardized_features(name, classes, features):
    from tasks.data.tabular import load_tabular_splits

    splits = load_tabular_splits(name.removesuffix("_mlp"))
    assert splits.x_train.shape[1] == features and set(np.unique(splits.y_train)) == set(
        range(classes)
    )
    np.testing.assert_allclose(splits.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(splits.x_train.std(axis=0), 1.0, atol=1e-3)
    task = tasks.get_family(name).instance(KEY)
    params = task.init(KEY)
    zeroed = jax.tree_util.tree_map(jnp.zeros_like, params)  # all-zero logits: uniform prediction
    np.testing.assert_allclose(task.eval_loss(zeroed), np.log(classes), rtol=1e-5)
    relabelled = tasks.get_family(
        name, permute_labels=True
    )  # some instances swap classes (2 classes: half)
    losses = [float(relabelled.instance(jax.random.PRNGKey(i)).eval_loss(params)) for i in range(6)]
    assert any(loss != pytest.approx(float(task.eval_loss(params))) for loss in losses)
    with pytest.raises(ValueError, match="unknown tabular"):
        load_tabular_splits("iris_flowers")


def test_unknown_task_and_options_are_named():
    with pytest.raises(KeyError, match="nonexistent"):
        tasks.get_family("nonexistent")
    with pytest.raises(KeyError, match="hidden_size"):
        tasks.get_family("digits_mlp", hidden_size=(3,))
    with pytest.raises(ValueError, match="activation"):
        tasks.get_family("digits_mlp", activation="swish")
    with pytest.raises(ValueError, match="activation"):
        tasks.validate_options("poly_cubic", {"activation": "swish"})
    with pytest.raises(ValueError, match="batch_size"):
        tasks.validate_options("digits_mlp", {"batch_size": -1})
    with pytest.raises(ValueError, match="dim"):
        tasks.validate_options("quadratic", {"dim": 0})
