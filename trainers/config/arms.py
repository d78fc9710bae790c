"""The supervision arms as data: one row per arm, the only place an arm's meaning is written.

An arm chooses what the imitation term of the meta-loss follows (`meta_train.supervision`).
Every arm uses the same teacher runs, pairs (in an ablation, only those certified for every
arm: `trainers.pipelines.ablation_pairs`), imitation loss and normalisation; the table says
what each arm's T target points are, how the loss weighs them, and whether they are stored
(a `TargetSet` made before training) or made inside each meta-step. Pipelines ask this table
(`trainers.config.supervision`); adding an arm is one row here.

This module imports nothing of the project, so the config schema can name the arms.
"""

from __future__ import annotations

import dataclasses
import types


@dataclasses.dataclass(frozen=True)
class SupervisionArm:
    """One arm.

    Attributes:
      name: its name in configs (`meta_train.supervision`, `ablation.arms`).
      summary: what the arm's targets are, in one line (docs, `meta-opt` help).
      path: `TargetOptions.path` of its stored targets ("teacher", "chord", "level_set"), or
        None where it stores none (no imitation, or on-policy segments).
      schedule: `TargetOptions.schedule` of its targets.
      shorten: whether its level-set paths are shortened (`ConnectOptions.shorten`).
      weights: "all" (every target point weighs alike) or "end" (only theta_{t+T}).
      imitates: whether it has an imitation term at all (imitation_weight > 0).
      on_policy: whether its segments are made inside each meta-step from the learner's states.
    """

    name: str
    summary: str
    path: str | None = None
    schedule: str = "constant"
    shorten: bool = False
    weights: str = "all"
    imitates: bool = True
    on_policy: bool = False

    @property
    def stores_targets(self) -> bool:
        """Whether the arm follows a target set made before training."""
        return self.path is not None


_TABLE = (
    SupervisionArm("none", "no imitation term (the loss-only objective)", imitates=False),
    SupervisionArm("teacher", "the teacher's iterates theta_{t+1} ... theta_{t+T}", "teacher"),
    SupervisionArm("chord", "T points on the segment theta_t -> theta_{t+T}", "chord"),
    SupervisionArm(
        "endpoint",
        "theta_{t+T} alone (the loss weighs only the last point)",
        "teacher",
        weights="end",
    ),
    SupervisionArm(
        "geodesic",
        "the string-sampling path in Omega(F(theta_t)), shortened",
        "level_set",
        shorten=True,
    ),
    SupervisionArm(
        "geodesic_schedule",
        "the teacher's path shortened to convergence under its own level schedule (point k at "
        "or below the teacher's best loss after k steps, floored at the end's loss)",
        "level_set",
        schedule="teacher",
        shorten=True,
    ),
    SupervisionArm(
        "on_policy",
        "the teacher's T iterates from the learned optimizer's own state after a random "
        "warm-up (DAgger-style), made inside each meta-step",
        on_policy=True,
    ),
)
ARMS = types.MappingProxyType({arm.name: arm for arm in _TABLE})
ARM_NAMES = tuple(ARMS)
