"""The ablation report's notes on its design: how the budget was matched, which seed stream,
and how the shortened paths that arms imitate ended (converged, or stopped at the round cap).

Apart from `trainers.reporting.ablation_report` (tables and comparisons) because they read the
config, not the results.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

import numpy as np

from trainers.config.experiment import ExperimentConfig


def budget_note(config: ExperimentConfig) -> str:
    """How the arms' compute is matched: equal inner steps, or equal outer updates."""
    budget = config.ablation.inner_step_budget
    if budget:
        return (
            f"Budget: equal inner steps. Every arm computes at most {budget:,} inner steps "
            "(imitation unrolls included), so arms with an imitation term take fewer outer "
            "updates (the meta-steps column). For equal outer updates, run again with "
            "`ablation.inner_step_budget=0`."
        )
    return (
        f"Budget: equal outer updates. Every arm takes {config.meta_train.num_meta_steps} "
        "meta-steps, so arms with an imitation term compute more inner steps (the inner steps / "
        "meta-step column). For equal inner steps, set `ablation.inner_step_budget`."
    )


def seed_stream_note(config: ExperimentConfig) -> str:
    """Which stream the held-out evaluation seeds come from, and whether it is a fresh one."""
    seed = config.evaluation.seed
    if seed is None or seed == config.seed:
        return (
            f"Held-out seeds: the experiment seed's stream ({config.seed}); an exploratory run "
            "(a confirmatory one sets a fresh `evaluation.seed`)."
        )
    kind = "confirmatory" if config.ablation.confirmatory else "not declared confirmatory"
    return f"Held-out seeds: a fresh stream, `evaluation.seed` = {seed} ({kind})."


def convergence_notes(arms: Sequence[tuple[str, pathlib.Path]], record: str) -> list[str]:
    """One line per arm whose imitated paths were shortened, from its `record` file (per meta-seed).

    Shortening is an iterative solver: a target counts as converged only where it met the
    criterion; for the rest the line gives their last relative length change and rounds.
    """
    lines = []
    for label, folder in arms:
        path = folder / record
        if not path.exists():
            continue
        seeds = list(json.loads(path.read_text(encoding="utf-8")).values())
        get = lambda name, seeds=seeds: np.concatenate([np.asarray(s[name], float) for s in seeds])
        rounds, converged = get("shortening_rounds"), get("converged")
        shortened = np.isfinite(rounds)
        if not shortened.any():
            continue
        lengths, criteria = get("normalized_lengths")[shortened], get("convergence_criteria")
        stopped = shortened & (converged == 0)
        line = (
            f"- `{label}` imitates shortened paths: {int(np.sum(converged[shortened] == 1))} of "
            f"{int(shortened.sum())} (over {len(seeds)} meta-seeds) met the convergence criterion"
        )
        if stopped.any():
            line += (
                f"; the other {int(stopped.sum())} stopped at the round cap "
                f"({int(np.max(rounds[stopped]))} rounds) with a last relative length change of "
                f"{np.median(criteria[stopped]):.1e} (median; largest "
                f"{np.max(criteria[stopped]):.1e})"
            )
        lines.append(
            line + f"; normalized lengths {lengths.min():.3f}-{lengths.max():.3f} "
            f"(mean {lengths.mean():.3f})."
        )
    return lines
