"""Reading learned optimizers for `meta-opt evaluate`: run checkpoints, ablation arms, bundles.

A learned optimizer is named by a `ckpt-<step>` folder (or a run folder, whose newest
checkpoint is used), as `arm:<ablation>/arms/<arm>@<k>` (meta-seed k of a trained ablation
arm, so an arm's K optimizers can be evaluated on a whole suite) or as `pretrained:NAME` (a
bundle of `meta_opt.pretrained_bundles`); either way it comes back as a `LearnedCheckpoint`
carrying the config that trained it, which evaluation, the demo and the export all need alike.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import NamedTuple

from common.pytree import PyTree
from trainers.config import from_dict, load_experiment
from trainers.config.experiment import ExperimentConfig
from trainers.config.task_families import build_family
from trainers.core.meta_seeds import unstack_state
from trainers.io.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    run_folder_of,
)
from trainers.pipelines.train import initial_meta_state


class LearnedCheckpoint(NamedTuple):
    """A meta-trained LSTM optimizer read from a checkpoint, with the config that trained it."""

    label: str
    config: ExperimentConfig
    meta_params: PyTree
    path: pathlib.Path
    step: int
    pretrained: bool = False  # a shipped bundle (`pretrained:NAME`), not a run's checkpoint
    run_folder: pathlib.Path | None = None  # the training run's folder; None for a bundle


def checkpoint_folder(path: str | pathlib.Path) -> pathlib.Path:
    """A `ckpt-<step>` folder, or the newest one of a run folder."""
    path = pathlib.Path(path)
    if (path / "manifest.json").exists():
        return path
    newest = latest_checkpoint(path)
    if newest is None:
        raise CheckpointError(
            f"{path}: neither a checkpoint folder (no manifest.json) nor a run "
            f"folder with checkpoints (nothing in {path / 'checkpoints'})"
        )
    return newest


PRETRAINED = (
    "pretrained:"  # `--checkpoint pretrained:NAME`: a shipped bundle (meta_opt.pretrained_bundles)
)


ARM = "arm:"  # `--checkpoint arm:<ablation>/arms/<arm>@<k>`: meta-seed k of an ablation arm


def load_arm_checkpoint(spec: str, label: str) -> LearnedCheckpoint:
    """Meta-seed k of a trained ablation arm, `<ablation>/arms/<arm>@<k>`, with the arm's config.

    The config is the one the arm trained with (`trainers.pipelines.ablation.arm_config` of the
    ablation's config.yaml, seed as the ablation's: meta-seed k trained from seed + k), and the
    meta-parameters are meta-seed k's of the arm's result.npz.

    Raises:
      CheckpointError: a malformed spec, an arm that has not finished training, a folder the
        ablation's config does not name, or k outside its meta-seeds.
    """
    from trainers.pipelines.ablation import ablation_arms, arm_config, arm_folder
    from trainers.pipelines.arm_training import ArmRun

    where, _, index = spec.rpartition("@")
    folder = pathlib.Path(where)
    if not where or not index.isdigit() or folder.parent.name != "arms":
        raise CheckpointError(
            f"{ARM}{spec}: expected {ARM}<ablation folder>/arms/<arm>@<meta-seed index>"
        )
    ablation = folder.parent.parent
    if not (folder / "result.npz").exists():
        raise CheckpointError(f"{folder}: no result.npz (the arm has not finished training)")
    config = load_experiment(ablation / "config.yaml")
    arm = next((a for a in ablation_arms(config) if arm_folder(ablation, a) == folder), None)
    if arm is None:
        raise CheckpointError(f"{folder}: not an arm of the ablation in {ablation}")
    run, k = ArmRun.load(folder / "result.npz"), int(index)
    if k >= config.ablation.meta_seeds:
        raise CheckpointError(
            f"{ARM}{spec}: meta-seed {k} of an arm with {config.ablation.meta_seeds} (0 to "
            f"{config.ablation.meta_seeds - 1})"
        )
    meta_params = unstack_state(run.meta_params, k)
    return LearnedCheckpoint(
        label, arm_config(config, arm), meta_params, folder, int(run.steps[-1]), run_folder=None
    )


def load_pretrained_checkpoint(name: str, label: str) -> LearnedCheckpoint:
    """A shipped pretrained optimizer (`meta_opt.pretrained_bundles`) with the config its card records.

    Raises:
      CheckpointError: an unknown or corrupt bundle, or a card without the training config.
    """
    from meta_opt.pretrained_bundles import (
        PRETRAINED_DIR,
        PretrainedError,
        load_pretrained,
        pretrained_card,
    )

    try:
        card = pretrained_card(name)
        lstm, meta_params = load_pretrained(name)
    except PretrainedError as err:
        raise CheckpointError(str(err)) from None
    if not isinstance(card.get("config"), dict):
        raise CheckpointError(f"pretrained optimizer {name!r}: its card records no training config")
    config = from_dict(
        ExperimentConfig, card["config"], source=f"{PRETRAINED_DIR / name}/card.json"
    )
    config = dataclasses.replace(
        config, meta_train=dataclasses.replace(config.meta_train, lstm=lstm)
    )
    return LearnedCheckpoint(
        label,
        config,
        meta_params,
        PRETRAINED_DIR / name,
        int(card.get("meta_steps", 0)),
        pretrained=True,
    )


def load_learned(path: str | pathlib.Path, label: str = "lstm") -> LearnedCheckpoint:
    """Reads the meta-parameters and training config of a checkpoint (or a run's newest one),
    of an ablation arm's meta-seed named as `arm:<arm folder>@<k>`, or of a shipped
    pretrained optimizer named as `pretrained:NAME`.

    Raises:
      CheckpointError: naming the folder when it holds no usable checkpoint or config.
    """
    if str(path).startswith(PRETRAINED):
        return load_pretrained_checkpoint(str(path)[len(PRETRAINED) :], label)
    if str(path).startswith(ARM):
        return load_arm_checkpoint(str(path)[len(ARM) :], label)

    folder = checkpoint_folder(path)
    manifest = folder / "manifest.json"
    try:
        saved = json.loads(manifest.read_text())["metadata"]["config"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{manifest}: no training config in the checkpoint metadata ({err!r})"
        ) from None
    config = from_dict(ExperimentConfig, saved, source=str(manifest))
    state, _ = load_checkpoint(folder, initial_meta_state(config, build_family(config)))
    step = int(state.step)
    return LearnedCheckpoint(
        label, config, state.meta_params, folder, step, run_folder=run_folder_of(folder)
    )
