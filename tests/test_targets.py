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
FAST = ConnectOptions(
    max_steps=300, shortening=ShortenOptions(num_points=9, rounds=60, check_every=20)
)


@pytest.fixture(scope="module")
def family():
    return tasks.get_family("quadratic", dim=6)


def losses_of(family, target_set, pair):
    task = family.instance(jnp.asarray(target_set.instance_keys[pair]))
    points = jax.tree_util.tree_map(lambda x: x[pair], target_set.targets)
    return np.asarray(jax.vmap(task.eval_loss)(points))


NON_MONOTONE = (
    0.3  # Adam at this rate overshoots on the quadratics: the teacher's losses rise again
)


@pytest.fixture(scope="module")
def teacher_set(family):
    options = TargetOptions(num_instances=2, num_steps=12, horizon=4, schedule="teacher")
    return generate_targets(family, options, FAST, key=KEY, baseline=optax.adam(NON_MONOTONE))


def pair_losses(runs, target_set, pair, horizon=4):
    i = int(np.flatnonzero((runs.instance_keys == target_set.instance_keys[pair]).all(1))[0])
    return runs.pair(i, int(target_set.start_steps[pair]), horizon)[1]


def test_floored_teacher_schedule_certifies_every_descending_pair_of_a_convex_task(
    family, teacher_set
):
    runs = geodesic_runs(family, NON_MONOTONE)
    windows = [runs.losses[i, t : t + 5] for i in range(2) for t in (0, 4, 8)]
    descending = [w for w in windows if w[-1] <= w[0]]
    assert any(
        w[-1] > np.min(w) for w in descending
    )  # a pair the unfloored best-so-far could never certify
    assert teacher_set.schedule == "teacher" and teacher_set.timing == "index"
    assert teacher_set.num_uncertified == 0 and len(teacher_set.levels) == len(descending)
    assert teacher_set.num_not_descending == len(windows) - len(descending)
    assert np.all(teacher_set.num_beads == 5)  # the teacher's T + 1 points, kept by index
    assert np.all(teacher_set.normalized_lengths <= teacher_set.unshortened_lengths + 1e-6)
    assert np.all(teacher_set.converged == 1)


def test_teacher_schedule_targets_keep_their_floored_levels(family, teacher_set):
    runs = geodesic_runs(
        family, NON_MONOTONE
    )  # an independent teacher run: the same key, the same runs
    for pair in range(len(teacher_set.levels)):
        losses = pair_losses(runs, teacher_set, pair)
        floored = np.maximum(np.minimum.accumulate(losses), losses[-1]) * (1 + 1e-5)
        np.testing.assert_allclose(teacher_set.target_levels[pair], floored[1:], rtol=1e-6)
        reached = losses_of(family, teacher_set, pair)  # target k is the path's point k
        assert np.all(reached <= floored[1:] * (1 + 1e-6)), (reached, floored)
        np.testing.assert_allclose(teacher_set.target_losses[pair], reached, rtol=1e-5)
    assert teacher_set.largest_target_excess() <= 1e-6


@pytest.mark.parametrize("schedule,timing", [("constant", "arc_length"), ("linear", "schedule")])
def test_every_target_of_a_fraction_schedule_is_at_or_below_its_level(family, schedule, timing):
    options = TargetOptions(
        num_instances=2, num_steps=12, horizon=4, schedule=schedule, timing=timing
    )
    target_set = generate_targets(
        family, options, dataclasses.replace(FAST, shorten=True), key=KEY, baseline=optax.adam(0.05)
    )
    runs = geodesic_runs(family)
    for pair in range(len(target_set.levels)):
        losses = pair_losses(runs, target_set, pair)
        levels = target_set.target_levels[pair]
        assert levels[-1] == pytest.approx(
            losses[0 if schedule == "constant" else -1] * (1 + 1e-5), rel=1e-6
        )
        assert np.all(np.diff(levels) <= 1e-6 * levels[0])  # never rising along the path
        assert np.all(losses_of(family, target_set, pair) <= levels * (1 + 1e-5))
    assert target_set.largest_target_excess() <= 1e-5
    assert np.all(np.isfinite(target_set.converged)) and np.all(target_set.shortening_rounds >= 1)


def geodesic_runs(family, learning_rate=0.05):
    from geodesic_targets.teacher import run_teacher

    options = TargetOptions(num_instances=2, num_steps=12, horizon=4)
    return run_teacher(family, optax.adam(learning_rate), options, jax.random.split(KEY)[0])


def test_timing_by_schedule_puts_target_k_where_the_path_reaches_the_teachers_loss(family):
    options = TargetOptions(
        num_instances=2, num_steps=12, horizon=4, schedule="constant", timing="schedule"
    )
    target_set = generate_targets(family, options, FAST, key=KEY, baseline=optax.adam(0.05))
    runs = geodesic_runs(family)
    assert target_set.timing == "schedule" and np.all(
        np.isnan(target_set.converged)
    )  # not shortened
    for pair in range(len(target_set.levels)):
        i = int(np.flatnonzero((runs.instance_keys == target_set.instance_keys[pair]).all(1))[0])
        _, teacher_losses = runs.pair(i, int(target_set.start_steps[pair]), 4)
        best = geometry.teacher_levels(teacher_losses)
        reached = losses_of(family, target_set, pair)
        assert np.all(
            reached[:-1] <= best[1:-1] * (1 + 1e-5) + 1e-7
        )  # on the chord of a bowl: always reached
        np.testing.assert_allclose(reached[-1], target_set.end_losses[pair], rtol=1e-5)


def test_linear_schedule_with_shortening_records_lengths_before_and_after(family):
    options = TargetOptions(num_instances=1, num_steps=8, horizon=4, schedule="linear")
    target_set = generate_targets(
        family, options, dataclasses.replace(FAST, shorten=True), key=KEY, baseline=optax.adam(0.05)
    )
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
    np.testing.assert_array_equal(
        geometry.teacher_levels([3.0, 1.0, 2.0, 0.5, 1.5]), [3.0, 1.5, 1.5, 1.5, 1.5]
    )


def test_the_chord_keeps_pace_unevenly_where_its_loss_falls_and_not_over_a_bump():
    start, end = {"w": jnp.array([2.0, 0.0])}, {"w": jnp.array([0.0, 0.0])}
    bowl = lambda p: jnp.sum(p["w"] ** 2)
    # levels falling faster than an even walk: the chord at k/4 is above them, an uneven walk is not
    levels = np.array([4.0, 0.5, 0.3, 0.1, 0.0]) + 1e-6
    assert geometry.chord_break_fraction(bowl, start, end, levels) > 0
    assert geometry.chord_keeps_pace(bowl, start, end, levels)
    bump = lambda p: (
        bowl(p) + 5.0 * jnp.exp(-20 * (p["w"][0] - 1.0) ** 2)
    )  # a ridge across the chord's middle
    assert not geometry.chord_keeps_pace(bump, start, end, levels)


def test_target_sets_round_trip_and_old_files_load_with_their_defaults(teacher_set, tmp_path):
    teacher_set.save(tmp_path / "new.npz")
    loaded = TargetSet.load(tmp_path / "new.npz")
    assert loaded.schedule == "teacher" and loaded.timing == "index"
    np.testing.assert_array_equal(loaded.target_levels, teacher_set.target_levels)
    np.testing.assert_array_equal(loaded.converged, teacher_set.converged)
    np.testing.assert_array_equal(loaded.num_beads, teacher_set.num_beads)
    np.testing.assert_array_equal(loaded.chord_break_fractions, teacher_set.chord_break_fractions)
    old_fields = (
        "levels",
        "end_losses",
        "normalized_lengths",
        "instance_keys",
        "start_steps",
        "num_uncertified",
        "num_not_descending",
        "task",
    )
    save_path(
        tmp_path / "old.npz",
        {"start": teacher_set.start_params, "targets": teacher_set.targets},
        **{name: getattr(teacher_set, name) for name in old_fields},
    )
    old = TargetSet.load(tmp_path / "old.npz")
    assert (
        old.schedule == "constant"
        and old.timing == "arc_length"
        and np.all(np.isnan(old.chord_deviations))
    )
    assert old.target_levels.shape == (len(old.levels), 4) and np.isnan(old.largest_target_excess())


def test_pair_keys_are_named_derivations_that_never_collide():
    from geodesic_targets.targets import Pair, pair_key

    key, horizon = jax.random.PRNGKey(3), 5
    expected = jax.random.fold_in(jax.random.fold_in(key, 2), 7)  # instance 2, chunk 35 // 5
    np.testing.assert_array_equal(pair_key(key, Pair(2, 35), horizon), expected)
    # the former arithmetic key (instance * 10_000 + chunk) gave these two pairs one key
    a, b = pair_key(key, Pair(1, 0), horizon), pair_key(key, Pair(0, 10_000 * horizon), horizon)
    assert not np.array_equal(a, b)
    many = {
        tuple(np.asarray(pair_key(key, Pair(i, c * horizon), horizon)))
        for i in range(4)
        for c in range(6)
    }
    assert len(many) == 24
