"""A task built from a network and input/target arrays held on device.

Every data-backed task (classifiers, autoencoders, regressions) is this one
shape: a minibatch is drawn by indexing the on-device training arrays with
random indices, so sampling runs inside `jit` and under `vmap`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import haiku as hk
import jax
import jax.numpy as jnp

from tasks.base import Task

ExampleFn = Callable[[jax.Array, jax.Array], jax.Array]
Transform = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


def _identity(x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    return x, y


def supervised_task(
    name: str,
    net: hk.Transformed,
    train: tuple[jax.Array, jax.Array],
    test: tuple[jax.Array, jax.Array],
    *,
    batch_size: int,
    eval_size: int,
    validation_size: int = 0,
    per_example_loss: ExampleFn,
    metric_fns: Mapping[str, ExampleFn] | None = None,
    transform: Transform = _identity,
) -> Task:
    """Builds a `Task` that fits `net` to `(inputs, targets)` arrays.

    Args:
      name: the task's registry name.
      net: a pure network; `net.init(key, x)`, `net.apply(params, x)`.
      train: training inputs and targets (leading axis = examples).
      test: held-out inputs and targets, measured by `metrics`.
      batch_size: examples per minibatch, drawn uniformly with replacement.
      eval_size: the first `eval_size` training examples form the fixed set on
        which `eval_loss` is computed (clipped to the training set size).
      validation_size: the last `validation_size` training examples are held out of
        every minibatch and drawn by `sample_validation_batch` (0: no validation split).
      per_example_loss: `(outputs, targets) -> [batch]` losses; the task loss is
        their mean.
      metric_fns: named `(outputs, targets) -> scalar` measurements reported by
        `metrics` on the evaluation and test sets (e.g. accuracy).
      transform: `(x, y) -> (x, y)` applied to every batch and evaluation set;
        this is where a family's per-instance variation (input scaling, label
        permutation) enters without copying the data set per instance.

    Returns:
      The task; its `metrics` returns `test_loss` plus `train_<m>`/`test_<m>` for
      each entry of `metric_fns`.
    """
    x_train, y_train = train
    x_test, y_test = test
    if not 0 <= validation_size < x_train.shape[0]:
        raise ValueError(
            f"{name}: validation_size {validation_size} must leave training examples "
            f"(the training set has {x_train.shape[0]})"
        )
    n_train = x_train.shape[0] - validation_size
    n_eval = min(eval_size, n_train)

    def init(key: jax.Array):
        return net.init(key, transform(x_train[:1], y_train[:1])[0])

    def loss_on(params, x, y) -> jax.Array:
        x, y = transform(x, y)
        return jnp.mean(per_example_loss(net.apply(params, x), y))

    def loss(params, batch) -> jax.Array:
        return loss_on(params, batch["x"], batch["y"])

    def sample_batch(key: jax.Array):
        index = jax.random.randint(key, (batch_size,), 0, n_train)
        return {"x": x_train[index], "y": y_train[index]}

    def sample_validation_batch(key: jax.Array):
        index = n_train + jax.random.randint(key, (batch_size,), 0, validation_size)
        return {"x": x_train[index], "y": y_train[index]}

    def eval_loss(params) -> jax.Array:
        return loss_on(params, x_train[:n_eval], y_train[:n_eval])

    def measure(params, x, y, prefix: str) -> dict[str, jax.Array]:
        x, y = transform(x, y)
        outputs = net.apply(params, x)
        return {f"{prefix}_{key}": fn(outputs, y) for key, fn in (metric_fns or {}).items()}

    def metrics(params) -> dict[str, jax.Array]:
        results = {"test_loss": loss_on(params, x_test, y_test)}
        results.update(measure(params, x_train[:n_eval], y_train[:n_eval], "train"))
        results.update(measure(params, x_test, y_test, "test"))
        return results

    return Task(
        name,
        init,
        loss,
        sample_batch,
        eval_loss,
        metrics,
        sample_validation_batch if validation_size else None,
    )


def log_uniform(key: jax.Array, low: float, high: float) -> jax.Array:
    """A scalar drawn log-uniformly from [low, high] (exactly `low` when equal)."""
    u = jax.random.uniform(key)
    return jnp.exp(jnp.log(low) + u * (jnp.log(high) - jnp.log(low)))
