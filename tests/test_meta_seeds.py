"""K meta-seeds in one vmapped call equal K separate meta-training runs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tasks
from meta_opt.hierarchical_config import HierarchicalConfig
from meta_opt.options import LSTMOptimizer
from trainers.config import ExperimentConfig, MetaTrainConfig, TaskConfig, UnrollOptions
from trainers.core.meta_seeds import (
    inner_steps_per_meta_step,
    seeds_step,
    seeds_step_with_targets,
    stack_states,
    unstack_state,
)
from trainers.core.meta_step import MetaObjective, Targets, make_meta_step
from trainers.pipelines.train import initial_meta_state, outer_optimizer

STEPS = 3


ARCHITECTURES = {
    "lstm_v1": LSTMOptimizer(hidden_sizes=(4,)),
    "hierarchical": HierarchicalConfig(lstm_hidden=4, num_mlps=2),
}


def tiny_config(seed: int, kind: str = "lstm_v1") -> ExperimentConfig:
    train = MetaTrainConfig(
        num_instances=2,
        unroll=UnrollOptions(horizon=6, unroll_length=3),
        lstm=ARCHITECTURES[kind],
        imitation_weight=1.0,
        imitation_batch=2,
    )
    return ExperimentConfig(
        name="tiny", seed=seed, task=TaskConfig("quadratic", {"dim": 4}), meta_train=train
    )


def hand_targets(family, seed: int = 0) -> Targets:
    """Three pairs with random starts and 3 target points each (imitation needs no real path here)."""
    rng = np.random.default_rng(seed)
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    start = jax.vmap(lambda k: family.instance(k).init(jax.random.fold_in(k, 1)))(keys)
    points = jax.tree_util.tree_map(
        lambda x: jnp.asarray(np.asarray(x)[:, None] * rng.uniform(0.2, 0.9, (3, 3, 1)), x.dtype),
        start,
    )
    return Targets(start, points, keys, jnp.ones(3))


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def setting(request):
    configs = [tiny_config(seed, request.param) for seed in (0, 7)]
    family = tasks.get_family("quadratic", dim=4)
    train = configs[0].meta_train
    meta_step = make_meta_step(
        family,
        train.lstm,
        train.unroll,
        MetaObjective(1.0, 1.0, 2),
        outer_optimizer(configs[0]),
        hand_targets(family),
    )
    return configs, family, meta_step


def test_vmapped_meta_seeds_equal_separate_runs(setting):
    configs, family, meta_step = setting
    separate_step = jax.jit(meta_step)
    separate, separate_metrics = [], []
    for config in configs:
        state = initial_meta_state(config, family)
        for _ in range(STEPS):
            state, metrics = separate_step(state)
        separate.append(state)
        separate_metrics.append(metrics)
    stacked = stack_states([initial_meta_state(c, family) for c in configs])
    together = jax.jit(seeds_step(meta_step))
    for _ in range(STEPS):
        stacked, metrics = together(stacked)
    for index, state in enumerate(separate):
        mine = unstack_state(stacked, index)
        for a, b in zip(jax.tree_util.tree_leaves(mine), jax.tree_util.tree_leaves(state)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)
        for name, value in separate_metrics[index].items():
            assert float(metrics[name][index]) == pytest.approx(float(value), rel=2e-5, abs=1e-6), (
                name
            )
    # the seeds really are different runs
    assert not np.allclose(metrics["meta_loss"][0], metrics["meta_loss"][1])


def test_each_meta_seed_follows_its_own_targets():
    """Stacked target sets: run k of the vmapped step equals a run of seed k on set k alone."""
    configs = [tiny_config(seed) for seed in (0, 7)]
    family = tasks.get_family("quadratic", dim=4)
    train = configs[0].meta_train
    build = lambda targets: make_meta_step(
        family,
        train.lstm,
        train.unroll,
        MetaObjective(1.0, 1.0, 2),
        outer_optimizer(configs[0]),
        targets,
    )
    own = [hand_targets(family, seed) for seed in (1, 2)]
    together = jax.jit(seeds_step_with_targets(build))
    stacked, metrics = together(
        stack_states([initial_meta_state(c, family) for c in configs]), stack_states(own)
    )
    for index, (config, targets) in enumerate(zip(configs, own)):
        state, alone = jax.jit(build(targets))(initial_meta_state(config, family))
        np.testing.assert_allclose(
            metrics["imitation_loss"][index], alone["imitation_loss"], rtol=2e-5
        )
        for a, b in zip(
            jax.tree_util.tree_leaves(unstack_state(stacked, index)),
            jax.tree_util.tree_leaves(state),
        ):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)
    # and with the other seed's set, seed 0's imitation loss differs
    _, swapped = jax.jit(build(own[1]))(initial_meta_state(configs[0], family))
    assert not np.isclose(float(swapped["imitation_loss"]), float(metrics["imitation_loss"][0]))


def test_stack_and_unstack_round_trip(setting):
    configs, family, _ = setting
    states = [initial_meta_state(c, family) for c in configs]
    stacked = stack_states(states)
    assert jax.tree_util.tree_leaves(stacked)[0].shape[0] == 2
    for index, state in enumerate(states):
        for a, b in zip(
            jax.tree_util.tree_leaves(unstack_state(stacked, index)),
            jax.tree_util.tree_leaves(state),
        ):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_inner_steps_per_meta_step_counts_the_imitation_unrolls():
    assert inner_steps_per_meta_step(160, 4, 20, imitation=False) == 160
    assert inner_steps_per_meta_step(160, 4, 20, imitation=True) == 240
