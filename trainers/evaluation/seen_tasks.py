"""What a learned optimizer's meta-training saw, and the check that an `unseen` suite is unseen.

A learned optimizer generalizes to a task kind only if it never met that kind in
meta-training; calling a variant of a meta-training task "unseen" overstates what an
evaluation shows. Kinds are the registry's (`tasks.registry.FamilySpec.kind`: MLP
classifiers, conv nets, sequence models, ...); meta-training saw the kinds of its task and
of `meta_train.extra_tasks`. Shipped bundles list the same on their cards
(`meta_training_saw`), from the same function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tasks.registry
from trainers.config.evaluation_section import EvalTaskConfig
from trainers.config.experiment import ExperimentConfig
from trainers.errors import RunError


def meta_training_saw(config: ExperimentConfig) -> dict[str, Any]:
    """The task families and kinds of a config's meta-training distribution.

    Returns:
      `{"families": [names, in config order, once each], "kinds": [their kinds, sorted]}`.
    """
    names = list(dict.fromkeys(t.name for t in (config.task, *config.meta_train.extra_tasks)))
    return {"families": names, "kinds": sorted({tasks.registry.family_kind(n) for n in names})}


def seen_rows(
    rows: Sequence[EvalTaskConfig], learned: Sequence[tuple[str, ExperimentConfig]]
) -> list[str]:
    """One line per (optimizer, task row) whose task kind the optimizer's meta-training saw.

    Args:
      rows: the suite's task rows.
      learned: (label, training config) of every evaluated learned optimizer.
    """
    lines = []
    for label, config in learned:
        saw = meta_training_saw(config)
        by_kind: dict[str, str] = {}  # kind -> the first meta-training family of that kind
        for name in saw["families"]:
            by_kind.setdefault(tasks.registry.family_kind(name), name)
        for row in rows:
            kind = tasks.registry.family_kind(row.name)
            if kind in by_kind:
                lines.append(
                    f"{label}: {row.label or row.name} is a {kind} task, and its meta-training "
                    f"saw {by_kind[kind]}"
                )
    return lines


def check_unseen(
    suite_name: str,
    rows: Sequence[EvalTaskConfig],
    learned: Sequence[tuple[str, ExperimentConfig]],
) -> None:
    """Refuses an `unseen` suite for optimizers whose meta-training saw one of its task kinds.

    Raises:
      RunError: naming every optimizer, task and the meta-training family of the same kind.
    """
    lines = seen_rows(rows, learned)
    if lines:
        raise RunError(
            f"suite {suite_name!r} is marked unseen, but not for every optimizer evaluated:\n  "
            + "\n  ".join(lines)
            + "\nEvaluate on a suite without those kinds, or on one not marked unseen."
        )
