"""The imitation meta-loss against analytic values, and the unroll's scoring of updates."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tasks
from meta_opt import LSTMOptimizer
from meta_opt.inner_step import init_carry, inner_step, task_objective
from trainers.config.sections import UnrollOptions
from trainers.core.imitation import endpoint_weights, imitation_loss, path_mismatch
from trainers.core.unroll import initial_states, unroll

KEY = jax.random.PRNGKey(0)
LEARNED = LSTMOptimizer(hidden_sizes=(8,))
T = 6


def learned_trajectory(family, meta_params, start, instance_key, key):
    """The learned optimizer's own iterates theta_1..theta_T, by an independent Python loop."""
    tx = LEARNED.transformation(meta_params)
    objective = task_objective(family.instance(instance_key))
    carry, points = init_carry(tx, start), []
    for batch_key in jax.random.split(key, T):
        carry, _ = inner_step(objective, tx, carry, batch_key, differentiate_gradient=False)
        points.append(carry.params)
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *points)


@pytest.fixture(scope="module")
def setting():
    family = tasks.get_family("quadratic", dim=4)
    meta_params = LEARNED.init(KEY)
    instance_key, init_key, run_key = jax.random.split(jax.random.PRNGKey(1), 3)
    start = family.instance(instance_key).init(init_key)
    own = learned_trajectory(family, meta_params, start, instance_key, run_key)
    return family, meta_params, start, instance_key, run_key, own


def test_the_optimizers_own_trajectory_as_target_scores_zero(setting):
    family, meta_params, start, instance_key, run_key, own = setting
    loss = imitation_loss(family, LEARNED, meta_params, start, own, instance_key, run_key)
    np.testing.assert_allclose(loss, 0.0, atol=1e-10)


def test_targets_shifted_by_delta_score_delta_squared_over_standing_still(setting):
    family, meta_params, start, instance_key, run_key, own = setting
    delta = jnp.array([0.3, -0.1, 0.2, 0.05])
    shifted = {"theta": own["theta"] + delta}
    standing_still = jnp.mean(jnp.sum((shifted["theta"] - start["theta"]) ** 2, axis=1))
    expected = jnp.sum(delta**2) / standing_still  # every point misses by exactly delta
    loss = imitation_loss(family, LEARNED, meta_params, start, shifted, instance_key, run_key)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


@pytest.mark.parametrize("weights", [None, "endpoint", "random"])
def test_standing_still_scores_one_under_every_arm_and_weighting(weights):
    """Equal effective imitation weight: the chord, teacher and endpoint arms alike."""
    rng = np.random.default_rng(0)
    start = {"w": jnp.asarray(rng.normal(size=3)), "b": jnp.asarray(rng.normal(size=(2, 2)))}
    end = jnp.array([1.0, 2.0, -2.0])
    chord = {"w": start["w"] + jnp.arange(1, T + 1)[:, None] / T * end, "b": jnp.ones((T, 2, 2))}
    wander = jax.tree_util.tree_map(lambda t: t + jnp.asarray(rng.normal(size=t.shape)), chord)
    w = {
        None: None,
        "endpoint": endpoint_weights(T),
        "random": jnp.asarray(rng.uniform(size=T)),
    }[weights]
    for targets in (chord, wander):
        stay = jax.tree_util.tree_map(lambda s, t: jnp.broadcast_to(s, t.shape), start, targets)
        np.testing.assert_allclose(path_mismatch(stay, targets, start, w), 1.0, rtol=1e-6)
    # the chord's standing-still score under the old end-distance normalisation, for the record
    old = jnp.mean(jnp.sum((chord["w"] - start["w"]) ** 2, 1)) / jnp.sum(end**2)
    np.testing.assert_allclose(old, 1 / 3 + 1 / (2 * T) + 1 / (6 * T**2), rtol=1e-6)


def test_a_one_step_unroll_scores_the_update_so_its_meta_gradient_is_not_zero():
    """F(theta_1) depends on the meta-parameters through the single update (F(theta_0) would not)."""
    family = tasks.get_family("quadratic")
    meta_params = LEARNED.init(KEY)
    options = UnrollOptions(horizon=4, unroll_length=1, stagger=False)
    state = jax.tree_util.tree_map(
        lambda x: x[0], initial_states(family, LEARNED, meta_params, KEY, 1, options)
    )
    loss = lambda mp: unroll(family, LEARNED, options, mp, state)[1][0]
    grad = jax.flatten_util.ravel_pytree(jax.grad(loss)(meta_params))[0]
    assert np.all(np.isfinite(grad)) and float(jnp.linalg.norm(grad)) > 1e-6


def test_the_unroll_scores_the_loss_after_each_update():
    """With U steps the meta-loss term is the mean of F(theta_1..theta_U), checked step by step."""
    family = tasks.get_family(
        "quadratic", batch_noise=0.0
    )  # deterministic: F is the same on every batch
    meta_params = LEARNED.init(KEY)
    options = UnrollOptions(horizon=3, unroll_length=3, stagger=False)
    state = jax.tree_util.tree_map(
        lambda x: x[0], initial_states(family, LEARNED, meta_params, KEY, 1, options)
    )
    _, (term, last) = unroll(family, LEARNED, options, meta_params, state)
    task = family.instance(state.instance_key)
    tx, params, opt_state, losses = (
        LEARNED.transformation(meta_params),
        state.params,
        state.opt_state,
        [],
    )
    for _ in range(3):
        updates, opt_state = tx.update(jax.grad(task.eval_loss)(params), opt_state, params)
        params = optax.apply_updates(params, updates)
        losses.append(float(task.eval_loss(params)))
    np.testing.assert_allclose(term, np.mean(losses), rtol=1e-5)
    np.testing.assert_allclose(last, losses[-1], rtol=1e-5)
