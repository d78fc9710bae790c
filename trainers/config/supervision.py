"""Supervision arms: which targets the imitation loss follows, as settings of the target section.

Every arm uses the same teacher runs, pairs (in an ablation, only those certified for
every arm: `trainers.pipelines.ablation_pairs`), imitation loss and normalisation; an
arm only chooses what the T target points of a pair are (`meta_train.supervision`):

  none               no imitation term (the loss-only objective);
  teacher            the teacher's iterates theta_{t+1} ... theta_{t+T};
  chord              T points on the segment theta_t -> theta_{t+T};
  endpoint           theta_{t+T} alone (the loss weighs only the last point);
  geodesic           the string-sampling path in Omega(F(theta_t)), shortened;
  geodesic_schedule  the teacher's path shortened to convergence under its own level
                     schedule (point k at or below the teacher's best loss after k
                     steps, floored at the end's loss): the pace-keeping path of least
                     summed squared steps;
  on_policy          the teacher's T iterates from the learned optimizer's own state
                     after a random warm-up (DAgger-style), made inside each meta-step:
                     no stored targets.

`timing` (equal arc length or by schedule) stays as configured for the path arms.
"""

from __future__ import annotations

import dataclasses

from trainers.config.experiment import ExperimentConfig

# arm -> (TargetOptions.path, TargetOptions.schedule, ConnectOptions.shorten)
_TARGETS = {
    "teacher": ("teacher", "constant", False),
    "endpoint": ("teacher", "constant", False),
    "chord": ("chord", "constant", False),
    "geodesic": ("level_set", "constant", True),
    "geodesic_schedule": ("level_set", "teacher", True),
}


def with_supervision(config: ExperimentConfig) -> ExperimentConfig:
    """The config whose `geodesics.targets` and `geodesics.connect` produce the arm's targets.

    A config without an arm (or with "none") is returned unchanged.
    """
    arm = config.meta_train.supervision
    if arm is None or arm in ("none", "on_policy"):
        return config
    path, schedule, shorten = _TARGETS[arm]
    geo = config.geodesics
    targets = dataclasses.replace(geo.targets, path=path, schedule=schedule)
    connect = dataclasses.replace(geo.connect, shorten=shorten)
    return dataclasses.replace(
        config, geodesics=dataclasses.replace(geo, targets=targets, connect=connect)
    )


def endpoint_only(config: ExperimentConfig) -> bool:
    """True where the imitation loss scores only theta_{t+T} (the "endpoint" arm)."""
    return config.meta_train.supervision == "endpoint"


def uses_stored_targets(config: ExperimentConfig) -> bool:
    """True where the imitation loss follows a stored target set (not on-policy segments)."""
    return config.meta_train.imitation_weight > 0 and config.meta_train.supervision != "on_policy"
