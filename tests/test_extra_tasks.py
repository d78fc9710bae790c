"""Meta-training on several task families at once (`meta_train.extra_tasks`)."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

import tasks
from meta_opt.options import LSTMOptimizer
from trainers.config import ConfigError
from trainers.config.experiment import extra_families, load_experiment, task_variation
from trainers.config.sections import UnrollOptions
from trainers.core.meta_step import MetaObjective, MetaState, make_meta_step
from trainers.core.unroll import initial_states
from trainers.io.checkpoint import latest_checkpoint, load_checkpoint
from trainers.pipelines import train as meta_train

LEARNED, OPTIONS = LSTMOptimizer(hidden_sizes=(4,)), UnrollOptions(horizon=4, unroll_length=2)


def test_the_meta_gradient_of_several_families_is_the_mean_of_theirs():
    families = [tasks.get_family("quadratic"), tasks.get_family("poly_cubic")]
    meta_params = LEARNED.init(jax.random.PRNGKey(0))
    states = [
        initial_states(f, LEARNED, meta_params, jax.random.PRNGKey(i + 1), 3, OPTIONS)
        for i, f in enumerate(families)
    ]
    state = lambda inner: MetaState(
        meta_params,
        optax.sgd(1.0).init(meta_params),
        inner,
        jax.random.PRNGKey(9),
        np.int32(0),
        np.int32(0),
    )
    step = lambda fams: jax.jit(
        make_meta_step(
            fams[0], LEARNED, OPTIONS, MetaObjective(), optax.sgd(1.0), extra_families=fams[1:]
        )
    )
    mixed, mixed_metrics = step(families)(state(tuple(states)))
    alone = [step([f])(state(s)) for f, s in zip(families, states)]
    # sgd(1): the update is minus the gradient; the mixed gradient is the mean of the two
    expected = jax.tree_util.tree_map(
        lambda p, a, b: p + ((a - p) + (b - p)) / 2,
        meta_params,
        alone[0][0].meta_params,
        alone[1][0].meta_params,
    )
    jax.tree_util.tree_map(
        lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7),
        mixed.meta_params,
        expected,
    )
    terms = [float(m["loss_term"]) for _, m in alone]
    assert float(mixed_metrics["loss_term"]) == pytest.approx(np.mean(terms), rel=1e-6)
    assert float(mixed_metrics["inner_loss"]) == pytest.approx(
        float(alone[0][1]["inner_loss"]), rel=1e-6
    )
    for new, (single, _) in zip(mixed.inner, alone):  # each family's instances moved as alone
        jax.tree_util.tree_map(
            lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6),
            new.params,
            single.inner.params,
        )


TINY = """\
name: tiny_mix
task: {name: digits_mlp, options: {hidden_sizes: [8], batch_size: 32}}
meta_train:
  num_meta_steps: 2
  num_instances: 2
  unroll: {horizon: 4, unroll_length: 2}
  lstm: {hidden_sizes: [4]}
  checkpoint_every: 2
  validate_every: 0
  extra_tasks:
    - {name: poly_cubic}
    - {name: digits_mlp, options: {hidden_sizes: [16, 8], activation: relu, batch_size: 32}}
logging: {mode: disabled}
"""


def test_extra_tasks_train_checkpoint_and_vary_as_their_families(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    config = load_experiment(path)
    cubic, deep = config.meta_train.extra_tasks
    assert (
        task_variation(config, cubic) == {}
        and task_variation(config, deep)["permute_labels"] is True
    )
    off = load_experiment(path, ["meta_train.task_variation={permute_labels: true}"])
    assert task_variation(off, cubic) == {} and task_variation(off, deep) == {
        "permute_labels": True
    }
    assert [f.options.hidden_sizes for f in extra_families(config)] == [(4, 4), (16, 8)]
    final = meta_train.train(config, tmp_path / "run", progress=False)
    assert isinstance(final.inner, tuple) and len(final.inner) == 3 and int(final.step) == 2
    template = meta_train.initial_meta_state(config, meta_train.build_family(config, training=True))
    stored, _ = load_checkpoint(latest_checkpoint(tmp_path / "run"), template)
    np.testing.assert_array_equal(stored.inner[2].step, final.inner[2].step)
    with pytest.raises(ConfigError, match=r"meta_train\.extra_tasks\[0\]\.name"):
        load_experiment(path, ["meta_train.extra_tasks=[{name: nope}]"])


def test_build_meta_step_is_the_step_of_every_config_part(tmp_path):
    """PES, extra families, the outer optimizer: the config's step equals one built by hand."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    config = load_experiment(path, ["meta_train.estimator={name: pes, sigma: 0.01}"])
    family = meta_train.build_family(config, training=True)
    train = config.meta_train
    by_hand = make_meta_step(
        family,
        train.lstm,
        train.unroll,
        MetaObjective(train.loss_weight, train.imitation_weight, train.imitation_batch),
        meta_train.outer_optimizer(config),
        None,
        None,
        train.estimator,
        extra_families(config),
    )
    state = meta_train.initial_meta_state(config, family)
    ours, ours_metrics = jax.jit(meta_train.build_meta_step(config, family, None))(state)
    theirs, theirs_metrics = jax.jit(by_hand)(state)
    for x, y in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(theirs)):
        np.testing.assert_array_equal(x, y)
    assert float(ours_metrics["meta_loss"]) == float(theirs_metrics["meta_loss"])
    # and it is a PES step on three families: three particle sets, each moved
    assert len(ours.inner) == 3 and all(hasattr(p, "accumulated") for p in ours.inner)
    assert int(ours.step) == 1 and int(ours.skipped) == 0
    moved = [
        not np.array_equal(a, b)
        for a, b in zip(
            jax.tree_util.tree_leaves(ours.meta_params),
            jax.tree_util.tree_leaves(state.meta_params),
        )
    ]
    assert any(moved)
