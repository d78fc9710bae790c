"""Path shortening and level schedules against closed-form geodesics."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from geodesic_targets import LevelSchedule, connect, shorten
from geodesic_targets.interpolation import interpolated_losses
from geodesic_targets.paths import bead, interpolate_stack, path_length, resample

KEY = jax.random.PRNGKey(0)
DIM, WIDTH, LEVEL = 24, 1.0, 0.1
RADIUS = WIDTH * math.sqrt(2 * math.log(1 / LEVEL))  # F <= LEVEL outside this disk
ROTATION = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(7), (DIM, DIM)))[0]


def disk_loss(params):
    """exp(-|P theta|^2 / (2 s^2)): a Gaussian bump on the plane of the first two rotated axes."""
    plane = (ROTATION.T @ params["w"])[:2]
    return jnp.exp(-jnp.sum(plane**2) / (2 * WIDTH**2))


def in_plane(radius, degrees):
    angle = math.radians(degrees)
    return {
        "w": ROTATION
        @ jnp.zeros(DIM).at[0].set(radius * math.cos(angle)).at[1].set(radius * math.sin(angle))
    }


def around_the_disk(distance, radius, degrees):
    """Tangent, arc, tangent: the shortest path between two points at `distance` outside a disk."""
    angle = math.radians(degrees)
    tangent = math.sqrt(distance**2 - radius**2)
    arc = radius * (angle - 2 * math.acos(radius / distance))
    return (2 * tangent + arc) / (2 * distance * math.sin(angle / 2))


def fine_schedule_check(loss_fn, result, schedule, per_segment=64):
    """Loss and level at the arc-length fraction of every point of a fine grid along the path."""
    points = resample(result.beads, per_segment * (result.num_beads - 1) + 1)
    fractions = np.linspace(0, 1, per_segment * (result.num_beads - 1) + 1)
    losses = np.asarray(jax.vmap(loss_fn)(points))
    levels = np.interp(fractions, np.linspace(0, 1, len(schedule.levels)), schedule.levels)
    return losses, levels


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", [optax.adam(0.1), optax.sgd(2.0)], ids=["adam", "sgd"])
def test_shortened_path_around_a_disk_has_the_closed_form_length(optimizer):
    distance, degrees = 1.2 * RADIUS, 150
    a, b = in_plane(distance, 0), in_plane(distance, degrees)
    raw = connect(disk_loss, a, b, LEVEL, key=KEY, optimizer=optimizer, max_steps=3000)
    short = connect(
        disk_loss, a, b, LEVEL, key=KEY, optimizer=optimizer, max_steps=3000, shorten=True
    )
    assert raw.connected and short.connected, (raw.reason, short.reason)
    expected = around_the_disk(distance, RADIUS, degrees)
    np.testing.assert_allclose(short.normalized_length, expected, rtol=0.03)
    assert short.path_length <= raw.path_length + 1e-6  # never longer than its input
    np.testing.assert_allclose(short.length_before, raw.path_length, rtol=1e-6)
    losses, levels = fine_schedule_check(disk_loss, short, LevelSchedule.constant(LEVEL))
    assert np.all(losses <= levels + 1e-6)


def test_shortening_a_zigzag_in_a_convex_set_gives_the_chord():
    quadratic = lambda p: jnp.sum(p["w"] ** 2)
    a, b = {"w": jnp.array([1.0, 0.0, 0.0])}, {"w": jnp.array([0.0, 1.0, 0.0])}
    zigzag = {"w": jnp.array([[1.0, 0.0, 0.0], [0.8, 0.5, 0.3], [0.2, 0.3, -0.3], [0.0, 1.0, 0.0]])}
    result = shorten(quadratic, zigzag, 1.5)
    assert result.connected and result.length_before > 1.5 * math.sqrt(2)
    np.testing.assert_allclose(result.normalized_length, 1.0, atol=2e-3)
    np.testing.assert_allclose(bead(result.beads, 0)["w"], a["w"])
    np.testing.assert_allclose(bead(result.beads, -1)["w"], b["w"])


def test_an_uncertified_input_is_reported_not_hidden():
    quadratic = lambda p: jnp.sum(p["w"] ** 2)
    straight = interpolate_stack(
        {"w": jnp.array([2.0, 0.0])}, {"w": jnp.array([0.0, 0.1])}, jnp.linspace(0, 1, 3)
    )
    result = shorten(
        quadratic, straight, 1.0
    )  # an end lies above the level: nothing can certify it
    assert not result.connected and "not certified" in result.reason


def test_constant_and_linear_schedules_take_the_chord_in_a_convex_bowl():
    quadratic = lambda p: jnp.sum(p["w"] ** 2)
    a, b = {"w": jnp.array([1.0, 0.2])}, {"w": jnp.array([0.1, 0.4])}
    for schedule in (
        LevelSchedule.constant(float(quadratic(a))),
        LevelSchedule.linear(float(quadratic(a)), float(quadratic(b))),
    ):
        result = connect(quadratic, a, b, schedule.start, key=KEY, level_schedule=schedule)
        assert result.connected and result.num_beads == 2, (schedule, result.reason)


@pytest.mark.slow
def test_a_schedule_the_chord_breaks_gives_a_longer_path_that_keeps_it():
    rotation = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(3), (10, 10)))[0]
    loss = lambda p: jnp.sum(p["w"] ** 2)
    a = {"w": rotation @ jnp.zeros(10).at[0].set(1.0)}
    b = {"w": rotation @ jnp.zeros(10).at[0].set(0.2).at[1].set(0.6)}
    end = float(loss(b)) * (1 + 1e-6)  # slack: connect's jitted loss may round the end up by an ulp
    levels = np.maximum(end, 1 - 1.3 * np.linspace(0, 1, 65))
    schedule = LevelSchedule(tuple(float(x) for x in levels))
    chord = interpolated_losses(loss, a, b, jnp.linspace(0, 1, 65))
    assert np.any(np.asarray(chord) > levels + 1e-3)  # the chord breaks it in its middle
    result = connect(
        loss,
        a,
        b,
        1.0,
        key=KEY,
        level_schedule=schedule,
        optimizer=optax.sgd(0.1),
        max_steps=2000,
        max_depth=8,
        shorten=True,
    )
    assert result.connected, result.reason
    losses, fine_levels = fine_schedule_check(loss, result, schedule)
    assert np.all(losses <= fine_levels + 2e-3), float(np.max(losses - fine_levels))
    assert (
        float(path_length(result.beads)) > float(jnp.linalg.norm(b["w"] - a["w"])) * 1.001
    )  # not the chord


def test_a_schedule_by_index_keeps_each_point_below_its_own_level():
    loss = lambda p: jnp.sum(p["w"] ** 2)
    # a teacher that spirals in: point k at radius 1 - 0.1 k, so its level is (1 - 0.1 k)^2
    angles, radii = np.linspace(0, 1.2, 6), 1 - 0.1 * np.arange(6)
    teacher = {"w": jnp.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)}
    schedule = LevelSchedule.by_index(radii**2)
    result = shorten(loss, teacher, schedule, rounds=200, check_every=20)
    assert result.connected and result.num_beads == 6
    assert result.path_length < result.length_before  # shorter than the teacher's own path
    point_losses = np.asarray(jax.vmap(loss)(result.beads))
    assert np.all(point_losses <= radii**2 + 1e-6)


def test_paths_shortened_together_equal_each_shortened_alone():
    """Finished paths leave the batch (`Shortener._round`): each result is the path's own,
    as if shortened alone, up to float rounding (XLA's batched arithmetic can differ in the
    last bit between batch sizes)."""
    from geodesic_targets.options import ShortenOptions
    from geodesic_targets.shortening import Shortener

    shortener = Shortener(lambda p, _: disk_loss(p), ShortenOptions(num_points=9, rounds=40))
    ends = [(in_plane(1.2 * RADIUS, 0), in_plane(1.2 * RADIUS, d)) for d in (40, 90, 150)]
    ends.append((in_plane(1.5 * RADIUS, 10), in_plane(1.5 * RADIUS, 120)))
    paths = []
    for a, b in ends:  # a bent start, the chord pushed out past the disk, so there is work to do
        mid = jax.tree_util.tree_map(lambda x, y: 1.6 * (x + y) / 2, a, b)
        paths.append(interpolate_stack(a, mid, jnp.linspace(0, 1, 5)))
        paths[-1] = jax.tree_util.tree_map(
            lambda x, m, y: jnp.concatenate([x, jnp.linspace(m, y, 5)[1:]]), paths[-1], mid, b
        )
    schedules = [LevelSchedule.constant(LEVEL)] * len(paths)
    together = shortener.shorten_many(paths, schedules)
    rounds = [r.rounds for r in together]
    assert len(set(rounds)) > 1, rounds  # paths finished at different rounds
    for path, schedule, joint in zip(paths, schedules, together):
        alone = shortener.shorten(path, schedule)
        assert (alone.rounds, alone.converged) == (joint.rounds, joint.converged)
        np.testing.assert_allclose(joint.beads["w"], alone.beads["w"], rtol=1e-5, atol=1e-6)
