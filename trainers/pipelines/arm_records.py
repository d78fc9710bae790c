"""What an ablation arm's folder was trained with (arm.json), and whether it can be reused.

An arm whose `result.npz` exists is not trained again, so its folder records the settings
that decide its trained optimizers; a rerun with other settings is an error naming them
(reusing the folder would mix two experiments in one report), and a folder trained before
every arm imitated the same pairs is moved aside and trained again.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from common.atomic import write_text
from trainers.config import to_dict
from trainers.config.experiment import ExperimentConfig
from trainers.config.supervision import uses_stored_targets
from trainers.config.task_families import task_variation
from trainers.errors import RunError

# arm.json of arms trained on the pairs common to every arm, drawn per meta-seed
PAIRS_MARK = "common to every arm with stored targets, drawn per meta-seed"


def _training_settings(config: ExperimentConfig) -> dict[str, Any]:
    """The parts of an arm's config that decide its trained optimizers (task variation resolved)."""
    settings = to_dict(config)
    meta_train = {**settings["meta_train"], "task_variation": task_variation(config)}
    recorded = {
        "seed": settings["seed"],
        "task": settings["task"],
        "geodesics": settings["geodesics"],
        "meta_train": meta_train,
        "ablation": {k: settings["ablation"][k] for k in ("meta_seeds", "curve_points")},
    }
    return {**recorded, "pairs": PAIRS_MARK} if uses_stored_targets(config) else recorded


def _differences(stored: Any, wanted: Any, default: Any, path: str = "") -> list[str]:
    """Dotted paths where `stored` and `wanted` settings disagree. A setting absent from
    `stored` (recorded before that setting existed) agrees when `wanted` holds its default."""
    if isinstance(stored, dict) and isinstance(wanted, dict):
        default = default if isinstance(default, dict) else {}
        out = []
        for key in sorted(set(stored) | set(wanted)):
            where = f"{path}.{key}" if path else key
            if key not in stored and key in default and wanted.get(key) == default[key]:
                continue
            out += _differences(stored.get(key), wanted.get(key), default.get(key), where)
        return out
    return [] if stored == wanted else [path]


def check_reusable(config: ExperimentConfig, folder: pathlib.Path) -> None:
    """Records the arm's training settings in `folder/arm.json`, or checks them against the recorded ones.

    Raises:
      RunError: the folder holds an arm trained with other settings (reusing it would
        mix two experiments in one report).
    """
    as_json = lambda settings: json.loads(json.dumps(settings))  # tuples as lists, as read back
    record, wanted = folder / "arm.json", as_json(_training_settings(config))
    if record.exists():
        defaults = as_json(_training_settings(ExperimentConfig(name=config.name, task=config.task)))
        defaults["meta_train"][
            "task_variation"
        ] = {}  # what arms recorded before the setting existed had
        changed = _differences(json.loads(record.read_text(encoding="utf-8")), wanted, defaults)
        if changed:
            raise RunError(
                f"{folder} holds arm {config.meta_train.supervision!r} trained with other settings "
                f"({', '.join(changed)} differ): choose another --out, or delete that arm folder"
            )
        return
    folder.mkdir(parents=True, exist_ok=True)
    write_text(record, json.dumps(wanted, indent=2) + "\n")


def supersede_old_arm(config: ExperimentConfig, arm_folder: pathlib.Path) -> pathlib.Path | None:
    """Moves aside an arm folder trained before the current pair rule; returns where to.

    Such an arm imitated its own certified pairs, which other arms may not have had, or
    one target set for all its meta-seeds, so it is trained again; its folder is kept as
    `<arm>.before-common-pairs` (nothing is deleted).
    """
    record = arm_folder / "arm.json"
    if not uses_stored_targets(config) or not record.exists():
        return None
    if json.loads(record.read_text(encoding="utf-8")).get("pairs") == PAIRS_MARK:
        return None
    moved = arm_folder.with_name(arm_folder.name + ".before-common-pairs")
    arm_folder.rename(moved)
    return moved
