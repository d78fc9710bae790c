"""What a config's supervision arm means for its target sections and its imitation term.

The arms themselves are a table (`trainers.config.arms`); these functions read it for one
config, so that no pipeline tests for an arm's name.
"""

from __future__ import annotations

import dataclasses

from trainers.config.arms import ARMS, SupervisionArm
from trainers.config.experiment import ExperimentConfig


def arm_of(config: ExperimentConfig) -> SupervisionArm | None:
    """The config's arm (None: no arm named, the target sections are used as they are)."""
    name = config.meta_train.supervision
    return None if name is None else ARMS[name]


def with_supervision(config: ExperimentConfig) -> ExperimentConfig:
    """The config whose `geodesics.targets` and `geodesics.connect` produce the arm's targets.

    A config without an arm, or with one that stores no targets, is returned unchanged;
    applying it twice changes nothing (`load_experiment` applies it, so a saved config is
    the one that produced the run's targets).
    """
    arm = arm_of(config)
    if arm is None or not arm.stores_targets:
        return config
    geo = config.geodesics
    targets = dataclasses.replace(geo.targets, path=arm.path, schedule=arm.schedule)
    connect = dataclasses.replace(geo.connect, shorten=arm.shorten)
    return dataclasses.replace(
        config, geodesics=dataclasses.replace(geo, targets=targets, connect=connect)
    )


def endpoint_only(config: ExperimentConfig) -> bool:
    """True where the imitation loss scores only theta_{t+T} (an arm with "end" weights)."""
    arm = arm_of(config)
    return arm is not None and arm.weights == "end"


def uses_stored_targets(config: ExperimentConfig) -> bool:
    """True where the imitation loss follows a stored target set (not on-policy segments)."""
    arm = arm_of(config)
    return config.meta_train.imitation_weight > 0 and (arm is None or arm.stores_targets)


def makes_on_policy_segments(config: ExperimentConfig) -> bool:
    """True where the imitation term's segments are made inside each meta-step."""
    arm = arm_of(config)
    return config.meta_train.imitation_weight > 0 and arm is not None and arm.on_policy
