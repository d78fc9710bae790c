"""Level schedules as a user passes them: numbers, sequences, arrays, callables; ends judged with a slack."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from geodesic_targets import LevelSchedule, connect

KEY = jax.random.PRNGKey(0)


def bowl(params):
    return jnp.sum(params["w"] ** 2)


A, B = {"w": jnp.array([1.0, 0.0, 0.0])}, {"w": jnp.array([0.3, 0.5, 0.0])}


@pytest.mark.parametrize("form", ["schedule", "list", "tuple", "numpy", "jax", "callable"])
def test_every_form_of_a_schedule_gives_the_same_levels_and_path(form):
    start, end = float(bowl(A)), float(bowl(B))
    levels = [start, 0.5 * (start + end), end]
    given = {
        "schedule": LevelSchedule(tuple(levels)),
        "list": levels,
        "tuple": tuple(levels),
        "numpy": np.asarray(levels),
        "jax": jnp.asarray(levels, jnp.float32),
        "callable": lambda s: start + (end - start) * s,
    }[form]
    schedule = LevelSchedule.of(given)
    fractions = np.linspace(0, 1, len(schedule.levels))
    np.testing.assert_allclose(
        schedule.levels, np.interp(fractions, [0, 0.5, 1], levels), rtol=1e-6
    )
    result = connect(bowl, A, B, start, key=KEY, level_schedule=given)
    assert result.connected, result.reason
    assert result.num_beads == 2  # the bowl's chord keeps a linear schedule: no bead


def test_a_number_and_a_zero_dimensional_array_are_constant_schedules():
    assert (
        LevelSchedule.of(0.5)
        == LevelSchedule.of(np.float32(0.5))
        == LevelSchedule.of(np.asarray(0.5))
    )
    assert LevelSchedule.of(0.5) == LevelSchedule.constant(0.5)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("0.5", "got str"),
        ([0.5], "at least two"),
        ([0.5, float("nan")], "finite"),
        (lambda s: "x", "numeric"),
    ],
)
def test_a_schedule_that_is_none_of_these_is_named(bad, message):
    with pytest.raises((TypeError, ValueError), match=message):
        LevelSchedule.of(bad)


def an_end_just_above(level: float) -> dict:
    """A point whose float32 loss lies a few float32 steps above `level`."""
    for scale in 1 + np.arange(1, 200) * 1e-8:
        point = {"w": jnp.array([np.sqrt(level) * scale, 0.0, 0.0], jnp.float32)}
        loss = float(bowl(point))
        if level < loss <= level * (1 + 1e-6):
            return point
    raise AssertionError("no float32 point just above the level")


def test_ends_a_rounding_above_a_hand_written_schedule_are_accepted():
    end = an_end_just_above(0.4)
    assert float(bowl(end)) > 0.4
    result = connect(bowl, A, end, 1.0, key=KEY, level_schedule=[1.0, 0.4])
    assert result.connected, result.reason


def test_an_end_further_above_is_refused_with_enough_digits_to_see_why():
    end = {"w": jnp.array([np.sqrt(0.4) * 1.01, 0.0, 0.0])}
    result = connect(bowl, A, end, 1.0, key=KEY, level_schedule=[1.0, 0.4])
    assert not result.connected
    assert (
        "an end lies above the threshold" in result.reason
        and f"{float(bowl(end)):.9g}" in result.reason
    )
    assert "0.02 above" in result.reason
