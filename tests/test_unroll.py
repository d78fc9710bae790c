"""Truncated unrolls: staggering, horizon resets, loss kinds and second derivatives."""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tasks
from meta_opt import LSTMOptimizer
from tasks.base import TaskFamily
from tasks.supervised import supervised_task
from trainers.config.sections import UnrollOptions
from trainers.core.unroll import (
    HORIZON_TAG,
    VALIDATION_TAG,
    episode_start,
    initial_states,
    reduce_losses,
    unroll,
)

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


def test_restarted_instances_run_log_uniform_horizons_with_min_horizon():
    options = UnrollOptions(horizon=80, unroll_length=5, min_horizon=5)
    starts = np.asarray(jax.vmap(lambda k: episode_start(k, options))(jax.random.split(KEY, 4000)))
    lengths = 80 - starts
    assert (
        set(np.unique(lengths)) <= set(range(5, 85, 5))
        and lengths.min() == 5
        and lengths.max() == 80
    )
    # log-uniform on [5, 80] before rounding: half the runs at most sqrt(5 * 80) = 20 steps
    assert abs(np.mean(lengths <= 20) - 0.5) < 0.05
    assert (
        int(episode_start(KEY, UnrollOptions(horizon=80, unroll_length=5))) == 0
    )  # fixed H without it
    with pytest.raises(ValueError, match="min_horizon"):
        UnrollOptions(horizon=80, unroll_length=5, min_horizon=7)

    # an instance at the horizon restarts at the start step drawn from its key, so it runs H - start steps
    family, meta_params = tasks.get_family("quadratic"), LEARNED.init(KEY)
    state = initial_states(family, LEARNED, meta_params, KEY, 1, options)
    run = jax.jit(jax.vmap(lambda s: unroll(family, LEARNED, options, meta_params, s)))
    episode_lengths = []
    for _ in range(60):
        before = int(state.step[0])
        start = int(episode_start(jax.random.fold_in(state.key[0], HORIZON_TAG), options))
        state, _ = run(state)
        if before >= 80:
            episode_lengths.append(80 - start)
        assert int(state.step[0]) == (start + 5 if before >= 80 else before + 5)
    assert len(set(episode_lengths)) >= 2


def test_loss_kinds_reduce_as_documented():
    losses, initial = jnp.array([4.0, 2.0, 1.0]), jnp.array(8.0)
    np.testing.assert_allclose(reduce_losses(losses, "mean", initial), 7.0 / 3, rtol=1e-6)
    np.testing.assert_allclose(
        reduce_losses(losses, "log", initial), np.mean(np.log([4.0, 2.0, 1.0])), rtol=1e-5
    )
    np.testing.assert_allclose(
        reduce_losses(losses, "normalized", initial), (0.5 + 0.25 + 0.125) / 3, rtol=1e-6
    )


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


def _split_family(validation_size: int):
    """digits-like regression on 10 examples x = index: validation examples are the last ones."""
    x = jnp.arange(10.0)[:, None]
    net = hk.without_apply_rng(hk.transform(lambda v: hk.Linear(1, w_init=jnp.ones)(v)))
    sq = lambda out, y: jnp.sum((out - y) ** 2, axis=-1)
    make = lambda key: supervised_task(
        "split",
        net,
        (x, x * 0.5),
        (x, x * 0.5),
        batch_size=4,
        eval_size=10,
        validation_size=validation_size,
        per_example_loss=sq,
    )
    return TaskFamily("split", None, make)


def test_a_validation_split_is_never_drawn_for_training():
    task = _split_family(3).instance(KEY)
    keys = jax.random.split(KEY, 200)
    train_x = np.concatenate([np.asarray(task.sample_batch(k)["x"]).ravel() for k in keys])
    held_x = np.concatenate(
        [np.asarray(task.sample_validation_batch(k)["x"]).ravel() for k in keys]
    )
    assert set(train_x) == set(range(7)) and set(held_x) == {7.0, 8.0, 9.0}
    assert _split_family(0).instance(KEY).sample_validation_batch is None
    with pytest.raises(ValueError, match="must leave training examples"):
        _split_family(10).instance(KEY)


def test_scoring_on_validation_scores_the_updated_point_on_the_held_out_split():
    """U = 1: the term is F_val(theta_1) on the validation minibatch its key draws, computed by hand."""
    family = _split_family(3)
    task = family.instance(KEY)
    meta_params = LEARNED.init(KEY)
    for kind in ("mean", "normalized"):
        options = UnrollOptions(
            horizon=4, unroll_length=1, stagger=False, score_on="validation", loss_kind=kind
        )
        state = jax.tree_util.tree_map(
            lambda v: v[0], initial_states(family, LEARNED, meta_params, KEY, 1, options)
        )
        after, (term, _) = unroll(family, LEARNED, options, meta_params, state)
        batch_key = jax.random.split(state.key)[1]
        held_out = task.loss(
            after.params,
            task.sample_validation_batch(jax.random.fold_in(batch_key, VALIDATION_TAG)),
        )
        start = task.loss(
            state.params,
            task.sample_validation_batch(jax.random.fold_in(state.key, VALIDATION_TAG)),
        )
        expected = held_out if kind == "mean" else held_out / (start + 1e-8)
        np.testing.assert_allclose(term, expected, rtol=1e-5)
    train_options = UnrollOptions(horizon=4, unroll_length=1, stagger=False)
    _, (train_term, final) = unroll(family, LEARNED, train_options, meta_params, state)
    np.testing.assert_allclose(
        train_term, final, rtol=1e-6
    )  # on training data: F(theta_1) on its batch
    assert not np.allclose(train_term, term)


def test_scoring_on_validation_without_a_split_is_a_clear_error():
    options = UnrollOptions(horizon=4, unroll_length=1, score_on="validation")
    family = _split_family(0)
    meta_params = LEARNED.init(KEY)
    state = jax.tree_util.tree_map(
        lambda v: v[0], initial_states(family, LEARNED, meta_params, KEY, 1, options)
    )
    with pytest.raises(ValueError, match="no validation split"):
        unroll(family, LEARNED, options, meta_params, state)
