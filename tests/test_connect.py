"""Dynamic String Sampling on level sets whose topology and geodesics are known."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tasks
from geodesic_targets.beads import BeadTraining, project_to_bisector
from geodesic_targets.interpolation import barrier, grid, interpolated_losses
from geodesic_targets.sampler import ConnectOptions, StringSampler, connect

KEY = jax.random.PRNGKey(0)


def ring_loss(params):
    """(||theta|| - 1)^2: the sublevel set {<= lam} is an annulus around the unit circle."""
    return (jnp.sqrt(jnp.sum(params["x"] ** 2) + 1e-12) - 1.0) ** 2


def double_well(params):
    """(x^2 - 1)^2 + y^2: below 0.1 the sublevel set is two disjoint blobs around (+-1, 0)."""
    x, y = params["x"]
    return (x**2 - 1) ** 2 + y**2


def point(*xs):
    return {"x": jnp.array(xs, jnp.float32)}


def on_circle(degrees):
    angle = np.deg2rad(degrees)
    return point(np.cos(angle), np.sin(angle))


def assert_certified(result, loss_fn, num_grid=33):
    """Recomputes every segment's barrier independently of the search."""
    beads = [
        jax.tree_util.tree_map(lambda x, i=i: x[i], result.beads) for i in range(result.num_beads)
    ]
    maxima = [float(barrier(loss_fn, a, b, grid(num_grid))[0]) for a, b in zip(beads, beads[1:])]
    assert max(maxima) <= result.threshold
    np.testing.assert_allclose(maxima, result.segment_max_losses, rtol=1e-4)


def test_interpolated_losses_of_a_quadratic():
    f = lambda p: jnp.sum(p["x"] ** 2)
    losses = interpolated_losses(f, point(-1.0, 0.0), point(1.0, 2.0), grid(5))
    t = np.linspace(0, 1, 5)
    np.testing.assert_allclose(losses, (2 * t - 1) ** 2 + (2 * t) ** 2, rtol=1e-6)
    peak, at = barrier(double_well, point(-1.0, 0.0), point(1.0, 0.0), grid(33))
    np.testing.assert_allclose([peak, at], [1.0, 0.5], rtol=1e-6)


def test_convex_loss_connects_without_beads():
    f = lambda p: jnp.sum((p["x"] - 1.0) ** 2)
    result = connect(f, point(0.5, 1.0, 1.5), point(1.5, 0.8, 1.2), threshold=0.5, key=KEY)
    assert result.connected and result.num_beads == 2 and result.depth == 0
    np.testing.assert_allclose(result.normalized_length, 1.0, rtol=1e-6)
    assert_certified(result, f)


def test_disconnected_sublevel_set_is_reported_within_budget():
    # Asymmetric ends: the loss maximum is off the saddle at the origin, so beads train.
    result = connect(
        double_well,
        point(-0.95, 0.05),
        point(1.02, -0.1),
        threshold=0.1,
        key=KEY,
        max_depth=4,
        max_steps=300,
    )
    assert not result.connected
    assert "budget" in result.reason and result.depth <= 4
    assert result.max_interpolated_loss > 0.1


@pytest.mark.parametrize("method", ["greedy", "constrained"])
def test_curved_level_set_gives_the_arc_length(method):
    threshold = 1e-4  # the annulus has half-width 0.01, so every path in it is nearly the arc
    result = connect(
        ring_loss,
        on_circle(0),
        on_circle(150),
        threshold,
        key=KEY,
        method=method,
        optimizer=optax.sgd(0.2),
        max_depth=8,
        max_steps=2000,
    )
    assert result.connected, result.reason
    assert_certified(result, ring_loss)
    arc_over_chord = np.deg2rad(150) / (2 * np.sin(np.deg2rad(75)))
    np.testing.assert_allclose(result.normalized_length, arc_over_chord, rtol=0.03)
    assert result.num_beads > 5


def test_independently_trained_deep_linear_networks_are_connected():
    task = tasks.get_task("deep_linear", seed=0, noise_std=0.1)
    train = jax.jit(
        lambda p: optax.apply_updates(
            p, jax.tree_util.tree_map(lambda g: -0.05 * g, jax.grad(task.eval_loss)(p))
        )
    )
    ends = []
    for seed in (1, 2):
        params = task.init(jax.random.PRNGKey(seed))
        for _ in range(1000):
            params = train(params)
        ends.append(params)
    losses = [float(task.eval_loss(p)) for p in ends]
    threshold = 1.2 * max(losses)
    # Plain descent: Adam's sign-like steps drift along the network's flat rescaling
    # directions and lengthen the chain without bound at this tight threshold.
    result = connect(
        task.eval_loss,
        ends[0],
        ends[1],
        threshold,
        key=KEY,
        max_depth=10,
        optimizer=optax.sgd(0.05),
        max_steps=3000,
    )
    assert result.connected, result.reason
    assert_certified(result, task.eval_loss)
    assert result.normalized_length >= 1.0


def test_batched_bead_training_equals_one_at_a_time():
    options = dict(optimizer=optax.sgd(0.2), max_depth=3, max_steps=2000)
    batched = connect(ring_loss, on_circle(0), on_circle(150), 1e-4, key=KEY, **options)
    single = connect(
        ring_loss, on_circle(0), on_circle(150), 1e-4, key=KEY, batched=False, **options
    )
    assert batched.num_beads == single.num_beads and batched.num_beads >= 5
    np.testing.assert_allclose(batched.beads["x"], single.beads["x"], rtol=1e-5, atol=1e-6)


def test_constrained_bead_stays_on_the_bisector_and_reaches_the_target():
    left, right = on_circle(0), on_circle(100)
    training = BeadTraining(
        lambda p, _: ring_loss(p), optax.sgd(0.2), max_steps=2000, method="constrained"
    )
    bead, loss, steps = training.train_one(point(0.3, 0.1), left, right, KEY, jnp.float32(1e-4))
    distance = lambda a, b: float(jnp.linalg.norm(a["x"] - b["x"]))
    np.testing.assert_allclose(distance(bead, left), distance(bead, right), rtol=1e-5)
    assert float(loss) <= 1e-4 and 0 < int(steps) < 2000
    projected = project_to_bisector(point(3.0, -2.0), left, right)
    np.testing.assert_allclose(distance(projected, left), distance(projected, right), rtol=1e-6)


def test_bead_that_cannot_be_trained_stops_the_search():
    result = connect(
        double_well,
        point(-1.0, 0.0),
        point(1.0, 0.0),
        threshold=0.1,
        key=KEY,
        optimizer=optax.sgd(1e-4),
        max_steps=5,
    )
    assert not result.connected and "above the threshold" in result.reason


def test_end_above_threshold_is_not_connected():
    result = connect(double_well, point(0.0, 0.0), point(1.0, 0.0), threshold=0.1, key=KEY)
    assert not result.connected and "end" in result.reason and result.num_beads == 2


def test_sampler_reuses_compiled_functions_across_pairs_and_contexts():
    traces = []

    def scaled_ring(params, radius):  # context: the ring's radius
        traces.append(1)
        return (jnp.sqrt(jnp.sum(params["x"] ** 2) + 1e-12) - radius) ** 2

    sampler = StringSampler(scaled_ring, optax.sgd(0.2), ConnectOptions(max_steps=2000))
    first = sampler.connect(on_circle(0), on_circle(120), 1e-4, key=KEY, context=jnp.float32(1.0))
    compiled = len(traces)
    twice = lambda p: {"x": 2 * p["x"]}
    second = sampler.connect(
        twice(on_circle(10)), twice(on_circle(130)), 4e-4, key=KEY, context=jnp.float32(2.0)
    )
    assert first.connected and second.connected
    np.testing.assert_allclose(first.normalized_length, second.normalized_length, rtol=0.02)
    assert len(traces) == compiled  # nothing was traced again


def test_minibatch_bead_training_is_still_certified_by_the_deterministic_loss():
    calls = []

    def noisy_ring(params, key):  # an unbiased noisy gradient of the ring loss
        calls.append(1)
        noise = 0.05 * jax.random.normal(key, params["x"].shape)
        return ring_loss(params) + jnp.sum(noise * params["x"])

    result = connect(
        ring_loss,
        on_circle(0),
        on_circle(120),
        1e-3,
        key=KEY,
        train_loss_fn=noisy_ring,
        optimizer=optax.sgd(0.1),
        max_depth=8,
        max_steps=3000,
    )
    assert calls, "the minibatch loss was not used"
    assert result.connected, result.reason
    assert_certified(result, ring_loss)
