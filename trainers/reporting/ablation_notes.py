"""The ablation report's notes on its design: how the budget was matched, which seed stream.

Apart from `trainers.reporting.ablation_report` (tables and comparisons) because they read the
config, not the results.
"""

from __future__ import annotations

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
