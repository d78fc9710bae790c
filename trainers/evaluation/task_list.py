"""Which tasks an evaluation covers: the configured ones, extra names, generalization variants."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import tasks.registry
from trainers.config.evaluation_section import EvalTaskConfig, EvaluationConfig


def real_mnist_dir(data_dir: str | None) -> str | None:
    """The data folder if it holds the real MNIST test images (`tasks.data.resolve_data_dir`), else None."""
    from tasks.data import DataFileError, resolve_data_dir
    from tasks.data.mnist import TEST_IMAGES, find_file

    root = resolve_data_dir(data_dir)
    try:
        find_file(TEST_IMAGES, root)
    except DataFileError:
        return None
    return str(root)


def _fit_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `options` that task family `name` accepts (same architecture, other data)."""
    fields = {f.name for f in dataclasses.fields(tasks.registry.options_type(name))}
    return {k: v for k, v in options.items() if k in fields}


def resolve_tasks(
    evaluation: EvaluationConfig,
    train_task_name: str,
    train_options: Mapping[str, Any],
    horizon: int,
    extra_names: Sequence[str] = (),
    data_dir: str | None = None,
) -> list[EvalTaskConfig]:
    """The tasks to evaluate on, with options and steps filled in.

    Args:
      evaluation: the `evaluation` section.
      train_task_name, train_options: the task the optimizer was meta-trained on.
      horizon: the meta-training horizon H (the default number of steps).
      extra_names: task names from the command line; each gets the training task's
        options that its family accepts (the same network on other data).
      data_dir: the run's data folder, where the generalization tests look for real
        MNIST (None: `$META_OPT_DATA` or the cache, as every loader resolves it).

    Returns:
      The configured tasks (or the training task), then `extra_names`, then, with
      `evaluation.generalization`, the generalization variants.
    """
    steps = evaluation.steps or horizon
    base = dict(train_options)
    listed = list(evaluation.tasks) or (
        [] if extra_names else [EvalTaskConfig(train_task_name, base, None, train_task_name)]
    )
    listed += [
        EvalTaskConfig(
            name, _fit_options(name, base) if name != train_task_name else base, None, name
        )
        for name in extra_names
    ]
    resolved = [
        dataclasses.replace(t, steps=t.steps or steps, label=t.label or t.name) for t in listed
    ]
    if evaluation.generalization:
        resolved += generalization_tasks(train_task_name, base, steps, real_mnist_dir(data_dir))
    return resolved


def generalization_tasks(
    name: str, options: Mapping[str, Any], steps: int, mnist_dir: str | None = None
) -> list[EvalTaskConfig]:
    """Andrychowicz et al. (2016) generalization tests of an MLP task.

    Beyond the horizon (2x, 10x steps), a wider network (2x units), a deeper one
    (one more hidden layer of the same width), ReLU instead of the training
    activation, and `mnist_mlp` on the real MNIST test set when `mnist_dir` is given
    (`real_mnist_dir`).
    Families without `hidden_sizes`/`activation` options get only the longer runs.
    """
    fields = {f.name for f in dataclasses.fields(tasks.registry.options_type(name))}
    defaults = tasks.registry.make_options(name, {})
    sizes = tuple(options.get("hidden_sizes", getattr(defaults, "hidden_sizes", ())))
    activation = options.get("activation", getattr(defaults, "activation", None))
    variants = [
        EvalTaskConfig(name, dict(options), 2 * steps, f"{name} 2x steps"),
        EvalTaskConfig(name, dict(options), 10 * steps, f"{name} 10x steps"),
    ]
    if "hidden_sizes" in fields and sizes:
        variants.append(
            EvalTaskConfig(
                name,
                {**options, "hidden_sizes": [2 * s for s in sizes]},
                steps,
                f"{name} wider ({'-'.join(str(2 * s) for s in sizes)})",
            )
        )
        deeper = [*sizes, sizes[-1]]
        variants.append(
            EvalTaskConfig(
                name,
                {**options, "hidden_sizes": deeper},
                steps,
                f"{name} deeper ({'-'.join(map(str, deeper))})",
            )
        )
    if "activation" in fields and activation != "relu":
        variants.append(
            EvalTaskConfig(name, {**options, "activation": "relu"}, steps, f"{name} relu")
        )
    if mnist_dir is not None and name != "mnist_mlp":
        mnist = {**_fit_options("mnist_mlp", options), "data_dir": mnist_dir, "source": "test_only"}
        variants.append(
            EvalTaskConfig("mnist_mlp", mnist, steps, "mnist_mlp (real MNIST test set)")
        )
    return variants
