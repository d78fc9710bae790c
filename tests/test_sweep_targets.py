"""Energy sweeps and geodesic targets on small problems with checkable answers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tasks
from geodesic_targets.paths import bead, endpoint_distance, path_length
from geodesic_targets.reference import load_reference
from geodesic_targets.sampler import ConnectOptions
from geodesic_targets.sweep import SweepOptions, energy_sweep
from geodesic_targets.targets import TargetOptions, TargetSet, generate_targets, target_point
from tests.markdown import table_rows
from trainers.reporting.tables import CONVERGED_COLUMN, sweep_table

KEY = jax.random.PRNGKey(0)


def test_sweep_on_a_convex_task_is_straight_at_every_level():
    task = tasks.get_task("quadratic", seed=0)  # convex: every level set is a convex set
    results = energy_sweep(
        task,
        SweepOptions(levels=(20.0, 5.0), num_pairs=3, max_train_steps=4000),
        ConnectOptions(max_depth=2),
        key=KEY,
        train_optimizer=optax.adam(0.05),
    )
    assert [r.level for r in results] == [20.0, 5.0]
    for r in results:
        assert r.pairs_connected == 3 and r.pairs_unreached == 0
        np.testing.assert_allclose(r.normalized_length_mean, 1.0, atol=1e-5)
        assert r.beads_mean == 2.0 and np.isnan(r.test_error_mean)
    table = sweep_table(results)
    assert table_rows(table)[1][:6] == ["20", "3 / 3", "0", "1.000 ± 0.000", "2.0 ± 0.0", "–"]
    assert CONVERGED_COLUMN not in table and all(r.pairs_shortened == 0 for r in results)


def test_a_sweep_with_shortening_counts_converged_pairs():
    task = tasks.get_task("quadratic", seed=0)
    results = energy_sweep(
        task,
        SweepOptions(levels=(20.0,), num_pairs=2, max_train_steps=4000),
        ConnectOptions(max_depth=2, shorten=True),
        key=KEY,
        train_optimizer=optax.adam(0.05),
    )
    (r,) = results
    assert (
        r.pairs_connected == r.pairs_shortened == r.pairs_converged == 2
    )  # the chord: converged at once
    header, row = table_rows(sweep_table(results))
    assert row[header.index(CONVERGED_COLUMN)] == "2 / 2"


def test_sweep_counts_pairs_that_cannot_reach_a_level():
    task = tasks.get_task("quadratic", seed=0)
    results = energy_sweep(
        task,
        SweepOptions(levels=(1e-9,), num_pairs=2, max_train_steps=5),
        ConnectOptions(),
        key=KEY,
        train_optimizer=optax.sgd(1e-4),
    )
    assert results[0].pairs_unreached == 2 and results[0].pairs_connected == 0


@pytest.mark.slow
def test_digits_sweep_reports_test_error_and_connects():
    task = tasks.get_task("digits_mlp", seed=0)
    results = energy_sweep(
        task,
        SweepOptions(levels=(1.0,), num_pairs=2, max_train_steps=500),
        ConnectOptions(max_depth=4, max_steps=300),
        key=KEY,
        train_optimizer=optax.adam(1e-2),
    )
    assert results[0].pairs_connected == 2
    assert 0.0 < results[0].test_error_mean < 90.0 and results[0].normalized_length_mean >= 1.0


@pytest.fixture(scope="module")
def digits_targets():
    family = tasks.get_family("digits_mlp", input_scale_range=(0.5, 2.0))
    options = TargetOptions(num_instances=2, num_steps=30, horizon=10)
    return family, generate_targets(
        family,
        options,
        ConnectOptions(max_depth=4, max_steps=300),
        key=KEY,
        baseline=optax.adam(1e-2),
    )


@pytest.mark.slow
def test_targets_lie_inside_the_level_set_and_end_at_the_later_point(digits_targets):
    family, targets = digits_targets
    m = len(targets.levels)
    assert m + targets.num_uncertified + targets.num_not_descending == 2 * 3
    assert jax.tree_util.tree_leaves(targets.targets)[0].shape[:2] == (m, 10)
    for pair in range(m):
        task = family.instance(jnp.asarray(targets.instance_keys[pair]))
        start = bead(targets.start_params, pair)
        np.testing.assert_allclose(task.eval_loss(start), targets.levels[pair], rtol=1e-5)
        last = target_point(targets, pair, 10)
        np.testing.assert_allclose(task.eval_loss(last), targets.end_losses[pair], rtol=1e-5)
        for k in range(1, 11):
            assert float(task.eval_loss(target_point(targets, pair, k))) <= targets.levels[pair] * (
                1 + 1e-5
            )
        chain = jax.tree_util.tree_map(
            lambda s, t: jnp.concatenate([s[None], t]), start, bead(targets.targets, pair)
        )
        # Equal arc length: each step covers 1/T of the resampled chain.
        np.testing.assert_allclose(
            float(path_length(chain)) / float(endpoint_distance(chain)),
            targets.normalized_lengths[pair],
            rtol=0.05,
        )
    assert np.all(targets.end_losses <= targets.levels * (1 + 1e-5))
    assert len(set(map(tuple, targets.instance_keys))) == 2  # two distinct instances


def test_target_set_round_trips_through_npz(digits_targets, tmp_path):
    _, targets = digits_targets
    targets.save(tmp_path / "targets.npz")
    loaded = TargetSet.load(tmp_path / "targets.npz")
    np.testing.assert_array_equal(loaded.levels, targets.levels)
    np.testing.assert_array_equal(loaded.instance_keys, targets.instance_keys)
    assert loaded.task == "digits_mlp" and loaded.num_uncertified == targets.num_uncertified
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded.targets, targets.targets)
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="bad.npz"):
        TargetSet.load(tmp_path / "bad.npz")


def test_reference_file_parses_published_points(tmp_path):
    path = tmp_path / "ref.txt"
    path.write_text(
        "normlengthcubics.pdf xlog False\nM1 (0.01,1.872) (0.02,1.688)\n"
        "numbeadsMNIST.pdf xlog False\nM1 (0.7,7.122)\n"
    )
    assert load_reference(path) == {
        "normlengthcubics": [(0.01, 1.872), (0.02, 1.688)],
        "numbeadsMNIST": [(0.7, 7.122)],
    }
