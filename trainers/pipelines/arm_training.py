"""Training one ablation arm: its K meta-seeds as one vmapped meta-step, stored and evaluated.

`trainers.pipelines.ablation` decides the arms and their budgets; this module holds what
is done to one arm: the inner steps a meta-step costs (the budget's unit), the meta-steps
at which it is validated, the K runs trained together (`trainers.core.meta_seeds`) and
saved as `result.npz`, and those K optimizers run on the held-out evaluation seeds.
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import time
from collections.abc import Callable, Sequence

import jax
import numpy as np

from common.npz_tree import decode, encode, read_npz, write_npz
from common.progress import progress_bar
from common.pytree import PyTree
from geodesic_targets.targets import TargetSet
from trainers.config import to_dict
from trainers.config.experiment import ExperimentConfig
from trainers.config.supervision import uses_stored_targets
from trainers.core.imitation_term import Targets
from trainers.core.meta_seeds import (
    inner_steps_per_meta_step,
    seeds_step,
    seeds_step_with_targets,
    stack_states,
)
from trainers.core.trajectories import run_grid
from trainers.errors import RunError
from trainers.io.checkpoint import (
    checkpoint_step,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from trainers.io.run_logger import RunLogger
from trainers.pipelines.ablation_pairs import targets_name
from trainers.pipelines.imitation_targets import targets_on_device
from trainers.pipelines.train import (
    build_meta_step,
    initial_meta_state,
    on_policy_for,
    unroll_steps_per_meta_step,
    validation_fn,
)


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


def meta_seed_targets(
    config: ExperimentConfig, folder: pathlib.Path, meta_seeds: Sequence[int] | None = None
) -> Targets | None:
    """The arm's target sets (`folder/targets-<k>.npz`) of `meta_seeds` (default: all K) stacked.

    None where the arm stores no targets. The sets are written by
    `trainers.pipelines.ablation_pairs`, equal in size.

    Raises:
      RunError: a meta-seed's set is missing (the arm was not prepared by the ablation).
    """
    if not uses_stored_targets(config):
        return None
    seeds = range(config.ablation.meta_seeds) if meta_seeds is None else meta_seeds
    paths = [folder / targets_name(k) for k in seeds]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise RunError(f"arm targets missing (made by `meta-opt ablation`): {', '.join(missing)}")
    return stack_states([targets_on_device(config, TargetSet.load(p)) for p in paths])


def _resume_point(folder: pathlib.Path, state, validate, checkpoints: np.ndarray):
    """(state, history, meta-step, seconds so far) from the arm's newest checkpoint, or a fresh start."""
    newest = latest_checkpoint(folder)
    if newest is None:
        return state, {}, 0, 0.0
    step = checkpoint_step(newest)
    done = int(np.sum(checkpoints <= step))
    shapes = jax.eval_shape(validate, state.meta_params)
    like = {
        "state": state,
        "history": {name: np.zeros((done,) + s.shape, s.dtype) for name, s in shapes.items()},
    }
    saved, metadata = load_checkpoint(newest, like)
    history = {name: list(np.asarray(v)) for name, v in saved["history"].items()}
    return saved["state"], history, step, float(metadata["seconds"])


def train_arm(
    config: ExperimentConfig,
    family,
    folder: pathlib.Path,
    *,
    progress: bool = True,
    label: str | None = None,
    on_step: Callable[[int], None] | None = None,
    meta_seeds: Sequence[int] | None = None,
    targets_folder: pathlib.Path | None = None,
) -> ArmRun:
    """K meta-seeds of one arm's config (`arm_config`), trained together; logs means over seeds.

    `meta_seeds` picks a block of them (default: all K; seed k trains from config.seed + k)
    and `targets_folder` where their targets are (default: `folder`): a block of an arm
    trains in its own folder (`train_arm_in_blocks`).

    Every `meta_train.checkpoint_every` meta-steps the arm's whole state (every seed's
    meta-parameters, outer state, instances and keys) and its validation history are
    checkpointed in `folder/checkpoints` (the newest kept), so a stopped arm resumes at
    its last checkpoint and ends bit for bit as an uninterrupted one; `on_step(i)` is
    called after meta-step i is checkpointed (tests). Delete the checkpoints once the
    result is saved (`discard_checkpoints`).
    """
    train = config.meta_train
    seeds = range(config.ablation.meta_seeds) if meta_seeds is None else meta_seeds
    targets = meta_seed_targets(config, targets_folder or folder, seeds)
    if targets is None:
        step = jax.jit(seeds_step(build_meta_step(config, family, None)))
    else:
        with_targets = jax.jit(
            seeds_step_with_targets(lambda t: build_meta_step(config, family, t))
        )
        step = lambda state: with_targets(state, targets)
    validate = jax.jit(
        jax.vmap(validation_fn(config, family))
    )  # same instances for every arm and seed
    state = stack_states(
        [
            initial_meta_state(dataclasses.replace(config, seed=config.seed + k), family)
            for k in seeds
        ]
    )
    checkpoints = curve_steps(train.num_meta_steps, config.ablation.curve_points)
    state, history, first, seconds_before = _resume_point(folder, state, validate, checkpoints)
    tick = time.perf_counter()
    elapsed = lambda: seconds_before + time.perf_counter() - tick
    with (
        RunLogger(
            folder,
            to_dict(config),
            config.logging,
            job_type="ablation-arm",
            resume_id=RunLogger.stored_run_id(folder) if first else None,
        ) as logger,
        progress_bar(
            train.num_meta_steps,
            f"arm {label or train.supervision}",
            unit="step",
            initial=first,
            enabled=progress,
        ) as bar,
    ):
        for meta_step_index in range(first + bool(first), train.num_meta_steps + 1):
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
            if meta_step_index and meta_step_index % train.checkpoint_every == 0:
                saved = {"state": state, "history": {k: np.stack(v) for k, v in history.items()}}
                save_checkpoint(folder, meta_step_index, saved, {"seconds": elapsed()}, keep=1)
                if on_step is not None:
                    on_step(meta_step_index)
        seconds = elapsed()
        logger.log_summary({"seconds": seconds, "inner_steps_per_meta_step": step_cost(config)})
    return ArmRun(
        jax.device_get(state.meta_params),
        checkpoints,
        {name: np.stack(v, axis=1) for name, v in history.items()},
        step_cost(config),
        np.asarray(state.skipped),
        seconds,
    )


def discard_checkpoints(folder: pathlib.Path) -> None:
    """Removes an arm's mid-training checkpoints (tens of MB at K = 16) once its result is saved."""
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)


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
