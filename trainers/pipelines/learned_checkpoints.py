"""Reading learned optimizers for `meta-opt evaluate`: run checkpoints and shipped bundles.

A learned optimizer is named either by a `ckpt-<step>` folder (or a run folder, whose newest
checkpoint is used) or as `pretrained:NAME` (a bundle of `meta_opt.pretrained_bundles`);
either way it comes back as a `LearnedCheckpoint` carrying the config that trained it, which
evaluation, the demo and the export all need alike.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import NamedTuple

from common.pytree import PyTree
from trainers.config import from_dict
from trainers.config.experiment import ExperimentConfig
from trainers.config.task_families import build_family
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
    or of a shipped pretrained optimizer named as `pretrained:NAME`.

    Raises:
      CheckpointError: naming the folder when it holds no usable checkpoint or config.
    """
    if str(path).startswith(PRETRAINED):
        return load_pretrained_checkpoint(str(path)[len(PRETRAINED) :], label)

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
