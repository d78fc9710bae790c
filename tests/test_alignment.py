"""Weight matching: permuted copies are recovered, functions are preserved, distances shrink."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tasks
from geodesic_targets.alignment import (
    align,
    aligned_distance,
    dense_chain,
    hidden_widths,
    matching_objective,
    permute_hidden,
)
from tasks import models

HIDDEN = (20, 20)
ENCODER = (32, 16, 8)


def random_perms(seed, params):
    rng = np.random.default_rng(seed)
    return [rng.permutation(width) for width in hidden_widths(params)]


def distance(x, y):
    return float(
        np.sqrt(
            sum(
                np.sum((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
                for a, b in zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(y))
            )
        )
    )


def with_random_biases(params, seed):
    """Haiku initializes biases to zero; random ones make the bias terms count."""
    rng = np.random.default_rng(seed)
    return {
        name: {**module, "b": jnp.asarray(rng.normal(size=module["b"].shape), jnp.float32)}
        for name, module in params.items()
    }


@pytest.fixture(scope="module")
def mlp_task():
    return tasks.get_family("digits_mlp", hidden_sizes=HIDDEN).instance(jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def ae_task():
    return tasks.get_family("digits_autoencoder", encoder_sizes=ENCODER).instance(
        jax.random.PRNGKey(0)
    )


def test_dense_chain_orders_mlp_and_autoencoder(mlp_task, ae_task):
    assert dense_chain(mlp_task.init(jax.random.PRNGKey(1))) == [
        f"mlp/~/linear_{i}" for i in range(3)
    ]
    assert dense_chain(ae_task.init(jax.random.PRNGKey(1))) == (
        [f"encoder/~/linear_{i}" for i in range(3)] + [f"decoder/~/linear_{i}" for i in range(3)]
    )


def test_dense_chain_sorts_numbers_numerically():
    # Widths 1..13 chain only in numeric order; lexicographic order puts linear_10 after linear_1.
    params = {f"mlp/~/linear_{i}": {"w": np.zeros((i + 1, i + 2))} for i in range(12)}
    assert dense_chain(params) == [f"mlp/~/linear_{i}" for i in range(12)]


def test_rejects_conv_kernel():
    params = {
        "conv2_d": {"w": np.zeros((3, 3, 1, 8)), "b": np.zeros(8)},
        "linear": {"w": np.zeros((8, 10)), "b": np.zeros(10)},
    }
    with pytest.raises(ValueError, match=r"'conv2_d' has a rank-4 'w'"):
        dense_chain(params)
    with pytest.raises(ValueError, match="rank-4"):
        align(params, params)


def test_rejects_non_chaining_and_non_dense_trees():
    params = {"mlp/~/linear_0": {"w": np.zeros((4, 5))}, "mlp/~/linear_1": {"w": np.zeros((6, 2))}}
    with pytest.raises(
        ValueError,
        match=r"'mlp/~/linear_0' has 5 outputs but 'mlp/~/linear_1' "
        r"has 6 inputs",
    ):
        dense_chain(params)
    with pytest.raises(ValueError, match="not a dense layer"):
        dense_chain({"norm": {"scale": np.ones(4), "offset": np.zeros(4)}})
    with pytest.raises(ValueError, match="bias shape"):
        dense_chain({"linear": {"w": np.zeros((4, 5)), "b": np.zeros(4)}})


def test_permute_hidden_identity_and_composition(mlp_task):
    params = mlp_task.init(jax.random.PRNGKey(1))
    identity = [np.arange(w) for w in hidden_widths(params)]
    chex.assert_trees_all_equal(permute_hidden(params, identity), params)
    p1, p2 = random_perms(1, params), random_perms(2, params)
    twice = permute_hidden(permute_hidden(params, p1), p2)
    chex.assert_trees_all_equal(twice, permute_hidden(params, [a[b] for a, b in zip(p1, p2)]))
    assert distance(permute_hidden(params, p1), params) > 1.0  # the permutation did something
    with pytest.raises(ValueError, match="expected 2 permutations"):
        permute_hidden(params, p1[:1])


def test_permuted_copy_aligns_back_with_inverse_perms(mlp_task):
    params_a = with_random_biases(mlp_task.init(jax.random.PRNGKey(1)), seed=0)
    perms = random_perms(3, params_a)
    params_b = permute_hidden(params_a, perms)
    aligned, recovered = align(params_a, params_b)
    chex.assert_trees_all_close(aligned, params_a, atol=1e-6, rtol=0)
    for perm, inverse in zip(perms, recovered):
        np.testing.assert_array_equal(inverse, np.argsort(perm))
    assert aligned_distance(params_a, params_b) < 1e-6


def test_alignment_preserves_function(mlp_task):
    params_a = mlp_task.init(jax.random.PRNGKey(1))
    params_b = with_random_biases(mlp_task.init(jax.random.PRNGKey(2)), seed=1)
    aligned, perms = align(params_a, params_b)
    assert any(not np.array_equal(p, np.arange(len(p))) for p in perms)  # a real reordering
    net = models.mlp(HIDDEN, 10, "sigmoid")
    x = jax.random.normal(jax.random.PRNGKey(3), (32, 64))
    np.testing.assert_allclose(net.apply(aligned, x), net.apply(params_b, x), atol=1e-5, rtol=0)
    np.testing.assert_allclose(mlp_task.eval_loss(aligned), mlp_task.eval_loss(params_b), rtol=1e-5)


def test_alignment_shrinks_distance_between_independent_inits(mlp_task):
    for seed in range(3):
        params_a = mlp_task.init(jax.random.PRNGKey(10 + seed))
        params_b = mlp_task.init(jax.random.PRNGKey(20 + seed))
        before, after = distance(params_a, params_b), aligned_distance(params_a, params_b)
        assert after < 0.99 * before, (seed, before, after)


def test_aligned_objective_is_a_local_optimum(mlp_task):
    params_a = with_random_biases(mlp_task.init(jax.random.PRNGKey(4)), seed=2)
    params_b = with_random_biases(mlp_task.init(jax.random.PRNGKey(5)), seed=3)
    aligned, perms = align(params_a, params_b, key=jax.random.PRNGKey(7))
    best = matching_objective(params_a, aligned)
    assert best > matching_objective(params_a, params_b)
    for seed in range(20):
        random = permute_hidden(params_b, random_perms(seed, aligned))
        assert best >= matching_objective(params_a, random)
    # No swap of two units in any one layer helps (implied by each layer's optimal assignment).
    for layer, perm in enumerate(perms):
        for j in range(len(perm)):
            for k in range(j + 1, len(perm)):
                swapped = list(perms)
                swapped[layer] = perm.copy()
                swapped[layer][[j, k]] = perm[[k, j]]
                objective = matching_objective(params_a, permute_hidden(params_b, swapped))
                assert best >= objective - 1e-9 * abs(best), (layer, j, k)


def test_autoencoder_permuted_copy_recovered_and_function_kept(ae_task):
    params_a = with_random_biases(ae_task.init(jax.random.PRNGKey(1)), seed=4)
    perms = random_perms(5, params_a)
    assert [len(p) for p in perms] == [32, 16, 8, 16, 32]
    params_b = permute_hidden(params_a, perms)
    net = models.autoencoder(ENCODER, "sigmoid")
    x = jax.random.uniform(jax.random.PRNGKey(6), (16, 8, 8))
    np.testing.assert_allclose(net.apply(params_b, x), net.apply(params_a, x), atol=1e-5, rtol=0)
    aligned, recovered = align(params_a, params_b)
    chex.assert_trees_all_close(aligned, params_a, atol=1e-6, rtol=0)
    for perm, inverse in zip(perms, recovered):
        np.testing.assert_array_equal(inverse, np.argsort(perm))
    np.testing.assert_allclose(ae_task.eval_loss(aligned), ae_task.eval_loss(params_b), rtol=1e-5)


def test_connect_with_alignment_joins_a_permuted_copy_without_a_bead(mlp_task):
    """A permuted copy computes the same function: aligned, it is the same point (distance 0)."""
    import optax

    from geodesic_targets.beads import descend_until
    from geodesic_targets.sampler import connect

    objective = lambda p, k: mlp_task.loss(p, mlp_task.sample_batch(k))
    trained, loss, _ = descend_until(
        objective,
        mlp_task.eval_loss,
        optax.adam(1e-2),
        mlp_task.init(jax.random.PRNGKey(1)),
        1.0,
        300,
        jax.random.PRNGKey(2),
    )
    permuted = permute_hidden(trained, random_perms(7, trained))
    level = 1.05 * float(loss)
    kwargs = dict(key=jax.random.PRNGKey(3), max_depth=2, max_steps=50)
    result = connect(mlp_task.eval_loss, trained, permuted, level, align=True, **kwargs)
    assert result.connected and result.num_beads == 2  # the ends only
    assert result.endpoint_distance < 1e-5 and result.unaligned_distance == pytest.approx(
        distance(trained, permuted), rel=1e-5
    )
    assert result.unaligned_distance > 1.0
    plain = connect(mlp_task.eval_loss, trained, permuted, level, **kwargs)
    assert np.isnan(plain.unaligned_distance)
    assert plain.endpoint_distance == pytest.approx(result.unaligned_distance, rel=1e-5)


def test_a_sweep_with_alignment_reports_both_distances():
    import optax

    from geodesic_targets.options import ConnectOptions, SweepOptions
    from geodesic_targets.sweep import energy_sweep
    from trainers.reporting.tables import ALIGNED_COLUMN, sweep_table

    task = tasks.get_task("digits_mlp", seed=0)
    sweep = lambda aligned: energy_sweep(
        task,
        SweepOptions(levels=(1.5,), num_pairs=2, max_train_steps=300),
        ConnectOptions(max_depth=3, max_steps=200, align=aligned),
        key=jax.random.PRNGKey(0),
        train_optimizer=optax.adam(1e-2),
    )
    (aligned,), (plain,) = sweep(True), sweep(False)
    assert aligned.pairs_unreached == plain.pairs_unreached == 0
    # the same trained pairs: before alignment they are exactly the plain sweep's ends
    assert aligned.unaligned_distance_mean == pytest.approx(plain.distance_mean, rel=1e-5)
    assert aligned.distance_mean < 0.99 * plain.distance_mean and np.isnan(
        plain.unaligned_distance_mean
    )
    assert ALIGNED_COLUMN in sweep_table([aligned]) and ALIGNED_COLUMN not in sweep_table([plain])
