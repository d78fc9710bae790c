"""The `ablation` section of an experiment config: arms, meta-seeds, budget and statistics.

`meta-opt ablation` (`trainers.pipelines.ablation`) reads it; the statistics fields
(`primary`, `equivalence_margin`, `negative_control`, `confirmatory`) are the decisive
ablation's declarations, made before the run (`trainers.reporting.ablation_statistics`).
"""

from __future__ import annotations

import dataclasses

from trainers.config.arms import ARMS
from trainers.config.sections import SUPERVISION_ARMS, OptimizerConfig


@dataclasses.dataclass(frozen=True)
class ArmVariant:
    """An extra ablation arm: a supervision arm with config overrides, under its own label.

    E.g. `{label: validation_scored, supervision: none, overrides:
    ["meta_train.unroll.score_on=validation"]}`: the loss-only arm scored on the validation
    split, compared like any other arm.

    Attributes:
      label: its name in the report and in `comparisons` / `primary` (not an arm's name).
      supervision: the `meta_train.supervision` arm it starts from.
      overrides: "a.b=value" settings applied to its config after the arm's own.
    """

    label: str
    supervision: str
    overrides: tuple[str, ...] = ()

    def __post_init__(self):
        if self.supervision not in SUPERVISION_ARMS:
            raise ValueError(
                f"supervision: unknown arm {self.supervision!r}; known: {', '.join(SUPERVISION_ARMS)}"
            )
        if self.label in SUPERVISION_ARMS or not self.label.replace("_", "").isalnum():
            raise ValueError(
                f"label: {self.label!r} must be letters, digits and underscores, and not an arm's name"
            )


@dataclasses.dataclass(frozen=True)
class AblationConfig:
    """`meta-opt ablation`: supervision arms x meta-seeds at a matched inner-step budget.

    Attributes:
      arms: `meta_train.supervision` arms to train (each with the teacher `geodesics.baseline`).
      meta_seeds: K meta-training runs per arm (seeds seed, seed + 1, ...), trained together.
      inner_step_budget: inner steps each run computes, imitation unrolls included; an
        arm takes budget // (its inner steps per meta-step) meta-steps. 0: every arm takes
        `meta_train.num_meta_steps` (compute not matched; the report says so).
      imitation_weight: beta of every supervised arm.
      extra_teachers: other teachers (e.g. not the tuned winner); each runs `extra_teacher_arms` again.
      extra_teacher_arms: the supervised arms repeated with every extra teacher.
      curve_points: validations per run, evenly spaced in compute (plus one before training).
      comparisons: paired comparisons "a:b" of the report (arms absent from `arms` are skipped),
        Holm-adjusted together (per metric).
      primary: the comparisons "a:b" the ablation is run to decide, declared before it runs;
        reported first, Holm-adjusted among themselves, each with the smallest effect it
        detects at 80% power.
      equivalence_margin: m > 0 makes a comparison "equivalent" when two one-sided tests put
        |a − b| below m x (b's mean); 0: no margin (a difference inside the noise stays
        "inconclusive").
      negative_control: a pair "a:b" of arms that should not differ (e.g. geodesic:chord where
        the level-set paths are chords); its paired spread is reported as the noise floor.
      confirmatory: the run tests settings chosen on other runs: it must draw its held-out
        seeds from a fresh stream (`evaluation.seed` set, not the experiment seed).
      variants: extra arms, each a supervision arm with config overrides under its own label
        (`ArmVariant`), trained, budgeted and compared like the others.
      seed_block: train an arm's meta-seeds in blocks of this many (each block one vmapped run
        with only its seeds' targets, kept on its own), so that an arm whose targets and
        training do not fit one session together goes on block by block; 0: all K at once.
        The joined blocks equal the K seeds trained at once up to float rounding (rtol 1e-5
        in the test), not bit for bit.
    """

    arms: tuple[str, ...] = (
        "none",
        "teacher",
        "chord",
        "endpoint",
        "geodesic",
        "geodesic_schedule",
        "on_policy",
    )
    meta_seeds: int = 5
    inner_step_budget: int = 0
    imitation_weight: float = 1.0
    extra_teachers: tuple[OptimizerConfig, ...] = ()
    extra_teacher_arms: tuple[str, ...] = ("teacher", "geodesic_schedule")
    curve_points: int = 10
    comparisons: tuple[str, ...] = (
        "geodesic:chord",
        "geodesic:teacher",
        "geodesic:none",
        "geodesic_schedule:chord",
        "geodesic_schedule:teacher",
        "geodesic_schedule:none",
        "chord:none",
        "teacher:none",
        "endpoint:chord",
        "endpoint:teacher",
        "endpoint:none",
        "on_policy:teacher",
        "on_policy:none",
    )
    primary: tuple[str, ...] = ()
    equivalence_margin: float = 0.05
    negative_control: str | None = None
    confirmatory: bool = False
    variants: tuple[ArmVariant, ...] = ()
    seed_block: int = 0

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label a comparison may name: the arms' names and the variants' labels."""
        return SUPERVISION_ARMS + tuple(v.label for v in self.variants)

    def __post_init__(self):
        unknown = sorted(set(self.arms + self.extra_teacher_arms) - set(SUPERVISION_ARMS))
        if unknown or not self.arms:
            raise ValueError(
                f"unknown or no arm(s) {unknown}; known: {', '.join(SUPERVISION_ARMS)}"
            )
        if any(not ARMS[arm].imitates for arm in self.extra_teacher_arms):
            raise ValueError("extra_teacher_arms: an arm without imitation ('none') has no teacher")
        if self.meta_seeds < 2 or self.inner_step_budget < 0 or self.curve_points < 1:
            raise ValueError(
                f"need meta_seeds >= 2 (for a standard error), inner_step_budget >= 0 "
                f"and curve_points >= 1: {self}"
            )
        if self.imitation_weight <= 0:
            raise ValueError(f"imitation_weight must be > 0, got {self.imitation_weight}")
        control = () if self.negative_control is None else (self.negative_control,)
        for pair in self.comparisons + self.primary + control:
            if pair.count(":") != 1 or any(a not in self.labels for a in pair.split(":")):
                raise ValueError(
                    f"comparison {pair!r} is not 'arm:arm' with arms from {self.labels}"
                )
        if len({v.label for v in self.variants}) != len(self.variants):
            raise ValueError("variants: two variants share a label")
        trained = set(self.arms) | {v.label for v in self.variants}
        missing = sorted({a for pair in self.primary + control for a in pair.split(":")} - trained)
        if missing:
            raise ValueError(f"primary and negative_control name arms not in `arms`: {missing}")
        if self.equivalence_margin < 0:
            raise ValueError(f"equivalence_margin must be >= 0, got {self.equivalence_margin}")
        if self.seed_block < 0:
            raise ValueError(
                f"seed_block must be >= 0 (0: every meta-seed at once), got {self.seed_block}"
            )

    def seed_blocks(self) -> list[range]:
        """The meta-seeds trained together, block by block (one block of all K without seed_block)."""
        size = self.seed_block or self.meta_seeds
        return [range(k, min(k + size, self.meta_seeds)) for k in range(0, self.meta_seeds, size)]
