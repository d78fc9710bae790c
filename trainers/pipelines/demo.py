"""`meta-opt demo`: geodesic targets, two meta-training runs and the evaluation, in one folder.

Layout of the demo folder:
  config.yaml            the resolved config
  targets/               targets.npz, targets.json, target_lengths.png
  train_geodesic/        meta-training with the imitation loss (beta = meta_train.imitation_weight)
  train_loss_only/       the same run with beta = 0
  evaluate/              report.md, curves_*.png, meta_training.png, results.json, W&B run
                         (the shipped pretrained optimizers, `meta-opt pretrained`, are evaluated beside
                         the two trained here)

Re-running the demo in the same folder reuses the targets and resumes (or skips)
finished meta-training, so nothing already computed is lost or repeated.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from geodesic_targets.targets import TargetSet
from meta_opt.pretrained_bundles import list_pretrained
from trainers.config import replace_path, save_config, to_dict
from trainers.config.experiment import ExperimentConfig
from trainers.errors import RunError
from trainers.evaluation.task_list import resolve_tasks
from trainers.io.checkpoint import checkpoint_step, latest_checkpoint
from trainers.pipelines.evaluate import run_evaluation
from trainers.pipelines.geodesics import targets_command
from trainers.pipelines.learned_checkpoints import PRETRAINED, load_learned
from trainers.pipelines.train import train
from trainers.reporting.evaluation_report import describe_best
from trainers.reporting.training_report import (
    FINAL_KEY,
    VALIDATION_KEY,
    compare_runs,
    training_section,
)

DEFAULT_CONFIG = pathlib.Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
GEODESIC, LOSS_ONLY = "lstm (geodesic)", "lstm (loss only)"


def _train(config: ExperimentConfig, run_dir: pathlib.Path, progress: bool) -> None:
    """Meta-trains into run_dir, resuming a run that is there and skipping a finished one."""
    newest = latest_checkpoint(run_dir)
    if newest is not None and checkpoint_step(newest) >= config.meta_train.num_meta_steps:
        return
    resume = newest is not None
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    train(config, run_dir, resume=resume, progress=progress)


def _targets_section(targets: TargetSet, folder: pathlib.Path) -> str:
    lengths = targets.normalized_lengths
    text = [
        "## Geodesic targets",
        "",
        f"{len(lengths)} certified pairs ({targets.num_uncertified} uncertified, "
        f"{targets.num_not_descending} not descending left out); normalized geodesic length "
        f"mean {np.mean(lengths):.3f}, max {np.max(lengths):.3f}. A length of 1 means the straight "
        "segment between the pair's ends already lies in the level set, so the target path is the chord.",
        "",
    ]
    png = folder / "targets" / "target_lengths.png"
    if png.exists():
        text += ["![normalized geodesic length of the targets](../targets/target_lengths.png)", ""]
    return "\n".join(text)


def run_demo(
    config: ExperimentConfig, folder: str | pathlib.Path, progress: bool = True
) -> dict[str, Any]:
    """Runs the whole demo; returns the evaluation's task results and the files written.

    Raises:
      ValueError: if `meta_train.imitation_weight` is 0 (there would be no geodesic run), or
        no target pair could be certified.
    """
    if config.meta_train.imitation_weight <= 0:
        raise RunError(
            "the demo compares geodesic supervision with loss-only training: "
            "meta_train.imitation_weight must be > 0"
        )
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_config(config, folder / "config.yaml")

    targets_dir = folder / "targets"
    if not (targets_dir / "targets.npz").exists():
        targets_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, targets_dir / "config.yaml")
        targets_command(config, targets_dir, progress=progress)
    targets = TargetSet.load(targets_dir / "targets.npz")
    if not len(targets.levels):
        raise RunError(
            f"{targets_dir / 'targets.npz'} holds no certified target pair: raise the "
            "geodesics.connect budgets (max_steps, max_beads) or geodesics.targets.num_instances"
        )

    runs = {GEODESIC: folder / "train_geodesic", LOSS_ONLY: folder / "train_loss_only"}
    _train(
        replace_path(config, "meta_train.targets", str(targets_dir / "targets.npz")),
        runs[GEODESIC],
        progress,
    )
    _train(replace_path(config, "meta_train.imitation_weight", 0.0), runs[LOSS_ONLY], progress)

    eval_dir = folder / "evaluate"
    eval_dir.mkdir(parents=True, exist_ok=True)
    training = training_section(runs, eval_dir)  # None when validate_every is 0
    comparison = (
        {key: compare_runs(runs, key) for key in (VALIDATION_KEY, FINAL_KEY)} if training else None
    )

    learned = [load_learned(runs[label], label) for label in (GEODESIC, LOSS_ONLY)]
    learned += [
        load_learned(f"{PRETRAINED}{name}", f"pretrained {name}") for name in list_pretrained()
    ]
    task_configs = resolve_tasks(
        config.evaluation,
        config.task.name,
        config.task.options,
        config.meta_train.unroll.horizon,
        data_dir=config.data_dir,
    )
    results, written = run_evaluation(
        config.evaluation,
        task_configs,
        learned,
        seed=config.seed,
        data_dir=config.data_dir,
        folder=eval_dir,
        logging=config.logging,
        run_config=to_dict(config),
        progress=progress,
        title=f"Demo: geodesic-supervised and loss-only LSTM optimizers on {config.task.name}",
        intro=f"Both LSTM optimizers were meta-trained for {config.meta_train.num_meta_steps} "
        f"meta-iterations from seed {config.seed}; the baselines were tuned on separate seeds.",
        extra_sections=[*([training] if training else []), _targets_section(targets, folder)],
    )
    if training:
        written["meta_training"] = eval_dir / "meta_training.png"
    written["target_lengths"] = targets_dir / "target_lengths.png"
    written["train_wandb"] = {
        label: sorted((path / "wandb").glob("*run-*"))[-1:] for label, path in runs.items()
    }
    return {
        "results": results,
        "written": written,
        "comparison": comparison,
        "best": [describe_best(task) for task in results],
    }
