"""Every arm of an ablation imitates the same pairs, and each meta-seed its own.

Arms generate their targets from the same teacher runs, but a pair certified for one
arm (the chord, the teacher's iterates: never searched) may fail for another (a level
set path): imitating different pairs would confound the supervision with the pairs.
And one target draw for all meta-seeds would leave the variance of the target set out
of every interval. So meta-seed k of every arm draws its own teacher runs (the targets
key of seed + k, as its meta-parameters are seed + k's): each arm with stored targets
generates its full set once per meta-seed (`arms/<label>/targets_generated-<k>.npz`);
for each meta-seed the pairs certified by every arm are kept, in the teacher's order
(instance, then start step); and every meta-seed keeps the same number of them (the
fewest any meta-seed has, its first ones), so the K sets stack into one vmapped
meta-step. Each arm trains meta-seed k on `arms/<label>/targets-<k>.npz`.
The sets are drawn meta-seed by meta-seed, every arm's, and what each arm certified is
recorded in `pairs_progress.json` as it goes, so a stop loses at most the meta-seed in
progress. `pairs.json` at the top says how many pairs each meta-seed kept (and which: "kept_keys")
and, per arm and meta-seed, how many it had certified and dropped. Once it records the
choice, a rerun (a later session, a fresh clone holding the small files only) generates
targets again only for each arm still to train, just before it trains, at the recorded pairs;
generation is deterministic, so a recorded pair that does not come back is an error.
Arm folders trained before this rule are moved aside and trained again
(`trainers.pipelines.arm_records.supersede_old_arm`).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Sequence
from typing import Any

from common.atomic import write_text
from geodesic_targets.targets import NoCertifiedPairs, TargetSet
from trainers.config.experiment import ExperimentConfig
from trainers.config.supervision import uses_stored_targets
from trainers.errors import RunError
from trainers.pipelines.geodesics import make_targets

NO_TARGETS = "no_targets.txt"
PROGRESS = "pairs_progress.json"  # the pairs each arm certified, meta-seed by meta-seed
CONVERGENCE = "target_convergence.json"  # per meta-seed: how each imitated path's shortening ended
CONVERGENCE_FIELDS = (
    "normalized_lengths",
    "unshortened_lengths",
    "converged",
    "shortening_rounds",
    "convergence_criteria",
)


def generated_name(meta_seed: int) -> str:
    """The file of an arm's full target set for one meta-seed."""
    return f"targets_generated-{meta_seed}.npz"


def targets_name(meta_seed: int) -> str:
    """The file of the pairs one meta-seed of an arm imitates."""
    return f"targets-{meta_seed}.npz"


def meta_seed_config(config: ExperimentConfig, meta_seed: int) -> ExperimentConfig:
    """Meta-seed k's config: the seed + k that draws its meta-parameters and its targets."""
    return dataclasses.replace(config, seed=config.seed + meta_seed)


def common_pair_targets(
    arms: Sequence[tuple[str, ExperimentConfig, pathlib.Path]],
    folder: pathlib.Path,
    family,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Chooses meta-seed k's pairs that every stored-targets arm certified; writes `targets-<k>.npz`.

    The arms' sets are drawn meta-seed by meta-seed (`pairs_progress.json` records each as it
    comes, so a stop loses only the meta-seed in progress); each arm's `targets-<k>.npz` is
    written from the sets still on disk.

    Args:
      arms: (label, arm config, arm folder) of every arm; those without stored targets
        (none, on_policy) are passed over. Their configs share `ablation.meta_seeds`.
      folder: the ablation folder (`pairs.json` is written there).
      family: the meta-training task family.
      progress: show target generation's progress bars.

    Returns:
      The summary written to `pairs.json`: the pairs kept per meta-seed ("common_pairs",
      "kept_keys"), how many each meta-seed had in common, and per arm the certified and
      dropped counts of every meta-seed (or why it has no targets).

    Once `pairs.json` records the kept pairs of these arms, nothing is generated here: each
    arm makes its own targets when it is about to train (`recorded_pair_targets`).
    """
    stored = [(label, config, f) for label, config, f in arms if uses_stored_targets(config)]
    meta_seeds = arms[0][1].ablation.meta_seeds if arms else 0
    recorded = _recorded_choice(folder, [label for label, _, _ in stored], meta_seeds)
    if recorded is not None:
        return recorded
    drawn = _drawn_pairs(stored, folder, meta_seeds, family, progress)
    summary: dict[str, Any] = {"arms": {}}
    for label, _, arm_folder in stored:
        if label not in drawn:
            summary["arms"][label] = {
                "why_none": (arm_folder / NO_TARGETS).read_text(encoding="utf-8").strip()
            }
    keys_of = lambda k: [[tuple(key) for key in drawn[label][k]["keys"]] for label in drawn]
    common = [_common_of(keys_of(k)) for k in range(meta_seeds)] if drawn else []
    kept = min((len(keys) for keys in common), default=0)
    for label, seeds in drawn.items():
        arm_folder = next(f for name, _, f in stored if name == label)
        summary["arms"][label] = {
            "certified": [len(seed["keys"]) for seed in seeds],
            "dropped": [len(seed["keys"]) - kept for seed in seeds],
            "uncertified": [seed["uncertified"] for seed in seeds],
            "not_descending": [seed["not_descending"] for seed in seeds],
        }
        if not kept:
            write_text(
                arm_folder / NO_TARGETS,
                "no pair was certified for every arm with stored targets "
                f"({', '.join(drawn)}) at every meta-seed\n",
            )
            continue
    summary["common_pairs"] = kept
    summary["common_per_meta_seed"] = [len(keys) for keys in common]
    summary["kept_keys"] = [[list(key) for key in keys[:kept]] for keys in common] if kept else []
    summary["stored_arms"] = [label for label, _, _ in stored]
    write_text(folder / "pairs.json", json.dumps(summary, indent=2) + "\n")
    for _, config, arm_folder in stored:  # from the sets on disk; the rest before it trains
        on_disk = [k for k in range(meta_seeds) if (arm_folder / generated_name(k)).exists()]
        recorded_pair_targets(
            config, arm_folder, summary, family, progress=progress, meta_seeds=on_disk
        )
    return summary


def _generated(config: ExperimentConfig, arm_folder: pathlib.Path, k: int, family, progress: bool):
    """Meta-seed k's full target set of one arm, made (and kept) where it is not on disk yet."""
    path = arm_folder / generated_name(k)
    if path.exists():
        return TargetSet.load(path)
    full = make_targets(meta_seed_config(config, k), family, progress=progress)
    full.save(path)
    return full


def _recorded_choice(
    folder: pathlib.Path, stored: Sequence[str], meta_seeds: int
) -> dict[str, Any] | None:
    """pairs.json's summary where it records the kept pairs of these arms and meta-seeds, else None."""
    path = folder / "pairs.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    if "kept_keys" not in summary or summary.get("stored_arms") != list(stored):
        return None
    if summary["kept_keys"] and len(summary["kept_keys"]) != meta_seeds:
        return None
    return summary


def recorded_pair_targets(
    config: ExperimentConfig,
    arm_folder: pathlib.Path,
    summary: dict[str, Any],
    family,
    *,
    progress: bool = True,
    meta_seeds: Sequence[int] | None = None,
) -> None:
    """One arm's `targets-<k>.npz` where missing: its (re)generated set at the pairs `summary` keeps.

    Only for `meta_seeds` where given (a block of them, `ablation.seed_block`).

    Called before an arm trains, so a rerun from the small files (a later session, another
    clone) makes targets only for the arms it still trains.

    Raises:
      RunError: a regenerated set lacks a pair the summary records (not the targets the other
        arms trained on).
    """
    if not uses_stored_targets(config) or (arm_folder / NO_TARGETS).exists():
        return
    for k, keys in enumerate(summary.get("kept_keys", [])):
        if (meta_seeds is not None and k not in meta_seeds) or (
            arm_folder / targets_name(k)
        ).exists():
            continue
        full = _generated(config, arm_folder, k, family, progress)
        try:
            chosen = full.subset([tuple(key) for key in keys])
        except KeyError as err:
            raise RunError(
                f"{arm_folder / generated_name(k)}: the regenerated targets lack pairs that "
                f"pairs.json records ({err}); not the targets the other arms trained on "
                "(other code or settings?)"
            ) from None
        chosen.save(arm_folder / targets_name(k))
        record_convergence(arm_folder, k, chosen)


def record_convergence(arm_folder: pathlib.Path, meta_seed: int, targets: TargetSet) -> None:
    """Adds meta-seed k's per-pair shortening outcome to `arm_folder/target_convergence.json`.

    Kept with the arm between sessions (the target files are not), so the report can say how
    the paths it imitated were shortened (`trainers.reporting.ablation_notes.convergence_notes`).
    """
    path = arm_folder / CONVERGENCE
    record = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    record[str(meta_seed)] = {
        name: [float(v) for v in getattr(targets, name)] for name in CONVERGENCE_FIELDS
    }
    write_text(path, json.dumps(record, sort_keys=True) + "\n")


def _common_of(key_lists: Sequence[list]) -> list:
    """The pairs in every arm's list, in the first list's order."""
    certified_by_all = set.intersection(*[set(keys) for keys in key_lists])
    return [key for key in key_lists[0] if key in certified_by_all]


def _drawn_pairs(stored, folder: pathlib.Path, meta_seeds: int, family, progress: bool):
    """Per arm with targets, per meta-seed: the pairs it certified ("keys") and its failure counts.

    Meta-seed by meta-seed, every arm's set is made (or read) and its record appended to
    `pairs_progress.json`, so a stop loses at most the meta-seed in progress: the sets
    themselves are too large to keep between sessions, their records are not.
    """
    path, labels = folder / PROGRESS, [label for label, _, _ in stored]
    record = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if record.get("stored_arms") != labels:
        record = {"stored_arms": labels, "meta_seeds": []}
    seeds = record["meta_seeds"]
    for k in range(len(seeds), meta_seeds):
        entry = {}
        for label, config, arm_folder in stored:
            arm_folder.mkdir(parents=True, exist_ok=True)
            if (arm_folder / NO_TARGETS).exists():
                continue
            try:
                full = _generated(config, arm_folder, k, family, progress)
            except NoCertifiedPairs as err:
                write_text(arm_folder / NO_TARGETS, f"meta-seed {k}: {err}\n")
                continue
            entry[label] = {
                "keys": [list(key) for key in full.pair_keys()],
                "uncertified": int(full.num_uncertified),
                "not_descending": int(full.num_not_descending),
            }
        seeds.append(entry)
        write_text(path, json.dumps(record) + "\n")
    with_targets = [label for label, _, f in stored if not (f / NO_TARGETS).exists()]
    return {label: [seeds[k][label] for k in range(meta_seeds)] for label in with_targets}


def pair_notes(summary: dict[str, Any]) -> list[str]:
    """Report lines: the pairs every arm imitates, and what each arm dropped and why."""
    arms = {label: row for label, row in summary["arms"].items() if "certified" in row}
    if not arms:
        return []
    per_seed = summary["common_per_meta_seed"]
    lines = [
        f"Imitation pairs: each meta-seed draws its own teacher runs, and every arm with stored "
        f"targets imitates the same {summary['common_pairs']} pairs of it, those certified for all "
        f"arms (the first {summary['common_pairs']} of each meta-seed's {', '.join(map(str, per_seed))} "
        "in common); a pair one arm could not certify is dropped for all."
    ]
    for label, row in arms.items():
        lines.append(
            f"- `{label}`, per meta-seed: {_counts(row['certified'])} certified "
            f"({_counts(row['uncertified'])} uncertified, {_counts(row['not_descending'])} not "
            f"descending), {_counts(row['dropped'])} dropped"
        )
    return lines


def _counts(values: Sequence[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "/".join(map(str, values))
