"""On-policy imitation: segments from the learned optimizer's own states, against hand-run loops."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tasks
from meta_opt import LSTMOptimizer
from meta_opt.inner_step import InnerCarry, init_carry, inner_step, task_objective
from trainers.config import load_experiment
from trainers.core.imitation import path_mismatch
from trainers.core.on_policy import OnPolicy, make_segment, on_policy_loss

KEY = jax.random.PRNGKey(5)
LEARNED = LSTMOptimizer(hidden_sizes=(6,))
TEACHER = optax.adam(0.05)


@pytest.fixture(scope="module")
def family():
    return tasks.get_family("quadratic", dim=4)


def run(objective, tx, carry, keys):
    """Hand-run steps, returning the carry and every iterate."""
    iterates = []
    for k in keys:
        carry, _ = inner_step(objective, tx, carry, k, differentiate_gradient=False)
        iterates.append(carry.params["theta"] if isinstance(carry.params, dict) else carry.params)
    return carry, iterates


def leaf(tree):
    (only,) = jax.tree_util.tree_leaves(tree)
    return np.asarray(only)


@pytest.mark.parametrize("path", ["teacher", "chord"])
def test_a_segment_starts_where_the_learner_is_and_follows_the_teacher(family, path):
    meta_params = LEARNED.init(KEY)
    options = OnPolicy(TEACHER, horizon=3, max_warmup=4, path=path)
    instance_key, key = jax.random.split(KEY)
    segment = make_segment(family, LEARNED, meta_params, options, instance_key, key)
    # by hand: the learner's first `warmup` steps from fresh params, then 3 teacher steps
    task = family.instance(instance_key)
    objective = task_objective(task)
    init_key, warm_key, _, teacher_key = jax.random.split(key, 4)
    tx = LEARNED.transformation(meta_params)
    warmup = int(segment.warmup)
    assert 0 <= warmup <= 4
    carry, _ = run(
        objective, tx, init_carry(tx, task.init(init_key)), jax.random.split(warm_key, 4)[:warmup]
    )
    np.testing.assert_allclose(leaf(segment.start), leaf(carry.params), rtol=1e-5, atol=1e-7)
    for got, want in zip(
        jax.tree_util.tree_leaves(segment.opt_state), jax.tree_util.tree_leaves(carry.opt_state)
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)  # the learner's own LSTM state
    _, teacher = run(
        objective, TEACHER, init_carry(TEACHER, carry.params), jax.random.split(teacher_key, 3)
    )
    teacher = np.stack([leaf(t) for t in teacher])
    if path == "teacher":
        np.testing.assert_allclose(leaf(segment.targets), teacher, rtol=1e-5, atol=1e-7)
    else:  # evenly on the segment from the start to the teacher's end
        start, end = leaf(segment.start), teacher[-1]
        expected = np.stack([start + f * (end - start) for f in (1 / 3, 2 / 3, 1.0)])
        np.testing.assert_allclose(leaf(segment.targets), expected, rtol=1e-5, atol=1e-6)


def test_warmups_cover_their_range(family):
    meta_params = LEARNED.init(KEY)
    options = OnPolicy(TEACHER, horizon=2, max_warmup=3)
    draws = jax.vmap(lambda k: make_segment(family, LEARNED, meta_params, options, KEY, k).warmup)(
        jax.random.split(KEY, 64)
    )
    assert set(np.asarray(draws).tolist()) == {0, 1, 2, 3}


def test_the_loss_scores_the_learner_continuing_from_its_own_state(family):
    meta_params = LEARNED.init(KEY)
    options = OnPolicy(TEACHER, horizon=3, max_warmup=2)
    instance_key, key = jax.random.split(KEY)
    loss = on_policy_loss(family, LEARNED, meta_params, options, instance_key, key)
    segment_key, run_key = jax.random.split(key)
    segment = make_segment(family, LEARNED, meta_params, options, instance_key, segment_key)
    objective = task_objective(family.instance(instance_key))
    _, trajectory = run(
        objective,
        LEARNED.transformation(meta_params),
        InnerCarry(segment.start, segment.opt_state),
        jax.random.split(run_key, 3),
    )
    expected = path_mismatch({"theta": jnp.stack(trajectory)}, segment.targets, segment.start)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    grads = jax.grad(lambda mp: on_policy_loss(family, LEARNED, mp, options, instance_key, key))(
        meta_params
    )
    flat = jax.flatten_util.ravel_pytree(grads)[0]
    assert np.all(np.isfinite(flat)) and np.any(flat != 0)


def test_the_on_policy_arm_takes_a_meta_step_and_counts_its_warmups(tmp_path):
    from trainers.config.experiment import build_family
    from trainers.core.meta_step import MetaObjective, make_meta_step
    from trainers.pipelines.ablation import Arm, arm_config, step_cost
    from trainers.pipelines.train import initial_meta_state, on_policy_for, outer_optimizer

    config = load_experiment(write_config(tmp_path), [])
    config = arm_config(config, Arm("on_policy", "on_policy", config.geodesics.baseline))
    options = on_policy_for(config)
    assert (options.horizon, options.max_warmup) == (5, 5)  # H = 10, T = 5
    assert step_cost(config) == 2 * 5 + 2 * (
        5 + 2 * 5
    )  # unrolls + 2 pairs x (warm-up + teacher + learner)
    family = build_family(config, training=True)
    train = config.meta_train
    step = jax.jit(
        make_meta_step(
            family,
            train.lstm,
            train.unroll,
            MetaObjective(1.0, 1.0, train.imitation_batch),
            outer_optimizer(config),
            None,
            options,
        )
    )
    state, metrics = step(initial_meta_state(config, family))
    assert np.isfinite(float(metrics["imitation_loss"])) and float(metrics["imitation_loss"]) > 0
    assert int(metrics["skipped_steps"]) == 0


def write_config(tmp_path):
    path = tmp_path / "on_policy.yaml"
    path.write_text("""\
name: on_policy
task: {name: quadratic, options: {dim: 4}}
geodesics:
  baseline: {name: adam, hparams: {learning_rate: 0.05}}
  targets: {num_instances: 1, num_steps: 10, horizon: 5}
meta_train:
  num_instances: 2
  unroll: {horizon: 10, unroll_length: 5}
  lstm: {hidden_sizes: [4]}
  imitation_batch: 2
ablation: {inner_step_budget: 400}
""")
    return path
