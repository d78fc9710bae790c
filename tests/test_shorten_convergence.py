"""Converged shortening against an independently computed minimizer, and its energy step by hand.

The known-answer problem (issue 22): an isotropic bowl F = |theta|^2 in a rotated
12-dimensional space, a wiggly "teacher" path of T + 1 points from F = 1 to F = 0.3, off
the line through the first end and the origin, and one level per point: the path's
best-so-far loss floored at the end's loss. Every level set is a ball, so the problem
(minimum path energy with point k in the ball of level k) is convex; the reference is
FISTA with exact projections onto the balls, in float64, run until the energy stops moving.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from geodesic_targets import LevelSchedule, shorten
from geodesic_targets.midpoint_relaxation import midpoint_relaxation
from geodesic_targets.options import ShortenOptions
from geodesic_targets.path_energy import chord_points, energy_step, green_matrix
from geodesic_targets.paths import path_length
from geodesic_targets.shortening_progress import Progress, record_round

DIM = 12


def bowl_teacher(horizon: int, seed: int = 0) -> np.ndarray:
    """An Adam-like path [T + 1, DIM]: fast descent, a turn, and wiggles out of the plane."""
    rotation = np.linalg.qr(np.random.default_rng(seed).normal(size=(DIM, DIM)))[0]
    start, end_direction = rotation[:, 0], 0.5 * rotation[:, 0] + 0.7 * rotation[:, 1]
    end_direction /= np.linalg.norm(end_direction)
    s = np.linspace(0, 1, horizon + 1)
    normal = end_direction - (end_direction @ start) * start
    normal /= np.linalg.norm(normal)
    angle = np.arccos(end_direction @ start) * s**0.7
    radius = np.sqrt(0.3) + (1 - np.sqrt(0.3)) * np.exp(-6 * s)
    wiggle = (
        0.25 * np.sin(3 * np.pi * s)[:, None] * rotation[:, 2]
        + 0.15 * np.sin(7 * np.pi * s)[:, None] * rotation[:, 3]
        + 0.1 * np.sin(13 * np.pi * s)[:, None] * rotation[:, 4]
    ) * np.sqrt(s * (1 - s))[:, None]
    path = (
        radius[:, None] * (np.cos(angle)[:, None] * start + np.sin(angle)[:, None] * normal)
        + wiggle
    )
    path[0], path[-1] = start, np.sqrt(0.3) * end_direction
    return path


def floored_levels(path: np.ndarray) -> np.ndarray:
    losses = np.sum(path**2, axis=1)
    return np.maximum(np.minimum.accumulate(losses), losses[-1]) * (1 + 1e-5)


def reference_minimizer(
    path: np.ndarray, levels: np.ndarray, max_iterations: int = 400_000
) -> np.ndarray:
    """min 1/2 sum |p_{i+1} - p_i|^2 with |p_i|^2 <= levels_i (ends fixed): FISTA, exact projections."""
    radii = np.sqrt(levels[1:-1])

    def project(x):
        norms = np.linalg.norm(x[1:-1], axis=1)
        x[1:-1] *= np.minimum(1.0, radii / norms)[:, None]
        return x

    energy = lambda x: 0.5 * np.sum(np.diff(x, axis=0) ** 2)
    x = project(path.astype(np.float64).copy())
    y, momentum, previous = x.copy(), 1.0, np.inf
    for iteration in range(max_iterations):
        gradient = np.zeros_like(y)
        gradient[1:-1] = 2 * y[1:-1] - y[:-2] - y[2:]
        x_next = project(y - 0.25 * gradient)  # 1 / the Laplacian's largest eigenvalue (< 4)
        momentum_next = (1 + np.sqrt(1 + 4 * momentum**2)) / 2
        y = x_next + (momentum - 1) / momentum_next * (x_next - x)
        x, momentum = x_next, momentum_next
        if iteration % 2000 == 1999:
            if abs(previous - energy(x)) < 1e-15:
                break
            previous = energy(x)
    return x


def length_of(points: np.ndarray) -> float:
    return float(np.sum(np.linalg.norm(np.diff(points, axis=0), axis=1)))


def bowl_loss(params):
    return jnp.sum(params["w"] ** 2)


@pytest.mark.parametrize("horizon", [20, 100])
def test_shortening_converges_to_the_reference_minimizer_of_a_convex_problem(horizon):
    teacher = bowl_teacher(horizon)
    levels = floored_levels(teacher)
    chord = np.linalg.norm(teacher[-1] - teacher[0])
    assert length_of(teacher) > 2 * chord  # the teacher wanders: twice the chord's length
    reference = length_of(reference_minimizer(teacher, levels))
    result = shorten(
        bowl_loss,
        {"w": jnp.asarray(teacher, jnp.float32)},
        LevelSchedule.by_index(levels),
        alpha=0.999,
    )
    assert result.connected and result.converged, result.reason
    assert result.rounds < 40 and result.criterion <= 1e-5
    point_losses = np.sum(np.asarray(result.beads["w"], np.float64) ** 2, axis=1)
    assert np.all(point_losses <= levels * (1 + 1e-5)), float(np.max(point_losses / levels - 1))
    assert result.residual <= 0
    np.testing.assert_allclose(result.path_length, reference, rtol=0.01)
    assert reference > 1.02 * chord  # the levels bend it: the chord would break them


def test_with_alpha_the_result_is_the_reference_for_alpha_times_the_levels():
    teacher = bowl_teacher(100)
    levels = floored_levels(teacher)
    reference = length_of(reference_minimizer(teacher, 0.97 * levels))
    result = shorten(
        bowl_loss,
        {"w": jnp.asarray(teacher, jnp.float32)},
        LevelSchedule.by_index(levels),
        alpha=0.97,
    )
    assert result.converged
    np.testing.assert_allclose(result.path_length, reference, rtol=1e-3)


def test_the_former_fixed_rounds_smoother_fails_the_known_answer_at_t_100():
    teacher = bowl_teacher(100)
    levels = floored_levels(teacher)
    reference = length_of(reference_minimizer(teacher, levels))
    smoothed = midpoint_relaxation(
        bowl_loss,
        {"w": jnp.asarray(teacher, jnp.float32)},
        jnp.asarray(levels),
        rounds=200,
        alpha=0.999,
    )
    assert (
        float(path_length(smoothed)) > 1.05 * reference
    )  # 200 Jacobi rounds: a smoothed path, not a shortest one


def test_green_matrix_inverts_the_discrete_laplacian():
    for m in (1, 2, 7, 40):
        laplacian = 2 * np.eye(m) - np.eye(m, k=1) - np.eye(m, k=-1)
        np.testing.assert_allclose(green_matrix(m) @ laplacian, np.eye(m), atol=1e-10)


def test_energy_step_with_a_linear_loss_is_the_exact_constrained_minimizer():
    """F(q) = w . q with one binding point: the chord minus a tent, the point exactly on its level."""
    rng = np.random.default_rng(1)
    n, dim, binding = 9, 5, 3
    path = rng.normal(size=(n, dim))
    w = rng.normal(size=dim)
    chord = chord_points(path[0], path[-1], n)
    targets = chord[1:-1] @ w + 10.0  # every point free ...
    targets[binding - 1] = chord[binding] @ w - 0.7  # ... but one, which the chord misses by 0.7
    values = path[1:-1] @ w
    grads = np.tile(w, (n - 2, 1))
    interior, mu = energy_step(path, values, grads, targets)
    np.testing.assert_allclose(interior[binding - 1] @ w, targets[binding - 1], atol=1e-9)
    kernel = green_matrix(n - 2)
    expected = chord[1:-1] - np.outer(kernel[:, binding - 1], w) * 0.7 / (
        kernel[binding - 1, binding - 1] * w @ w
    )
    np.testing.assert_allclose(interior, expected, atol=1e-9)
    assert np.count_nonzero(mu > 1e-12) == 1


def test_energy_step_returns_the_chord_when_it_meets_every_level():
    path = np.random.default_rng(2).normal(size=(6, 3))
    chord = chord_points(path[0], path[-1], 6)
    interior, mu = energy_step(path, np.zeros(4), np.ones((4, 3)), np.ones(4) * 100)
    np.testing.assert_allclose(interior, chord[1:-1])
    assert np.all(mu == 0)


@pytest.mark.parametrize("floor", [1 / 16, 1 / 1024])
def test_an_oscillating_length_halves_the_step_down_to_the_configured_floor(floor):
    options = ShortenOptions(min_damping=floor, tolerance=1e-5, window=3)
    progress = Progress([1.0])
    for round_index in range(30):  # the length alternates: every round changes the sign
        record_round(progress, 1.0 + 1e-3 * (round_index % 2), -1.0, options)
    assert progress.damping == floor
    assert not progress.converged  # a cycle of 1e-3 is far above the tolerance
    steady = Progress([1.0])
    for _ in range(5):  # a length that only falls never changes sign: the step stays whole
        record_round(steady, steady.lengths[-1] - 1e-3, -1.0, options)
    assert steady.damping == 1.0


def test_min_damping_outside_zero_to_one_is_refused():
    for bad in (0.0, -0.5, 2.0):
        with pytest.raises(ValueError, match="min_damping"):
            ShortenOptions(min_damping=bad)
