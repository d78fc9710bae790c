"""Target sets under the three level schedules and two timings, and their geometry measures."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tasks
from geodesic_targets import target_geometry as geometry
from geodesic_targets.options import ConnectOptions, ShortenOptions, TargetOptions
from geodesic_targets.paths import save_path
from geodesic_targets.targets import TargetSet, generate_targets

pytestmark = pytest.mark.slow  # each test runs a teacher and builds a target set
KEY = jax.random.PRNGKey(0)
FAST = ConnectOptions(max_steps=300, shortening=ShortenOptions(num_points=9, rounds=60, check_every=20))


@pytest.fixture(scope="module")
def family():
    return tasks.get_family("quadratic", dim=6)


def losses_of(family, target_set, pair):
    task = family.instance(jnp.asarray(target_set.instance_keys[pair]))
    points = jax.tree_util.tree_map(lambda x: x[pair], target_set.targets)
    return np.asarray(jax.vmap(task.eval_loss)(points))


@pytest.fixture(scope="module")
def teacher_set(family):
    options = TargetOptions(num_instances=2, num_steps=12, horizon=4, schedule="teacher")
    return generate_targets(family, options, FAST, key=KEY, baseline=optax.adam(0.05))


def test_teacher_schedule_keeps_each_target_at_the_teachers_pace(family, teacher_set):
    assert teacher_set.schedule == "teacher" and teacher_set.timing == "arc_length"
    assert len(teacher_set.levels) + teacher_set.num_uncertified + teacher_set.num_not_descending == 6
    assert np.all(teacher_set.num_beads == 5)  # the teacher's T + 1 points, kept by index
    assert np.all(teacher_set.normalized_lengths <= teacher_set.unshortened_lengths + 1e-6)
    # an independent teacher run: the same key gives the same trajectories
    runs = geodesic_runs(family)
    for pair in range(len(teacher_set.levels)):
        i = int(np.flatnonzero((runs.instance_keys == teacher_set.instance_keys[pair]).all(1))[0])
        _, teacher_losses = runs.pair(i, int(teacher_set.start_steps[pair]), 4)
        assert teacher_set.levels[pair] == pytest.approx(teacher_losses[0])
        assert teacher_set.unshortened_lengths[pair] >= 1.0


def geodesic_runs(family):
    from geodesic_targets.teacher import run_teacher

    options = TargetOptions(num_instances=2, num_steps=12, horizon=4)
    return run_teacher(family, optax.adam(0.05), options, jax.random.split(KEY)[0])


def test_timing_by_schedule_puts_target_k_where_the_path_reaches_the_teachers_loss(family):
    options = TargetOptions(num_instances=2, num_steps=12, horizon=4, schedule="constant", timing="schedule")
    target_set = generate_targets(family, options, FAST, key=KEY, baseline=optax.adam(0.05))
    runs = geodesic_runs(family)
    assert target_set.timing == "schedule"
    for pair in range(len(target_set.levels)):
        i = int(np.flatnonzero((runs.instance_keys == target_set.instance_keys[pair]).all(1))[0])
        _, teacher_losses = runs.pair(i, int(target_set.start_steps[pair]), 4)
        best = geometry.best_so_far(teacher_losses)
        reached = losses_of(family, target_set, pair)
        assert np.all(reached[:-1] <= best[1:-1] * (1 + 1e-5) + 1e-7)  # on the chord of a bowl: always reached
        np.testing.assert_allclose(reached[-1], target_set.end_losses[pair], rtol=1e-5)


def test_linear_schedule_with_shortening_records_lengths_before_and_after(family):
    options = TargetOptions(num_instances=1, num_steps=8, horizon=4, schedule="linear")
    target_set = generate_targets(family, options, dataclasses.replace(FAST, shorten=True), key=KEY,
                                  baseline=optax.adam(0.05))
    assert target_set.schedule == "linear" and np.all(np.isfinite(target_set.unshortened_lengths))
    assert np.all(target_set.normalized_lengths <= target_set.unshortened_lengths + 1e-6)


def test_chord_deviation_and_break_fraction_against_hand_computed_values():
    path = {"w": jnp.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])}
    assert geometry.chord_deviation(path) == pytest.approx(0.5)  # distance 1 over chord length 2
    loss = lambda p: jnp.sum(p["w"] ** 2)
    start, end = {"w": jnp.array([2.0, 0.0])}, {"w": jnp.array([0.0, 0.0])}
    # chord at k/4: (2 - k/2)^2 = 2.25, 1, 0.25; the teacher is lower at k = 1 and k = 3 only
    teacher = np.array([4.0, 2.0, 1.5, 0.2, 0.0])
    assert geometry.chord_break_fraction(loss, start, end, teacher) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(geometry.best_so_far([3.0, 1.0, 2.0, 0.5]), [3.0, 1.0, 1.0, 0.5])


def test_target_sets_round_trip_and_old_files_load_with_their_defaults(teacher_set, tmp_path):
    teacher_set.save(tmp_path / "new.npz")
    loaded = TargetSet.load(tmp_path / "new.npz")
    assert loaded.schedule == "teacher" and loaded.timing == "arc_length"
    np.testing.assert_array_equal(loaded.num_beads, teacher_set.num_beads)
    np.testing.assert_array_equal(loaded.chord_break_fractions, teacher_set.chord_break_fractions)
    old_fields = ("levels", "end_losses", "normalized_lengths", "instance_keys", "start_steps",
                  "num_uncertified", "num_not_descending", "task")
    save_path(tmp_path / "old.npz", {"start": teacher_set.start_params, "targets": teacher_set.targets},
              **{name: getattr(teacher_set, name) for name in old_fields})
    old = TargetSet.load(tmp_path / "old.npz")
    assert old.schedule == "constant" and old.timing == "arc_length" and np.all(np.isnan(old.chord_deviations))
