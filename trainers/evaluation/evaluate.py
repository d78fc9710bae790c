"""Learned optimizers against tuned baselines on held-out seeds, one task at a time.

Fairness rules, in one place:
  * baselines are tuned on separate seeds (`trainers.evaluation.contenders`);
  * all optimizers then run on the same *held-out* seeds (instance, initialization
    and minibatches are equal across optimizers: a paired comparison);
  * evaluation keys are folded with their own tag (`trainers.core.keys`), so they
    never coincide with the keys meta-training drew its instances from.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tasks.base import TaskFamily
from trainers.core import keys as run_keys
from trainers.core.trajectories import Trajectories, run_grid
from trainers.evaluation.contenders import Contender, Tuning, grid_runs, tune

TUNING, HELD_OUT = 0, 1


@dataclasses.dataclass(frozen=True)
class ContenderResult:
    """One optimizer on one task: its held-out runs and, for a baseline, its tuning."""

    label: str
    learned: bool
    runs: Trajectories  # leading axes [1, K]
    tuning: Tuning | None = None

    @property
    def final_losses(self) -> np.ndarray:
        """Final training loss per held-out seed, [K]."""
        return self.runs.final_losses[0]

    @property
    def chosen(self) -> dict[str, float]:
        return self.tuning.chosen if self.tuning else {}


@dataclasses.dataclass(frozen=True)
class AdamReference:
    """Adam over its whole learning-rate grid on the held-out seeds, run longer than the task.

    What a speed-up over Adam is measured against (`trainers.evaluation.suite_scores`): at each
    recorded step, the lowest of the grid's seed-mean training losses (the lower envelope over
    learning rates, as learned_optimization's normalizers take it), so a learned optimizer's
    speed-up can exceed 1, and Adam is given every learning rate at every horizon.

    Attributes:
      steps: the recorded steps, [P] (the last is the reference's length).
      mean_curve: the envelope of seed-mean training losses at `steps`, [P] (inf: all diverged).
    """

    steps: np.ndarray
    mean_curve: np.ndarray


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """Every contender on one task (same held-out seeds), the target loss, Adam's long reference."""

    label: str
    task: str
    num_steps: int
    results: tuple[ContenderResult, ...]
    target_loss: float
    adam_reference: AdamReference | None = None


def evaluation_keys(
    seed: int, task_index: int, tuning_seeds: int, seeds: int
) -> tuple[jax.Array, jax.Array]:
    """`(tuning keys [tuning_seeds], held-out keys [seeds])` of one task, disjoint streams."""
    root = jax.random.fold_in(run_keys.derive(seed, "evaluation"), task_index)
    return (
        jax.random.split(jax.random.fold_in(root, TUNING), tuning_seeds),
        jax.random.split(jax.random.fold_in(root, HELD_OUT), seeds),
    )


def default_target(results: Sequence[ContenderResult]) -> float:
    """The worst tuned baseline's mean final loss (every baseline reaches it on average)."""
    pool = [r for r in results if not r.learned] or list(results)
    means = [float(np.mean(r.final_losses)) for r in pool]
    finite = [m for m in means if math.isfinite(m)]
    return max(finite) if finite else math.nan


def evaluate_task(
    family: TaskFamily,
    contenders: Sequence[Contender],
    num_steps: int,
    *,
    tuning_keys: jax.Array,
    held_out_keys: jax.Array,
    label: str = "",
    record_points: int = 50,
    target_loss: float | None = None,
    on_contender=None,
    parallel_runs: int = 0,
    reference_steps: int = 0,
) -> TaskResult:
    """Tunes each baseline, then runs every contender on the held-out seeds.

    Args:
      family: the task family.
      contenders: learned optimizers and baselines.
      num_steps: inner steps of every run (tuning runs included).
      tuning_keys, held_out_keys: seed keys of the grid search and of the reported runs.
      label: the task's name in the report.
      record_points: about this many training-loss measurements per run.
      target_loss: for steps-to-target; None = `default_target`.
      on_contender: called with each label when it is done (progress bars).
      parallel_runs: at most this many runs at once (`run_grid`; 0: all).
      reference_steps: with a contender labelled "adam", also run its whole grid this many
        steps on the held-out seeds (`AdamReference`); 0: no reference.
    """
    results = []
    for contender in contenders:
        tuning = None
        hparams: dict[str, jax.Array] = {}
        if contender.grid:
            tuning = tune(family, contender, tuning_keys, num_steps, record_points, parallel_runs)
            hparams = {k: jnp.asarray(v)[None] for k, v in tuning.chosen.items()}
        runs = run_grid(
            family, contender.build, hparams, held_out_keys, num_steps, record_points, parallel_runs
        )
        results.append(ContenderResult(contender.label, contender.learned, runs, tuning))
        if on_contender is not None:
            on_contender(contender.label)
    target = default_target(results) if target_loss is None else float(target_loss)
    adam = next((c for c in contenders if c.label == "adam" and c.grid), None)
    reference = None
    if reference_steps and adam is not None:
        points = max(record_points, round(record_points * reference_steps / num_steps))
        reference = adam_reference(
            family, adam, held_out_keys, reference_steps, points, parallel_runs
        )
    return TaskResult(
        label or family.name, family.name, num_steps, tuple(results), target, reference
    )


def adam_reference(
    family: TaskFamily,
    adam: Contender,
    keys: jax.Array,
    num_steps: int,
    record_points: int = 50,
    parallel_runs: int = 0,
) -> AdamReference:
    """Adam's grid run for `num_steps` on `keys`; the envelope of its seed-mean curves."""
    runs = grid_runs(family, adam, keys, num_steps, record_points, parallel_runs)
    curves = np.where(np.isfinite(runs.curves), runs.curves, np.inf)  # [G, K, P]
    return AdamReference(np.asarray(runs.steps), np.min(np.mean(curves, axis=1), axis=0))
