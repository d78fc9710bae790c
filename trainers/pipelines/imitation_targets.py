"""The supervision targets of meta-training's imitation loss, as `meta-opt train` loads them.

A run takes its targets from `meta_train.targets`, else from a `targets.npz` already in the
run folder, else generates them once (`geodesics.make_targets`) and keeps them there; the
set is checked against the task and the `meta_train.supervision` arm before it is turned
into the device arrays (`Targets`) of the meta-step.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp

from geodesic_targets.targets import TargetSet
from trainers.config.experiment import ExperimentConfig
from trainers.config.supervision import endpoint_only, uses_stored_targets, with_supervision
from trainers.core import sharding
from trainers.core.imitation import endpoint_weights
from trainers.core.meta_step import Targets
from trainers.errors import RunError
from trainers.pipelines.geodesics import make_targets


def load_targets(config: ExperimentConfig, family, run_dir: pathlib.Path) -> Targets | None:
    """Supervision targets for the imitation loss: from `meta_train.targets`, or generated once.

    Raises:
      RunError: the set was made for another task, or with another path or schedule
        than `meta_train.supervision` asks for.
    """
    train = config.meta_train
    if not uses_stored_targets(config):
        return None
    if train.targets:
        target_set = TargetSet.load(train.targets)
    elif (run_dir / "targets.npz").exists():
        target_set = TargetSet.load(run_dir / "targets.npz")
    else:  # every process makes the same targets from the seed; process 0 keeps them
        target_set = make_targets(config, family, progress=False)
        if sharding.is_primary():
            target_set.save(run_dir / "targets.npz")
    return targets_on_device(config, target_set)


def targets_on_device(config: ExperimentConfig, target_set: TargetSet) -> Targets:
    """A stored target set as the imitation term's `Targets`, checked against the config.

    Raises:
      RunError: the set was made for another task, or with another path or schedule
        than `meta_train.supervision` asks for.
    """
    train = config.meta_train
    if target_set.task != config.task.name:
        raise RunError(f"targets were made for task {target_set.task!r}, not {config.task.name!r}")
    wanted = with_supervision(config).geodesics.targets
    if train.supervision is not None and (target_set.path, target_set.schedule) != (
        wanted.path,
        wanted.schedule,
    ):
        raise RunError(
            f"supervision {train.supervision!r} needs targets on a {wanted.path} path with the "
            f"{wanted.schedule} schedule, but the set holds {target_set.path} / {target_set.schedule}"
        )
    as_jnp = lambda tree: jax.tree_util.tree_map(jnp.asarray, tree)
    points = as_jnp(target_set.targets)
    horizon = jax.tree_util.tree_leaves(points)[0].shape[1]
    weights = endpoint_weights(horizon) if endpoint_only(config) else jnp.ones(horizon)
    return Targets(
        as_jnp(target_set.start_params),
        points,
        jnp.asarray(target_set.instance_keys, jnp.uint32),
        weights,
    )
