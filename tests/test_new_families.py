"""The digits CNN and LayerNorm MLP, badly scaled logistic regression and the character LMs."""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tasks
from tasks import models
from tasks.data import stdlib_text
from tasks.data.stdlib_text import VOCAB_SIZE, TextSplits
from tasks.language_model import language_model_task
from tasks.lm_options import CharRNNOptions
from tasks.logreg import badly_scaled, standardized_table

NEW = ("digits_cnn", "digits_mlp_layernorm", "logreg_badly_scaled", "char_rnn_lm", "transformer_lm")
LMS = ("char_rnn_lm", "transformer_lm")
CLASSES = {"digits_cnn": 10, "digits_mlp_layernorm": 10, "logreg_badly_scaled": 10}
LOG_VOCAB = float(np.log(VOCAB_SIZE))
KEY = jax.random.PRNGKey(0)


@functools.cache
def family(name: str) -> tasks.TaskFamily:
    return tasks.get_family(name)


def net_of(name: str):
    """The network of an LM family at its default options (the task hides it)."""
    if name == "char_rnn_lm":
        return models.char_rnn(VOCAB_SIZE, 16, 32, "lstm")
    return models.transformer_lm(VOCAB_SIZE, 32, 32, 2, 64, 1)


def test_registry_lists_the_new_families_and_names_bad_options():
    assert set(NEW) <= set(tasks.list_tasks())
    for name in NEW:
        tasks.validate_options(name, tasks.meta_training_variation(name))
    assert tasks.meta_training_variation("char_rnn_lm") == {"param_scale_range": (0.5, 2.0)}
    assert tasks.meta_training_variation("digits_cnn")["permute_labels"] is True
    bad = [
        ("digits_cnn", {"channels": ()}, "channels"),
        ("digits_mlp_layernorm", {"activation": "swish"}, "activation"),
        ("logreg_badly_scaled", {"log10_scale_range": (2.0, -2.0)}, "log10_scale_range"),
        ("logreg_badly_scaled", {"data": "iris"}, "data"),
        ("char_rnn_lm", {"seq_len": 0}, "seq_len"),
        ("char_rnn_lm", {"cell": "transformer"}, "cell"),
        ("char_rnn_lm", {"validation_size": 32}, "validation_size"),  # not > seq_len
        ("transformer_lm", {"num_heads": 3}, "num_heads"),  # does not divide 32
        ("transformer_lm", {"param_scale_range": (0.0, 1.0)}, "param_scale_range"),
    ]
    for name, overrides, option in bad:
        with pytest.raises(ValueError, match=option):
            tasks.validate_options(name, overrides)


@pytest.mark.parametrize("name", NEW)
def test_all_zero_weights_give_uniform_prediction(name):
    """Zero weights give zero logits, so cross-entropy is log(classes) exactly.

    LayerNorm of the zero vector is (0 - 0) / sqrt(0 + eps) = 0, finite, so the whole tree can
    be zeroed for the LayerNorm nets too; the gradient there must be finite as well.
    """
    task = family(name).instance(KEY)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, task.init(KEY))
    measure = jax.jit(lambda p: (task.eval_loss(p), task.metrics(p), jax.grad(task.eval_loss)(p)))
    eval_loss, metrics, grads = measure(zeros)
    expected = LOG_VOCAB if name in LMS else np.log(CLASSES[name])
    np.testing.assert_allclose(eval_loss, expected, rtol=1e-6)
    np.testing.assert_allclose(metrics["test_loss"], expected, rtol=1e-6)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_logreg_gradient_at_zero_is_the_closed_form():
    """At W = 0, b = 0: dL/dW = X^T (1/K - onehot(y)) / n and dL/db = mean(1/K - onehot(y))."""
    task = family("logreg_badly_scaled").instance(KEY)
    splits = badly_scaled(standardized_table("digits"), (-2.0, 2.0))
    x, y = np.asarray(splits.x_train, np.float64), np.asarray(splits.y_train)  # eval set: all
    residual = 1.0 / 10 - np.eye(10)[y]
    grads = jax.grad(task.eval_loss)(jax.tree_util.tree_map(jnp.zeros_like, task.init(KEY)))
    (layer,) = grads.values()
    w, b = np.asarray(layer["w"]), np.asarray(layer["b"])
    np.testing.assert_allclose(w, x.T @ residual / len(y), rtol=1e-4, atol=1e-5 * np.abs(w).max())
    np.testing.assert_allclose(b, residual.mean(axis=0), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("data", ["digits", "breast_cancer"])
def test_badly_scaled_features_span_the_configured_range(data):
    """Feature stds span 10**(high - low); the covariance's condition number is at least its
    square (its diagonal holds the squared stds: an eigenvalue bound, see tasks.logreg)."""
    plain = standardized_table(data)
    for low, high in [(-2.0, 2.0), (-1.0, 0.5), (0.0, 0.0)]:
        x = np.asarray(badly_scaled(plain, (low, high)).x_train, np.float64)
        std = x.std(axis=0)
        np.testing.assert_allclose(std.max() / std.min(), 10 ** (high - low), rtol=1e-3)
        assert np.linalg.cond(np.cov(x.T)) >= 0.999 * 10 ** (2 * (high - low))
    # the factors follow a fixed shuffled order, not the feature order
    std = np.asarray(badly_scaled(plain, (-2.0, 2.0)).x_train).std(axis=0)
    assert not np.all(np.diff(std) > 0)


def test_stdlib_text_splits_partition_the_corpus_by_position():
    corpus = stdlib_text.read_corpus()
    splits = stdlib_text.load_stdlib_text_splits(0.1)
    np.testing.assert_array_equal(
        np.concatenate([splits.train, splits.test]), stdlib_text.encode(corpus)
    )
    assert len(splits.test) == len(corpus) - round(0.9 * len(corpus))
    assert splits.train.max() < VOCAB_SIZE and splits.train.min() >= 0
    assert stdlib_text.decode(stdlib_text.encode("a\u00e9\n")) == "a\ufffd\n"
    with pytest.raises(tasks.data.DataFileError, match="bisect.py"):
        stdlib_text.read_corpus(pathlib.Path("/nonexistent"))


def test_lm_batches_are_shifted_windows_of_the_training_text():
    task = family("char_rnn_lm").instance(KEY)
    train_text = stdlib_text.decode(stdlib_text.load_stdlib_text_splits(0.1).train)
    batch = jax.tree_util.tree_map(np.asarray, task.sample_batch(jax.random.PRNGKey(3)))
    assert batch["x"].shape == batch["y"].shape == (32, 32) and batch["x"].dtype == np.int32
    np.testing.assert_array_equal(batch["y"][:, :-1], batch["x"][:, 1:])
    for x, y in zip(batch["x"], batch["y"]):
        assert stdlib_text.decode(np.append(x, y[-1])) in train_text


def test_lm_windows_never_cross_from_training_into_validation_or_test_text():
    """A synthetic text whose token is its position: training 0..99, validation 100..119, test
    120..128. Every window must be consecutive, start anywhere in 0..91 and stay in its part."""
    text = np.arange(VOCAB_SIZE)
    options = CharRNNOptions(batch_size=4096, seq_len=8, eval_size=1000, validation_size=20)
    task = language_model_task(
        "toy", net_of("char_rnn_lm"), TextSplits(text[:120], text[120:]), options
    )
    batch = task.sample_batch(KEY)
    x, y = np.asarray(batch["x"]), np.asarray(batch["y"])
    np.testing.assert_array_equal(x, x[:, :1] + np.arange(8))
    np.testing.assert_array_equal(y, x + 1)
    assert set(x[:, 0].tolist()) == set(range(92))  # 92 starts, last window ends at 99
    held_out = np.asarray(task.sample_validation_batch(KEY)["x"])
    assert held_out.min() >= 100 and held_out.max() < 120
    with pytest.raises(ValueError, match="seq_len"):
        language_model_task("toy", None, TextSplits(text[:120], text[120:128]), options)


@pytest.mark.parametrize("name", LMS)
def test_lm_loss_at_random_init_is_log_vocab_plus_half_the_logit_variance(name):
    """CE = logsumexp(z) - z_y = log V + [mean_c z - z_y] + var_c(z) / 2 + O(z^3) for small
    logits (the cumulant expansion of log mean exp). The LSTM's outputs are small, so it starts
    within 0.1 of log V; the transformer reads out a unit-variance LayerNorm output with weights
    of variance ~0.77 / 32 (Haiku's truncated normal), logit variance ~0.8, so it starts about
    0.4 above log V: the second-order formula must account for the gap to 0.03."""
    task = family(name).instance(KEY)
    params = task.init(jax.random.PRNGKey(1))
    batch = task.sample_batch(jax.random.PRNGKey(2))
    z = np.asarray(net_of(name).apply(params, batch["x"]), np.float64)
    z_y = np.take_along_axis(z, np.asarray(batch["y"])[..., None], -1)[..., 0]
    loss = float(task.loss(params, batch))
    predicted = LOG_VOCAB + np.mean(z.mean(-1) - z_y) + np.mean(z.var(-1)) / 2
    np.testing.assert_allclose(loss, predicted, atol=0.03)
    assert abs(float(task.eval_loss(params)) - LOG_VOCAB) < (0.1 if name == "char_rnn_lm" else 0.6)


def test_transformer_is_causal():
    net = net_of("transformer_lm")
    tokens = jnp.asarray(stdlib_text.encode("def f(x):\n    return x + 1  # one\n")[None, :32])
    params = net.init(KEY, tokens)
    changed = tokens.at[0, 20].set(ord("Z"))
    before, after = np.asarray(net.apply(params, tokens)), np.asarray(net.apply(params, changed))
    np.testing.assert_array_equal(before[:, :20], after[:, :20])
    assert np.abs(before[:, 20:] - after[:, 20:]).min(axis=-1).max() > 0  # later ones see it


@pytest.mark.parametrize("name", NEW)
def test_twenty_adam_steps_under_vmap_over_two_instances_lower_eval_loss(name):
    small = {"batch_size": 32, "eval_size": 128}
    fam = tasks.get_family(name, **tasks.meta_training_variation(name), **small)
    tx = optax.adam(1e-2)

    def run(key):
        task = fam.instance(key)
        params = task.init(jax.random.fold_in(key, 1))

        def step(carry, batch_key):
            params, state = carry
            grads = jax.grad(task.loss)(params, task.sample_batch(batch_key))
            updates, state = tx.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        keys = jax.random.split(jax.random.fold_in(key, 2), 20)
        (trained, _), _ = jax.lax.scan(step, (params, tx.init(params)), keys)
        return task.eval_loss(params), task.eval_loss(trained)

    start, end = (np.asarray(a) for a in jax.jit(jax.vmap(run))(jax.random.split(KEY, 2)))
    assert start.shape == end.shape == (2,) and np.all(np.isfinite(end))
    assert start[0] != start[1]  # two distinct instances (init, variation)
    assert np.all(end < 0.9 * start), (start, end)
