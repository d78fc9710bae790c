"""Every arm of an ablation imitates the same pairs.

Arms generate their targets from the same teacher runs, but a pair certified for one
arm (the chord, the teacher's iterates: never searched) may fail for another (a level
set path): imitating different pairs would confound the supervision with the pairs.
So every arm with stored targets generates its full set once
(`arms/<label>/targets_generated.npz`), the pairs certified by every one of them are
kept, in the teacher's order (instance, then start step), and each arm trains on its own targets at exactly those pairs
(`arms/<label>/targets.npz`, with `num_dropped` counting the pairs left out).
`pairs.json` at the top says how many pairs were kept and, per arm, how many it had
certified and dropped. Arm folders trained before this rule are moved aside and trained
again (`trainers.pipelines.arm_records.supersede_old_arm`).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence
from typing import Any

from common.atomic import write_text
from geodesic_targets.targets import NoCertifiedPairs, TargetSet
from trainers.config.experiment import ExperimentConfig
from trainers.config.supervision import uses_stored_targets
from trainers.pipelines.geodesics import make_targets

GENERATED = "targets_generated.npz"
NO_TARGETS = "no_targets.txt"


def common_pair_targets(
    arms: Sequence[tuple[str, ExperimentConfig, pathlib.Path]],
    folder: pathlib.Path,
    family,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Writes each stored-targets arm's `targets.npz` restricted to the pairs every such arm certified.

    Args:
      arms: (label, arm config, arm folder) of every arm; those without stored targets
        (none, on_policy) are passed over.
      folder: the ablation folder (`pairs.json` is written there).
      family: the meta-training task family.
      progress: show target generation's progress bars.

    Returns:
      The summary written to `pairs.json`: the common pair count and, per arm, its
      certified and dropped counts (or why it has no targets).
    """
    generated: dict[str, TargetSet] = {}
    summary: dict[str, Any] = {"arms": {}}
    for label, config, arm_folder in arms:
        if not uses_stored_targets(config):
            continue
        arm_folder.mkdir(parents=True, exist_ok=True)
        if not (arm_folder / GENERATED).exists() and not (arm_folder / NO_TARGETS).exists():
            try:
                make_targets(config, family, progress=progress).save(arm_folder / GENERATED)
            except NoCertifiedPairs as err:
                write_text(arm_folder / NO_TARGETS, f"{err}\n")
        if (arm_folder / NO_TARGETS).exists():
            summary["arms"][label] = {
                "why_none": (arm_folder / NO_TARGETS).read_text(encoding="utf-8").strip()
            }
        else:
            generated[label] = TargetSet.load(arm_folder / GENERATED)
    certified_by_all = (
        set.intersection(*[set(t.pair_keys()) for t in generated.values()]) if generated else set()
    )
    common = (
        [key for key in next(iter(generated.values())).pair_keys() if key in certified_by_all]
        if generated
        else []
    )
    for label, target_set in generated.items():
        arm_folder = next(f for name, _, f in arms if name == label)
        summary["arms"][label] = {
            "certified": len(target_set.levels),
            "dropped": len(target_set.levels) - len(common),
            "uncertified": int(target_set.num_uncertified),
            "not_descending": int(target_set.num_not_descending),
        }
        if not common:
            write_text(
                arm_folder / NO_TARGETS,
                "no pair was certified for every arm with stored targets "
                f"({', '.join(generated)})\n",
            )
        elif not (arm_folder / "targets.npz").exists():
            target_set.subset(common).save(arm_folder / "targets.npz")
    summary["common_pairs"] = len(common)
    write_text(folder / "pairs.json", json.dumps(summary, indent=2) + "\n")
    return summary


def pair_notes(summary: dict[str, Any]) -> list[str]:
    """Report lines: the pairs every arm imitates, and what each arm dropped and why."""
    arms = {label: row for label, row in summary["arms"].items() if "certified" in row}
    if not arms:
        return []
    lines = [
        f"Imitation pairs: every arm with stored targets imitates the same {summary['common_pairs']} pairs, "
        "those certified for all of them; a pair one arm could not certify is dropped for all."
    ]
    for label, row in arms.items():
        lines.append(
            f"- `{label}`: {row['certified']} certified ({row['uncertified']} uncertified, "
            f"{row['not_descending']} not descending), {row['dropped']} dropped for another arm"
        )
    return lines
