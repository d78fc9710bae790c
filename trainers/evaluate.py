"""Learned optimizers against tuned baselines on held-out seeds: `meta-opt evaluate`.

Fairness rules, in one place:
  * every baseline's learning rate (and ESGD's / Jacobi's damping) is the best of a
    log grid on separate *tuning* seeds, for the same number of steps as the
    reported runs; the chosen values are reported, with a flag when one sits at
    the edge of its grid;
  * all optimizers then run on the same *held-out* seeds (instance, initialization
    and minibatches are equal across optimizers: a paired comparison);
  * evaluation keys are folded with their own tag, so they never coincide with
    the keys meta-training drew its instances from.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import pathlib
from typing import Any, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import meta_opt
import tasks
from tasks.base import TaskFamily
from trainers.eval_config import EvalTaskConfig, EvaluationConfig
from trainers.trajectories import BuildOptimizer, Trajectories, run_grid

# Folded into the root key of every evaluation, so evaluation seeds differ from training seeds.
EVALUATION_TAG = 0x5EED_E7A1
TUNING, HELD_OUT = 0, 1
SHARED_MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@dataclasses.dataclass(frozen=True)
class Contender:
    """An optimizer in the comparison.

    Attributes:
      label: its name in tables and plots.
      build: hyperparameters -> optimizer (traced; see `trainers.trajectories`).
      grid: tuned hyperparameter -> values, all of length G (the settings tried);
        empty for a learned optimizer, which is not tuned.
      learned: a meta-trained optimizer (not a baseline).
    """

    label: str
    build: BuildOptimizer
    grid: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    learned: bool = False


def baseline(name: str, learning_rates: Sequence[float], dampings: Sequence[float] = (1e-4,)) -> Contender:
    """A baseline from `meta_opt.get_optimizer` with its tuning grid.

    ESGD and Jacobi are tuned over learning rate x damping; the others over the learning
    rate. "momentum" is SGD with heavy-ball momentum 0.9; the rest use optax's defaults.
    """
    if name in ("esgd", "jacobi"):
        pairs = list(itertools.product(learning_rates, dampings))
        grid = {"learning_rate": np.array([p[0] for p in pairs], np.float32),
                "damping": np.array([p[1] for p in pairs], np.float32)}
    else:
        grid = {"learning_rate": np.asarray(learning_rates, np.float32)}
    return Contender(name, lambda hparams: meta_opt.get_optimizer(name, **hparams), grid)


def learned_contender(label: str, lstm: meta_opt.LSTMOptimizer, meta_params: Any) -> Contender:
    """A meta-trained LSTM optimizer (its weights are constants of the traced run)."""
    return Contender(label, lambda hparams: lstm.transformation(meta_params), {}, learned=True)


@dataclasses.dataclass(frozen=True)
class Tuning:
    """A grid search: every setting's mean final training loss on the tuning seeds.

    Attributes:
      grid: hyperparameter -> the G values tried.
      scores: mean final training loss per setting, [G] (inf where a seed diverged).
      best: the index of the chosen setting (the first of equal scores).
    """

    grid: Mapping[str, np.ndarray]
    scores: np.ndarray
    best: int

    @property
    def chosen(self) -> dict[str, float]:
        return {name: float(values[self.best]) for name, values in self.grid.items()}

    def at_edge(self) -> list[str]:
        """The hyperparameters whose chosen value is the smallest or largest of a grid of 2+ values."""
        return [name for name, values in self.grid.items()
                if len(set(values.tolist())) > 1 and values[self.best] in (values.min(), values.max())]


def tuning_score(final_losses: np.ndarray) -> np.ndarray:
    """Mean over seeds (last axis) of final losses; inf where any seed is not finite."""
    finite = np.all(np.isfinite(final_losses), axis=-1)
    return np.where(finite, np.mean(np.where(np.isfinite(final_losses), final_losses, 0.0), axis=-1),
                    np.inf)


def tune(family: TaskFamily, contender: Contender, keys: jax.Array, num_steps: int,
         record_points: int = 50) -> Tuning:
    """Runs the contender's whole grid on the tuning seeds and picks the lowest mean final loss."""
    runs = run_grid(family, contender.build, {k: jnp.asarray(v) for k, v in contender.grid.items()},
                    keys, num_steps, record_points)
    scores = tuning_score(runs.final_losses)
    return Tuning({k: np.asarray(v) for k, v in contender.grid.items()}, scores, int(np.argmin(scores)))


@dataclasses.dataclass(frozen=True)
class ContenderResult:
    """One optimizer on one task: its held-out runs and, for a baseline, its tuning."""

    label: str
    learned: bool
    runs: Trajectories  # leading axes [1, K]
    tuning: Optional[Tuning] = None

    @property
    def final_losses(self) -> np.ndarray:
        """Final training loss per held-out seed, [K]."""
        return self.runs.final_losses[0]

    @property
    def chosen(self) -> dict[str, float]:
        return self.tuning.chosen if self.tuning else {}


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """Every contender on one task (same held-out seeds), and the target loss."""

    label: str
    task: str
    num_steps: int
    results: tuple[ContenderResult, ...]
    target_loss: float


def evaluation_keys(seed: int, task_index: int, tuning_seeds: int, seeds: int) -> tuple[jax.Array, jax.Array]:
    """`(tuning keys [tuning_seeds], held-out keys [seeds])` of one task, disjoint streams."""
    root = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), EVALUATION_TAG), task_index)
    return (jax.random.split(jax.random.fold_in(root, TUNING), tuning_seeds),
            jax.random.split(jax.random.fold_in(root, HELD_OUT), seeds))


def default_target(results: Sequence[ContenderResult]) -> float:
    """The worst tuned baseline's mean final loss (every baseline reaches it on average)."""
    pool = [r for r in results if not r.learned] or list(results)
    means = [float(np.mean(r.final_losses)) for r in pool]
    finite = [m for m in means if math.isfinite(m)]
    return max(finite) if finite else math.nan


def evaluate_task(family: TaskFamily, contenders: Sequence[Contender], num_steps: int, *,
                  tuning_keys: jax.Array, held_out_keys: jax.Array, label: str = "",
                  record_points: int = 50, target_loss: Optional[float] = None,
                  on_contender=None) -> TaskResult:
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
    """
    results = []
    for contender in contenders:
        tuning = None
        hparams: dict[str, jax.Array] = {}
        if contender.grid:
            tuning = tune(family, contender, tuning_keys, num_steps, record_points)
            hparams = {k: jnp.asarray(v)[None] for k, v in tuning.chosen.items()}
        runs = run_grid(family, contender.build, hparams, held_out_keys, num_steps, record_points)
        results.append(ContenderResult(contender.label, contender.learned, runs, tuning))
        if on_contender is not None:
            on_contender(contender.label)
    target = default_target(results) if target_loss is None else float(target_loss)
    return TaskResult(label or family.name, family.name, num_steps, tuple(results), target)


# ---------------------------------------------------------------------------------------------
# Summaries


def mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard error (sample std / sqrt(n)) of a 1-D array; SE is nan for n < 2."""
    values = np.asarray(values, np.float64)
    se = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else math.nan
    return float(np.mean(values)), se


def steps_to_target(steps: np.ndarray, curves: np.ndarray, target: float) -> np.ndarray:
    """Per run, the first recorded step whose training loss is <= target; nan if never. curves [K, P]."""
    reached = curves <= target
    first = np.argmax(reached, axis=-1)
    return np.where(reached.any(axis=-1), steps[first].astype(np.float64), np.nan)


def summarize(task: TaskResult) -> list[dict[str, Any]]:
    """One row per contender: final loss, test metrics, steps to target (mean, SE) and chosen values."""
    rows = []
    for result in task.results:
        final = result.final_losses
        finite = np.isfinite(final)
        row: dict[str, Any] = {"optimizer": result.label, "learned": result.learned,
                               "diverged": int(np.sum(~finite)), "seeds": int(final.size)}
        row["final_loss"] = mean_and_se(final)
        for name in ("test_loss", "test_accuracy"):
            if name in result.runs.metrics:
                row[name] = mean_and_se(result.runs.metrics[name][0])
        hits = steps_to_target(result.runs.steps, result.runs.curves[0], task.target_loss)
        row["reached_target"] = int(np.sum(np.isfinite(hits)))
        row["steps_to_target"] = mean_and_se(hits[np.isfinite(hits)]) if np.isfinite(hits).any() \
            else (math.nan, math.nan)
        row["chosen"] = result.chosen
        row["at_edge"] = result.tuning.at_edge() if result.tuning else []
        rows.append(row)
    return rows


def best_baseline(task: TaskResult) -> Optional[ContenderResult]:
    """The baseline with the lowest mean final training loss (None without baselines)."""
    baselines = [r for r in task.results if not r.learned]
    if not baselines:
        return None
    return min(baselines, key=lambda r: tuning_score(r.final_losses[None])[0])


# ---------------------------------------------------------------------------------------------
# Which tasks


def _fit_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `options` that task family `name` accepts (same architecture, other data)."""
    fields = {f.name for f in dataclasses.fields(tasks.options_type(name))}
    return {k: v for k, v in options.items() if k in fields}


def resolve_tasks(evaluation: EvaluationConfig, train_task_name: str, train_options: Mapping[str, Any],
                  horizon: int, extra_names: Sequence[str] = ()) -> list[EvalTaskConfig]:
    """The tasks to evaluate on, with options and steps filled in.

    Args:
      evaluation: the `evaluation` section.
      train_task_name, train_options: the task the optimizer was meta-trained on.
      horizon: the meta-training horizon H (the default number of steps).
      extra_names: task names from the command line; each gets the training task's
        options that its family accepts (the same network on other data).

    Returns:
      The configured tasks (or the training task), then `extra_names`, then, with
      `evaluation.generalization`, the generalization variants.
    """
    steps = evaluation.steps or horizon
    base = dict(train_options)
    listed = list(evaluation.tasks) or ([] if extra_names else
                                        [EvalTaskConfig(train_task_name, base, None, train_task_name)])
    listed += [EvalTaskConfig(name, _fit_options(name, base) if name != train_task_name else base,
                              None, name) for name in extra_names]
    resolved = [dataclasses.replace(t, steps=t.steps or steps, label=t.label or t.name) for t in listed]
    if evaluation.generalization:
        resolved += generalization_tasks(train_task_name, base, steps)
    return resolved


def generalization_tasks(name: str, options: Mapping[str, Any], steps: int,
                         mnist_dir: pathlib.Path = SHARED_MNIST) -> list[EvalTaskConfig]:
    """Andrychowicz et al. (2016) generalization tests of an MLP task.

    Beyond the horizon (2x, 10x steps), a wider network (2x units), a deeper one
    (one more hidden layer of the same width), ReLU instead of the training
    activation, and `mnist_mlp` on the real MNIST test set when `mnist_dir` holds it.
    Families without `hidden_sizes`/`activation` options get only the longer runs.
    """
    fields = {f.name for f in dataclasses.fields(tasks.options_type(name))}
    defaults = tasks.make_options(name, {})
    sizes = tuple(options.get("hidden_sizes", getattr(defaults, "hidden_sizes", ())))
    activation = options.get("activation", getattr(defaults, "activation", None))
    variants = [EvalTaskConfig(name, dict(options), 2 * steps, f"{name} 2x steps"),
                EvalTaskConfig(name, dict(options), 10 * steps, f"{name} 10x steps")]
    if "hidden_sizes" in fields and sizes:
        variants.append(EvalTaskConfig(name, {**options, "hidden_sizes": [2 * s for s in sizes]}, steps,
                                       f"{name} wider ({'-'.join(str(2 * s) for s in sizes)})"))
        deeper = [*sizes, sizes[-1]]
        variants.append(EvalTaskConfig(name, {**options, "hidden_sizes": deeper}, steps,
                                       f"{name} deeper ({'-'.join(map(str, deeper))})"))
    if "activation" in fields and activation != "relu":
        variants.append(EvalTaskConfig(name, {**options, "activation": "relu"}, steps, f"{name} relu"))
    if (mnist_dir / "t10k-images-idx3-ubyte.gz").exists() and name != "mnist_mlp":
        mnist = {**_fit_options("mnist_mlp", options), "data_dir": str(mnist_dir), "source": "test_only"}
        variants.append(EvalTaskConfig("mnist_mlp", mnist, steps, "mnist_mlp (real MNIST test set)"))
    return variants
