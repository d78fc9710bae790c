"""The supervision ablation behind `meta-opt ablation`: arms x meta-seeds at a matched budget.

An arm is a `meta_train.supervision` value with a teacher (`geodesics.baseline`, or
one of `ablation.extra_teachers`). Per arm, K meta-training runs of the same config
(seeds seed, seed + 1, ...) train together as one vmapped meta-step
(`trainers.core.meta_seeds`) for as many meta-steps as `ablation.inner_step_budget`
allows at the arm's inner steps per meta-step (imitation unrolls count), and are
validated at evenly spaced points on the same held-out instances
(`trainers.pipelines.arm_training`). Then every learned optimizer and the tuned
baselines run on the same held-out evaluation seeds and
`trainers.reporting.ablation_report` writes the comparison.

Folder: `arms/<label>/` per arm (arm.json: the settings it is trained with; targets-<k>.npz per meta-seed,
metrics.jsonl with the mean over meta-seeds, its W&B run, result.npz: the K meta-parameters
and validation curves; checkpoints/ while it trains). An arm whose result.npz exists is not
trained again (if arm.json matches), and an arm stopped mid-training resumes from its newest
checkpoint (every `meta_train.checkpoint_every` meta-steps), bit for bit. At the top:
report.md, results.json, the plots, config.yaml, pairs.json (the pairs every arm imitates) and
the report's W&B run. Target generation is not counted in the inner-step budget. Across
sessions, `configs/keep_ablation.sh` keeps the small files (config, pairs.json, finished arms);
a rerun from them makes targets only for each arm still to train, just before it trains, and
with `ablation.seed_block` an arm trains block by block of meta-seeds (`arm_blocks`).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Sequence
from typing import Any

from common.atomic import write_text
from common.progress import progress_bar
from trainers.config import save_config, to_dict
from trainers.config.arms import ARMS
from trainers.config.experiment import ArmVariant, ExperimentConfig, OptimizerConfig, variant_config
from trainers.config.supervision import with_supervision
from trainers.config.task_families import build_family
from trainers.errors import RunError
from trainers.evaluation.contenders import Contender, baseline
from trainers.evaluation.evaluate import evaluate_task, evaluation_keys
from trainers.io.run_logger import RunLogger
from trainers.pipelines.ablation_pairs import (
    CONVERGENCE,
    NO_TARGETS,
    common_pair_targets,
    pair_notes,
    recorded_pair_targets,
)
from trainers.pipelines.arm_blocks import train_arm_in_blocks
from trainers.pipelines.arm_records import check_reusable, supersede_old_arm
from trainers.pipelines.arm_training import (
    ArmRun,
    curve_steps,
    discard_checkpoints,
    learned_runs,
    step_cost,
    train_arm,
)
from trainers.reporting.ablation_notes import budget_note, convergence_notes, seed_stream_note
from trainers.reporting.ablation_report import write_ablation_report
from trainers.reporting.ablation_statistics import ArmEvaluation

__all__ = [
    "Arm",
    "ArmRun",
    "ablation_arms",
    "ablation_command",
    "arm_config",
    "arm_folder",
    "budget_note",
    "curve_steps",
    "learned_runs",
    "seed_stream_note",
    "step_cost",
    "teacher_label",
    "train_arm",
    "trained_arms",
]


@dataclasses.dataclass(frozen=True)
class Arm:
    """One arm of the ablation: a label, what the imitation loss follows, and the teacher."""

    label: str
    supervision: str
    teacher: OptimizerConfig
    overrides: tuple[str, ...] = ()


def teacher_label(teacher: OptimizerConfig) -> str:
    """'adam lr=0.03': the optimizer's name and hyperparameters, for arm labels."""
    short = {"learning_rate": "lr"}
    settings = ",".join(f"{short.get(k, k)}={v:g}" for k, v in sorted(teacher.hparams.items()))
    return f"{teacher.name} {settings}".strip()


def ablation_arms(config: ExperimentConfig) -> list[Arm]:
    """The configured arms with the main teacher, the variants, then each extra teacher's arms."""
    ablation = config.ablation
    arms = [Arm(name, name, config.geodesics.baseline) for name in ablation.arms]
    arms += [
        Arm(v.label, v.supervision, config.geodesics.baseline, v.overrides)
        for v in ablation.variants
    ]
    arms += [
        Arm(f"{name} @ {teacher_label(teacher)}", name, teacher)
        for teacher in ablation.extra_teachers
        for name in ablation.extra_teacher_arms
    ]
    return arms


def arm_config(config: ExperimentConfig, arm: Arm) -> ExperimentConfig:
    """The meta-training config of one arm: supervision, teacher, and the meta-steps its budget buys.

    Raises:
      RunError: the budget does not buy one meta-step.
    """
    ablation = config.ablation
    if arm.overrides:
        config = variant_config(config, ArmVariant(arm.label, arm.supervision, arm.overrides))
    weight = ablation.imitation_weight if ARMS[arm.supervision].imitates else 0.0
    train = dataclasses.replace(
        config.meta_train, supervision=arm.supervision, imitation_weight=weight, targets=None
    )
    config = dataclasses.replace(
        config,
        meta_train=train,
        geodesics=dataclasses.replace(config.geodesics, baseline=arm.teacher),
    )
    if ablation.inner_step_budget:
        steps = ablation.inner_step_budget // step_cost(config)
        if steps < 1:
            raise RunError(
                f"ablation.inner_step_budget {ablation.inner_step_budget} buys no meta-step of arm "
                f"{arm.label!r} ({step_cost(config)} inner steps each)"
            )
        config = dataclasses.replace(
            config, meta_train=dataclasses.replace(train, num_meta_steps=steps)
        )
    return with_supervision(config)  # the arm's target settings, as its arm.json records them


def arm_folder(folder: pathlib.Path, arm: Arm) -> pathlib.Path:
    """Where ablation `folder` keeps `arm`: `arms/<label>` (spaces and slashes as underscores)."""
    return folder / "arms" / arm.label.replace(" ", "_").replace("/", "_")


def trained_arms(
    config: ExperimentConfig,
    folder: pathlib.Path,
    *,
    progress: bool = True,
    only: Sequence[str] | None = None,
) -> tuple[dict[str, tuple[ExperimentConfig, ArmRun]], dict[str, str], dict[str, Any]]:
    """Every arm's K trained runs: loaded where `folder/arms/<arm>` holds them, trained otherwise.

    Every arm with stored targets imitates the same pairs (`ablation_pairs`). With `only`,
    just those arms are trained (the others are loaded where finished and left out otherwise).

    Returns:
      `({label: (arm config, runs)}, {label: why it has none}, the pairs summary)`; an
      arm whose targets could not be certified is reported, not fatal.
    """
    family = build_family(config, training=True)
    arms = [
        (arm.label, arm_config(config, arm), arm_folder(folder, arm))
        for arm in ablation_arms(config)
    ]
    superseded = {}
    for label, arm_cfg, where in arms:
        moved = supersede_old_arm(arm_cfg, where)
        if moved is not None:
            superseded[label] = str(moved)
        check_reusable(arm_cfg, where)
    pairs = common_pair_targets(arms, folder, family, progress=progress)
    pairs["superseded_arm_folders"] = superseded
    runs: dict[str, tuple[ExperimentConfig, ArmRun]] = {}
    skipped: dict[str, str] = {}
    for label, arm_cfg, where in arms:
        result, no_targets = where / "result.npz", where / NO_TARGETS
        if only is not None and label not in only and not result.exists():
            continue  # waits for a later invocation
        if not result.exists() and not no_targets.exists():
            prepare = lambda seeds, c=arm_cfg, w=where: recorded_pair_targets(
                c, w, pairs, family, progress=progress, meta_seeds=seeds
            )
            train_arm_in_blocks(
                arm_cfg, family, where, prepare, progress=progress, label=label
            ).save(result)
            discard_checkpoints(where)
        if no_targets.exists():
            skipped[label] = no_targets.read_text(encoding="utf-8").strip()
        else:
            runs[label] = (arm_cfg, ArmRun.load(result))
    return runs, skipped, pairs


def ablation_command(
    config: ExperimentConfig,
    folder: pathlib.Path,
    *,
    progress: bool = True,
    only: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Trains every arm (resuming finished ones), evaluates all against tuned baselines, reports.

    Args:
      only: train just these arm labels now (`--arms`), for an ablation longer than a
        session; the report waits until every arm is trained.

    Returns:
      The report's data (`results.json`) with the written files under "files"; with `only`
      and arms still to train, `{"trained": [...], "waiting": [...]}` and no report.

    Raises:
      RunError: `only` names an arm the config does not have.
    """
    labels = [arm.label for arm in ablation_arms(config)]
    unknown = sorted(set(only or ()) - set(labels))
    if unknown:
        raise RunError(f"--arms: no arm {unknown} in this ablation; its arms: {', '.join(labels)}")
    folder.mkdir(parents=True, exist_ok=True)
    save_config(config, folder / "config.yaml")
    runs, skipped, pairs = trained_arms(config, folder, progress=progress, only=only)
    waiting = [label for label in labels if label not in runs and label not in skipped]
    if waiting:
        return {"trained": [label for label in labels if label in runs], "waiting": waiting}
    arms = [arm for arm in ablation_arms(config) if arm.label in runs]
    arm_folders = [(arm.label, arm_folder(folder, arm)) for arm in arms]
    if not arms:
        raise RunError(f"no arm could be trained: {skipped}")

    evaluation = config.evaluation
    steps = evaluation.steps or config.meta_train.unroll.horizon
    family = build_family(
        config
    )  # evaluation: the task as configured, without meta_train.task_variation
    evaluation_seed = config.seed if evaluation.seed is None else evaluation.seed
    tuning_keys, held_out_keys = evaluation_keys(
        evaluation_seed,
        0,
        evaluation.tuning_seeds,
        evaluation.seeds,
    )
    baselines: list[Contender] = [
        baseline(name, evaluation.learning_rates, evaluation.dampings, steps)
        for name in evaluation.baselines
    ]
    with progress_bar(len(baselines) + len(arms), "evaluate", unit="run", enabled=progress) as bar:
        tuned = evaluate_task(
            family,
            baselines,
            steps,
            tuning_keys=tuning_keys,
            held_out_keys=held_out_keys,
            label=config.task.name,
            record_points=evaluation.record_points,
            on_contender=lambda label: bar.update(),
        )
        arm_results = []
        for arm in arms:
            arm_cfg, run = runs[arm.label]
            trajectories = learned_runs(arm_cfg, family, run, held_out_keys, steps)
            arm_results.append(
                ArmEvaluation(
                    arm.label,
                    arm.supervision,
                    teacher_label(arm.teacher),
                    run.steps,
                    run.validation,
                    run.step_cost,
                    run.seconds,
                    trajectories,
                )
            )
            bar.update()
    notes = [*pair_notes(pairs), *convergence_notes(arm_folders, CONVERGENCE)]
    notes += [budget_note(config), seed_stream_note(config)]
    with RunLogger(folder, to_dict(config), config.logging, job_type="ablation") as logger:
        data = write_ablation_report(
            arm_results,
            tuned,
            folder,
            config.ablation.comparisons,
            logger=logger,
            title=f"Supervision ablation on {config.task.name}",
            skipped=skipped,
            notes=notes,
            primary=config.ablation.primary,
            negative_control=config.ablation.negative_control,
            margin=config.ablation.equivalence_margin,
        )
    data["imitation_pairs"] = pairs
    write_text(folder / "results.json", json.dumps(data, indent=2, default=float) + "\n")
    return data
