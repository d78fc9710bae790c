"""ES and PES inside meta-training: the meta-step applies the estimator's gradient, training resumes
exactly with the particles checkpointed, the budget counts both particles, configs are checked."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

import tasks
from meta_opt.options import LSTMOptimizer
from trainers.config import ConfigError, EstimatorOptions
from trainers.config.experiment import load_experiment
from trainers.config.sections import UnrollOptions
from trainers.core.estimators import PESState, init_particles, pes_gradient
from trainers.core.meta_seeds import inner_steps_per_meta_step
from trainers.core.meta_step import MetaObjective, MetaState, make_meta_step
from trainers.core.unroll import initial_states, unroll
from trainers.io.checkpoint import latest_checkpoint, load_checkpoint
from trainers.pipelines import train as meta_train

TINY = """\
name: tiny_pes
task: {name: quadratic}
meta_train:
  num_meta_steps: %(steps)d
  num_instances: 2
  unroll: {horizon: 4, unroll_length: 2}
  lstm: {hidden_sizes: [4]}
  checkpoint_every: 2
  validate_every: 0
  estimator: {name: pes, sigma: 0.05}
logging: {mode: disabled}
"""


def test_the_pes_meta_step_applies_the_pes_estimate():
    family = tasks.get_family("quadratic")
    learned, options = LSTMOptimizer(hidden_sizes=(4,)), UnrollOptions(horizon=4, unroll_length=2)
    meta_params = learned.init(jax.random.PRNGKey(0))
    inner = initial_states(family, learned, meta_params, jax.random.PRNGKey(1), 4, options)
    particles = init_particles(inner, meta_params)
    estimator = EstimatorOptions("pes", 0.05)
    step = jax.jit(
        make_meta_step(
            family, learned, options, MetaObjective(1.0, 0.0), optax.sgd(1.0), estimator=estimator
        )
    )
    state = MetaState(
        meta_params,
        optax.sgd(1.0).init(meta_params),
        particles,
        jax.random.PRNGKey(2),
        np.int32(0),
        np.int32(0),
    )
    new, metrics = step(state)
    new, metrics = step(new)  # the second step continues the first one's particles

    # the same two estimates, by hand from the same keys
    term = lambda mp, s: (lambda out: (out[0], out[1][0]))(unroll(family, learned, options, mp, s))
    expected_params, expected_particles, key = meta_params, particles, state.key
    estimate = jax.jit(
        lambda mp, particles, k: pes_gradient(
            term, lambda s: s.step >= options.horizon, mp, particles, k, sigma=0.05
        )
    )
    for _ in range(2):
        key, step_key = jax.random.split(key)
        estimate_key, _ = jax.random.split(step_key)
        grads, expected_particles, estimated = estimate(
            expected_params, expected_particles, estimate_key
        )
        expected_params = jax.tree_util.tree_map(lambda p, g: p - g, expected_params, grads)
    # L+ - L- is divided by 2 sigma^2 = 0.005: float32 rounding in the losses (~1e-7 relative) shows
    # up as ~1e-4 relative in the estimate when the two programs fuse differently
    close = lambda a, b: jax.tree_util.tree_map(
        lambda x, y: np.testing.assert_allclose(x, y, rtol=5e-4, atol=1e-4), a, b
    )
    close(new.meta_params, expected_params)
    close(new.inner.accumulated, expected_particles.accumulated)
    assert isinstance(new.inner, PESState)
    np.testing.assert_array_equal(new.inner.positive.step, expected_particles.positive.step)
    np.testing.assert_array_equal(new.inner.negative.step, expected_particles.negative.step)
    assert float(metrics["loss_term"]) == pytest.approx(float(estimated["loss"]), rel=1e-5)
    assert np.isfinite(float(metrics["inner_loss"])) and float(metrics["imitation_loss"]) == 0.0


@pytest.mark.slow
def test_pes_training_resumes_exactly_with_its_particles(tmp_path):
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(TINY % {"steps": 4})
    whole = meta_train.train(load_experiment(config_path), tmp_path / "whole", progress=False)
    config_path.write_text(TINY % {"steps": 2})
    meta_train.train(load_experiment(config_path), tmp_path / "split", progress=False)
    config_path.write_text(TINY % {"steps": 4})
    resumed = meta_train.train(
        load_experiment(config_path), tmp_path / "split", resume=True, progress=False
    )
    for a, b in zip(
        jax.tree_util.tree_leaves((whole.meta_params, whole.inner)),
        jax.tree_util.tree_leaves((resumed.meta_params, resumed.inner)),
    ):
        np.testing.assert_array_equal(
            np.asarray(
                jax.random.key_data(a) if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key) else a
            ),
            np.asarray(
                jax.random.key_data(b) if jax.dtypes.issubdtype(b.dtype, jax.dtypes.prng_key) else b
            ),
        )
    config = load_experiment(config_path)
    template = meta_train.initial_meta_state(config, tasks.get_family("quadratic"))
    stored, _ = load_checkpoint(latest_checkpoint(tmp_path / "whole"), template)
    assert isinstance(stored.inner, PESState) and int(stored.step) == 4
    assert any(
        np.any(np.asarray(x) != 0) for x in jax.tree_util.tree_leaves(stored.inner.accumulated)
    )


def test_antithetic_estimators_and_extra_tasks_count_in_the_budget(tmp_path):
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(TINY % {"steps": 1})
    pes = load_experiment(config_path).meta_train
    assert meta_train.unroll_steps_per_meta_step(pes) == 2 * 2 * 2  # particles x N x U
    truncated = load_experiment(
        config_path,
        ["meta_train.estimator.name=truncated", "meta_train.extra_tasks=[{name: poly_cubic}]"],
    ).meta_train
    assert meta_train.unroll_steps_per_meta_step(truncated) == 2 * 2 * 2  # tasks x N x U
    assert inner_steps_per_meta_step(160, 4, 20, True) == 160 + 4 * 20


def test_estimator_settings_are_checked_by_name(tmp_path):
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(TINY % {"steps": 1})
    assert load_experiment(config_path).meta_train.estimator == EstimatorOptions("pes", 0.05)
    with pytest.raises(ConfigError, match=r"meta_train\.estimator"):
        load_experiment(config_path, ["meta_train.estimator.name=reinforce"])
    with pytest.raises(ConfigError, match=r"meta_train\.estimator"):
        load_experiment(config_path, ["meta_train.estimator.sigma=0"])
