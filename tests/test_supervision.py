"""Supervision arms: each arm's targets, the endpoint weighting, and the arm's config mapping."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tasks
from geodesic_targets.options import ConnectOptions, ShortenOptions, TargetOptions
from geodesic_targets.targets import generate_targets
from geodesic_targets.teacher import run_teacher
from trainers.config import ConfigError, ExperimentConfig, MetaTrainConfig, load_experiment
from trainers.config.supervision import endpoint_only, with_supervision
from trainers.core.imitation import endpoint_weights, path_mismatch

KEY = jax.random.PRNGKey(3)
OPTIONS = dict(num_instances=2, num_steps=12, horizon=4)
FAST = ConnectOptions(
    max_steps=300, shortening=ShortenOptions(num_points=9, rounds=40, check_every=20)
)


@pytest.fixture(scope="module")
def family():
    return tasks.get_family("quadratic", dim=5)


@pytest.fixture(scope="module")
def runs(family):
    """The teacher runs `generate_targets` makes from KEY (its first split)."""
    return run_teacher(family, optax.adam(0.05), TargetOptions(**OPTIONS), jax.random.split(KEY)[0])


def leaf(tree):
    """The quadratic's one parameter array."""
    (only,) = jax.tree_util.tree_leaves(tree)
    return np.asarray(only)


def make(family, path):
    return generate_targets(
        family, TargetOptions(**OPTIONS, path=path), FAST, key=KEY, baseline=optax.adam(0.05)
    )


def pair_of(runs, target_set, pair):
    i = int(np.flatnonzero((runs.instance_keys == target_set.instance_keys[pair]).all(1))[0])
    return runs.pair(i, int(target_set.start_steps[pair]), OPTIONS["horizon"])


def test_teacher_targets_are_the_teachers_iterates(family, runs):
    target_set = make(family, "teacher")
    assert (
        target_set.path == "teacher"
        and len(target_set.levels) > 0
        and target_set.num_uncertified == 0
    )
    assert (
        len(target_set.levels) + target_set.num_not_descending == 6
    )  # every descending pair is kept
    for pair in range(len(target_set.levels)):
        path, losses = pair_of(runs, target_set, pair)
        np.testing.assert_allclose(
            leaf(target_set.targets)[pair], leaf(path)[1:], rtol=1e-6, atol=1e-7
        )
        np.testing.assert_allclose(leaf(target_set.start_params)[pair], leaf(path)[0], rtol=1e-6)
        steps = np.linalg.norm(np.diff(leaf(path), axis=0), axis=1).sum()
        chord = np.linalg.norm(leaf(path)[-1] - leaf(path)[0])
        assert target_set.normalized_lengths[pair] == pytest.approx(steps / chord, rel=1e-5)


def test_chord_targets_lie_evenly_on_the_segment(family, runs):
    target_set = make(family, "chord")
    assert target_set.path == "chord" and np.all(
        target_set.normalized_lengths == pytest.approx(1.0)
    )
    for pair in range(len(target_set.levels)):
        path, _ = pair_of(runs, target_set, pair)
        start, end = leaf(path)[0], leaf(path)[-1]
        expected = start + np.arange(1, 5)[:, None] / 4 * (end - start)
        np.testing.assert_allclose(leaf(target_set.targets)[pair], expected, rtol=1e-5, atol=1e-6)
    assert np.all(target_set.chord_deviations < 1e-6)


def test_unsearched_paths_take_no_level_schedule():
    with pytest.raises(ValueError, match="takes no level schedule"):
        TargetOptions(path="chord", schedule="teacher")


def test_endpoint_weights_score_only_the_last_point():
    rng = np.random.default_rng(0)
    start = {"x": jnp.asarray(rng.normal(size=3))}
    targets = {"x": jnp.asarray(rng.normal(size=(4, 3)))}
    trajectory = {"x": jnp.asarray(rng.normal(size=(4, 3)))}
    weights = endpoint_weights(4)
    np.testing.assert_array_equal(weights, [0, 0, 0, 1])
    got = path_mismatch(trajectory, targets, start, weights)
    end = targets["x"][-1]
    expected = np.sum((trajectory["x"][-1] - end) ** 2) / np.sum((end - start["x"]) ** 2)
    assert float(got) == pytest.approx(float(expected), rel=1e-5)
    moved = {"x": targets["x"].at[:3].add(5.0)}  # the intermediate points do not matter
    assert float(path_mismatch(trajectory, moved, start, weights)) == pytest.approx(
        float(got), rel=1e-6
    )
    # equal weights: the plain mean, over standing still's plain mean
    plain = np.mean(np.sum((trajectory["x"] - targets["x"]) ** 2, axis=1)) / np.mean(
        np.sum((targets["x"] - start["x"]) ** 2, axis=1)
    )
    assert float(path_mismatch(trajectory, targets, start, jnp.ones(4))) == pytest.approx(
        float(plain), rel=1e-5
    )


@pytest.mark.parametrize(
    "arm, path, schedule, shorten",
    [
        ("teacher", "teacher", "constant", False),
        ("endpoint", "teacher", "constant", False),
        ("chord", "chord", "constant", False),
        ("geodesic", "level_set", "constant", True),
        ("geodesic_schedule", "level_set", "teacher", True),
    ],
)
def test_each_arm_sets_the_target_section(arm, path, schedule, shorten):
    config = ExperimentConfig(
        name="x", meta_train=MetaTrainConfig(imitation_weight=1.0, supervision=arm)
    )
    resolved = with_supervision(config)
    targets, connect = resolved.geodesics.targets, resolved.geodesics.connect
    assert (targets.path, targets.schedule, connect.shorten) == (path, schedule, shorten)
    assert endpoint_only(config) == (arm == "endpoint")
    assert resolved.meta_train == config.meta_train and resolved.task == config.task


def test_no_arm_and_the_none_arm_leave_the_config_as_it_is():
    plain = ExperimentConfig(name="x", meta_train=MetaTrainConfig(imitation_weight=1.0))
    assert with_supervision(plain) is plain
    none = ExperimentConfig(
        name="x", meta_train=MetaTrainConfig(imitation_weight=0.0, supervision="none")
    )
    assert with_supervision(none) is none


def test_an_arm_that_contradicts_the_imitation_weight_is_a_config_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: x\nmeta_train:\n  supervision: chord\n"
    )  # imitation_weight defaults to 0
    with pytest.raises(ConfigError, match="imitation_weight"):
        load_experiment(path)
    with pytest.raises(ConfigError, match="supervision"):
        load_experiment(path, ["meta_train.supervision=geodesics", "meta_train.imitation_weight=1"])
    with pytest.raises(
        ConfigError, match="without imitation \\('none'\\) needs imitation_weight 0"
    ):
        load_experiment(path, ["meta_train.supervision=none", "meta_train.imitation_weight=1"])


def test_training_refuses_a_target_set_made_for_another_arm(family, tmp_path):
    from trainers.config import TaskConfig
    from trainers.errors import RunError
    from trainers.pipelines.train import load_targets

    make(family, "teacher").save(tmp_path / "teacher.npz")
    train = MetaTrainConfig(
        imitation_weight=1.0, supervision="chord", targets=str(tmp_path / "teacher.npz")
    )
    config = ExperimentConfig(name="x", task=TaskConfig("quadratic", {"dim": 5}), meta_train=train)
    with pytest.raises(RunError, match="needs targets on a chord path"):
        load_targets(config, family, tmp_path)
    endpoint = dataclasses.replace(
        config, meta_train=dataclasses.replace(train, supervision="endpoint")
    )
    targets = load_targets(endpoint, family, tmp_path)  # a teacher set serves the endpoint arm
    np.testing.assert_array_equal(targets.weights, [0, 0, 0, 1])
    teacher = dataclasses.replace(
        config, meta_train=dataclasses.replace(train, supervision="teacher")
    )
    np.testing.assert_array_equal(load_targets(teacher, family, tmp_path).weights, [1, 1, 1, 1])


def test_the_arms_table_answers_every_question_a_pipeline_asks():
    from trainers.config.arms import ARMS
    from trainers.config.supervision import makes_on_policy_segments, uses_stored_targets

    for name, arm in ARMS.items():
        weight = 1.0 if arm.imitates else 0.0
        config = ExperimentConfig(
            name="x", meta_train=MetaTrainConfig(imitation_weight=weight, supervision=name)
        )
        assert uses_stored_targets(config) == (arm.imitates and arm.path is not None), name
        assert makes_on_policy_segments(config) == (name == "on_policy"), name
        assert endpoint_only(config) == (name == "endpoint"), name
        assert with_supervision(with_supervision(config)) == with_supervision(config)  # idempotent
    assert [a for a, arm in ARMS.items() if not arm.imitates] == ["none"]


@pytest.mark.slow
def test_the_saved_config_of_a_run_reproduces_its_targets_bit_for_bit(tmp_path):
    """The config.yaml of `meta-opt train` carries the arm's target settings, so it makes them."""
    from geodesic_targets.targets import TargetSet
    from trainers.commands import cli
    from trainers.pipelines.geodesics import make_targets

    path = tmp_path / "tiny.yaml"
    path.write_text(
        "name: tiny\ntask: {name: quadratic, options: {dim: 5}}\n"
        "geodesics:\n  targets: {num_instances: 2, num_steps: 8, horizon: 4}\n"
        "meta_train:\n  supervision: chord\n  imitation_weight: 1.0\n  num_meta_steps: 1\n"
        "  num_instances: 2\n  unroll: {horizon: 4, unroll_length: 2}\n  lstm: {hidden_sizes: [4]}\n"
        "  validate_every: 0\nlogging: {mode: disabled}\n"
    )
    run = tmp_path / "run"
    assert cli.main(["train", "--config", str(path), "--out", str(run), "--no-progress"]) == 0
    saved = load_experiment(run / "config.yaml")
    assert (saved.geodesics.targets.path, saved.geodesics.targets.schedule) == ("chord", "constant")
    stored, remade = TargetSet.load(run / "targets.npz"), make_targets(saved, progress=False)
    assert stored.path == remade.path == "chord"
    for a, b in zip(
        jax.tree_util.tree_leaves(stored.targets), jax.tree_util.tree_leaves(remade.targets)
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(stored.levels, remade.levels)
