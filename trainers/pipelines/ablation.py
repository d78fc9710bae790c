"""The supervision ablation behind `meta-opt ablation`: arms x meta-seeds at a matched budget.

An arm is a `meta_train.supervision` value with a teacher (`geodesics.baseline`, or
one of `ablation.extra_teachers`). Per arm, K meta-training runs of the same config
(seeds seed, seed + 1, ...) train together as one vmapped meta-step
(`trainers.core.meta_seeds`) for as many meta-steps as `ablation.inner_step_budget`
allows at the arm's inner steps per meta-step (imitation unrolls count), and are
validated at evenly spaced points on the same held-out instances. Then every learned
optimizer and the tuned baselines run on the same held-out evaluation seeds and
`trainers.reporting.ablation_report` writes the comparison.

Folder: `arms/<label>/` per arm (arm.json: the settings it is trained with; targets.npz,
metrics.jsonl with the mean over meta-seeds, its W&B run, result.npz: the K meta-parameters
and validation curves). An arm whose result.npz exists is not trained again (if arm.json
matches), so a stopped ablation resumes at the arm it was in (that arm starts over). At the top:
report.md, results.json, the plots, config.yaml and the report's W&B run. Target generation is
not counted in the inner-step budget.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Any

import jax
import numpy as np

from common.atomic import write_text
from common.npz_tree import decode, encode, read_npz, write_npz
from common.progress import progress_bar
from trainers.config import save_config, to_dict
from trainers.config.experiment import (
    ExperimentConfig,
    OptimizerConfig,
    build_family,
    extra_families,
)
from trainers.config.supervision import uses_stored_targets
from trainers.core.meta_seeds import inner_steps_per_meta_step, seeds_step, stack_states
from trainers.core.meta_step import MetaObjective, make_meta_step
from trainers.core.trajectories import run_grid
from trainers.errors import RunError
from trainers.evaluation.contenders import Contender, baseline
from trainers.evaluation.evaluate import evaluate_task, evaluation_keys
from trainers.io.run_logger import RunLogger
from trainers.pipelines.ablation_pairs import NO_TARGETS, common_pair_targets, pair_notes
from trainers.pipelines.arm_records import check_reusable, supersede_old_arm
from trainers.pipelines.geodesics import make_targets
from trainers.pipelines.train import (
    initial_meta_state,
    load_targets,
    on_policy_for,
    outer_optimizer,
    unroll_steps_per_meta_step,
    validation_fn,
)
from trainers.reporting.ablation_report import ArmEvaluation, write_ablation_report

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Arm:
    """One arm of the ablation: a label, what the imitation loss follows, and the teacher."""

    label: str
    supervision: str
    teacher: OptimizerConfig


def teacher_label(teacher: OptimizerConfig) -> str:
    """'adam lr=0.03': the optimizer's name and hyperparameters, for arm labels."""
    short = {"learning_rate": "lr"}
    settings = ",".join(f"{short.get(k, k)}={v:g}" for k, v in sorted(teacher.hparams.items()))
    return f"{teacher.name} {settings}".strip()


def ablation_arms(config: ExperimentConfig) -> list[Arm]:
    """The configured arms with the main teacher, then the repeated arms of each extra teacher."""
    ablation = config.ablation
    arms = [Arm(name, name, config.geodesics.baseline) for name in ablation.arms]
    arms += [
        Arm(f"{name} @ {teacher_label(teacher)}", name, teacher)
        for teacher in ablation.extra_teachers
        for name in ablation.extra_teacher_arms
    ]
    return arms


def step_cost(config: ExperimentConfig) -> int:
    """Inner steps one meta-step of `config` computes (unrolls plus imitation unrolls)."""
    train = config.meta_train
    on_policy = on_policy_for(config)
    per_pair = on_policy.inner_steps() if on_policy else config.geodesics.targets.horizon
    return inner_steps_per_meta_step(
        unroll_steps_per_meta_step(train),
        train.imitation_batch,
        per_pair,
        train.imitation_weight > 0,
    )


def arm_config(config: ExperimentConfig, arm: Arm) -> ExperimentConfig:
    """The meta-training config of one arm: supervision, teacher, and the meta-steps its budget buys.

    Raises:
      RunError: the budget does not buy one meta-step.
    """
    ablation = config.ablation
    weight = 0.0 if arm.supervision == "none" else ablation.imitation_weight
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
    return config


def curve_steps(num_meta_steps: int, curve_points: int) -> np.ndarray:
    """The meta-steps at which every run is validated: 0 and `curve_points` evenly spaced ones."""
    return np.unique(np.round(np.linspace(0, num_meta_steps, curve_points + 1)).astype(np.int64))


@dataclasses.dataclass(frozen=True)
class ArmRun:
    """K meta-training runs of one arm.

    Attributes:
      meta_params: the trained LSTM weights, every leaf [K, ...].
      steps: meta-steps of the validations, [P].
      validation: validation metric -> [K, P] (`trainers.pipelines.train.validation_fn`).
      step_cost: inner steps per meta-step.
      skipped: non-finite meta-steps skipped per run, [K].
      seconds: wall time of the training loop (compilation included, target generation not).
    """

    meta_params: PyTree
    steps: np.ndarray
    validation: dict[str, np.ndarray]
    step_cost: int
    skipped: np.ndarray
    seconds: float

    def save(self, path: pathlib.Path) -> None:
        tree = {
            "meta_params": self.meta_params,
            "steps": self.steps,
            "validation": self.validation,
            "step_cost": np.asarray(self.step_cost),
            "skipped": self.skipped,
            "seconds": np.asarray(self.seconds),
        }
        write_npz(path, encode(tree))

    @classmethod
    def load(cls, path: pathlib.Path) -> ArmRun:
        tree = decode(read_npz(path), where=str(path))
        return cls(
            tree["meta_params"],
            tree["steps"],
            dict(tree["validation"]),
            int(tree["step_cost"]),
            tree["skipped"],
            float(tree["seconds"]),
        )


def train_arm(
    config: ExperimentConfig,
    family,
    folder: pathlib.Path,
    *,
    progress: bool = True,
    label: str | None = None,
) -> ArmRun:
    """K meta-seeds of one arm's config (`arm_config`), trained together; logs means over seeds."""
    train = config.meta_train
    seeds = config.ablation.meta_seeds
    if uses_stored_targets(config) and not (folder / "targets.npz").exists():
        make_targets(config, family, progress=progress).save(folder / "targets.npz")
    targets = load_targets(config, family, folder)
    objective = MetaObjective(train.loss_weight, train.imitation_weight, train.imitation_batch)
    meta_step = make_meta_step(
        family,
        train.lstm,
        train.unroll,
        objective,
        outer_optimizer(config),
        targets,
        on_policy_for(config),
        train.estimator,
        extra_families(config),
    )
    step = jax.jit(seeds_step(meta_step))
    validate = jax.jit(
        jax.vmap(validation_fn(config, family))
    )  # same instances for every arm and seed
    state = stack_states(
        [
            initial_meta_state(dataclasses.replace(config, seed=config.seed + k), family)
            for k in range(seeds)
        ]
    )
    checkpoints = curve_steps(train.num_meta_steps, config.ablation.curve_points)
    history: dict[str, list[np.ndarray]] = {}
    tick = time.perf_counter()
    with (
        RunLogger(folder, to_dict(config), config.logging, job_type="ablation-arm") as logger,
        progress_bar(
            train.num_meta_steps, f"arm {label or train.supervision}", unit="step", enabled=progress
        ) as bar,
    ):
        for meta_step_index in range(train.num_meta_steps + 1):
            metrics: dict[str, float] = {}
            if meta_step_index:
                state, per_seed = step(state)
                metrics = {name: float(np.mean(v)) for name, v in jax.device_get(per_seed).items()}
                bar.update()
            if meta_step_index in checkpoints:
                for name, values in jax.device_get(validate(state.meta_params)).items():
                    history.setdefault(name, []).append(np.asarray(values))
                    metrics[name] = float(np.mean(values))
            if metrics:
                logger.log(meta_step_index, metrics)
        seconds = time.perf_counter() - tick
        logger.log_summary({"seconds": seconds, "inner_steps_per_meta_step": step_cost(config)})
    return ArmRun(
        jax.device_get(state.meta_params),
        checkpoints,
        {name: np.stack(v, axis=1) for name, v in history.items()},
        step_cost(config),
        np.asarray(state.skipped),
        seconds,
    )


def learned_runs(
    config: ExperimentConfig, family, run: ArmRun, held_out_keys: jax.Array, num_steps: int
):
    """Every meta-seed's optimizer on the held-out seeds in one call: Trajectories [K, E, ...]."""
    lstm = config.meta_train.lstm
    return run_grid(
        family,
        lambda hparams: lstm.transformation(hparams["meta_params"]),
        {"meta_params": run.meta_params},
        held_out_keys,
        num_steps,
        config.evaluation.record_points,
    )


def _arm_folder(folder: pathlib.Path, arm: Arm) -> pathlib.Path:
    return folder / "arms" / arm.label.replace(" ", "_").replace("/", "_")


def trained_arms(
    config: ExperimentConfig, folder: pathlib.Path, *, progress: bool = True
) -> tuple[dict[str, tuple[ExperimentConfig, ArmRun]], dict[str, str], dict[str, Any]]:
    """Every arm's K trained runs: loaded where `folder/arms/<arm>` holds them, trained otherwise.

    Every arm with stored targets imitates the same pairs (`ablation_pairs`).

    Returns:
      `({label: (arm config, runs)}, {label: why it has none}, the pairs summary)`; an
      arm whose targets could not be certified is reported, not fatal.
    """
    family = build_family(config, training=True)
    arms = [
        (arm.label, arm_config(config, arm), _arm_folder(folder, arm))
        for arm in ablation_arms(config)
    ]
    superseded = {}
    for label, arm_cfg, arm_folder in arms:
        moved = supersede_old_arm(arm_cfg, arm_folder)
        if moved is not None:
            superseded[label] = str(moved)
        check_reusable(arm_cfg, arm_folder)
    pairs = common_pair_targets(arms, folder, family, progress=progress)
    pairs["superseded_arm_folders"] = superseded
    runs: dict[str, tuple[ExperimentConfig, ArmRun]] = {}
    skipped: dict[str, str] = {}
    for label, arm_cfg, arm_folder in arms:
        result, no_targets = arm_folder / "result.npz", arm_folder / NO_TARGETS
        if not result.exists() and not no_targets.exists():
            train_arm(arm_cfg, family, arm_folder, progress=progress, label=label).save(result)
        if no_targets.exists():
            skipped[label] = no_targets.read_text(encoding="utf-8").strip()
        else:
            runs[label] = (arm_cfg, ArmRun.load(result))
    return runs, skipped, pairs


def ablation_command(
    config: ExperimentConfig, folder: pathlib.Path, *, progress: bool = True
) -> dict[str, Any]:
    """Trains every arm (resuming finished ones), evaluates all against tuned baselines, reports.

    Returns:
      The report's data (`results.json`) with the written files under "files".
    """
    folder.mkdir(parents=True, exist_ok=True)
    save_config(config, folder / "config.yaml")
    runs, skipped, pairs = trained_arms(config, folder, progress=progress)
    arms = [arm for arm in ablation_arms(config) if arm.label in runs]
    if not arms:
        raise RunError(f"no arm could be trained: {skipped}")

    evaluation = config.evaluation
    steps = evaluation.steps or config.meta_train.unroll.horizon
    family = build_family(
        config
    )  # evaluation: the task as configured, without meta_train.task_variation
    tuning_keys, held_out_keys = evaluation_keys(
        config.seed if evaluation.seed is None else evaluation.seed,
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
    with RunLogger(folder, to_dict(config), config.logging, job_type="ablation") as logger:
        data = write_ablation_report(
            arm_results,
            tuned,
            folder,
            config.ablation.comparisons,
            logger=logger,
            title=f"Supervision ablation on {config.task.name}",
            skipped=skipped,
            notes=pair_notes(pairs),
        )
    data["imitation_pairs"] = pairs
    write_text(folder / "results.json", json.dumps(data, indent=2, default=float) + "\n")
    return data
