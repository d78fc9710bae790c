"""Optimizers by name, so configs and the command line can choose them.

Every optimizer is returned with extra-argument support, so a training loop can
always call `update(grads, state, params, value_fn=f)`: ESGD and Jacobi use the
objective, the others ignore it.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Mapping
from typing import Any

import optax

from meta_opt.curvature import esgd, jacobi
from meta_opt.lstm_optimizer import lstm_optimizer
from meta_opt.options import BASELINE_TABLE


def momentum(
    learning_rate: optax.ScalarOrSchedule, momentum: float = 0.9, nesterov: bool = False
) -> optax.GradientTransformation:
    """SGD with heavy-ball (or Nesterov) momentum."""
    return optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov)


def sgd(learning_rate: optax.ScalarOrSchedule) -> optax.GradientTransformation:
    """Plain stochastic gradient descent."""
    return optax.sgd(learning_rate)


def rmsprop_bc(
    learning_rate: optax.ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8
) -> optax.GradientTransformation:
    """RMSProp with the second-moment estimate bias-corrected (divided by 1 - decay^t), as Adam does.

    Plain RMSProp starts its average at zero, so its first steps are up to 1/sqrt(1 - decay)
    (about 3.2x at decay 0.9) larger than later ones; the correction removes that warm-up
    burst, which otherwise favours small tuned learning rates on short runs.
    """
    return optax.rmsprop(learning_rate, decay=decay, eps=eps, bias_correction=True)


def adam_cosine(learning_rate: float, decay_steps: int) -> optax.GradientTransformation:
    """Adam with its learning rate decayed to zero over `decay_steps` by a cosine (the run's length)."""
    return optax.adam(optax.cosine_decay_schedule(learning_rate, decay_steps))


# Optimizers whose schedule needs the run's length: baselines pass it as `decay_steps`.
NEEDS_RUN_LENGTH = frozenset(b.name for b in BASELINE_TABLE if b.needs_run_length)

OPTIMIZERS: Mapping[str, Callable[..., optax.GradientTransformation]] = types.MappingProxyType(
    {
        "sgd": sgd,
        "momentum": momentum,
        "adam": optax.adam,
        "rmsprop": optax.rmsprop,
        "rmsprop_bc": rmsprop_bc,
        "adam_cosine": adam_cosine,
        "esgd": esgd,
        "jacobi": jacobi,
        "lstm": lstm_optimizer,
    }
)


def list_optimizers() -> list[str]:
    """Names accepted by `get_optimizer`, sorted."""
    return sorted(OPTIMIZERS)


def get_optimizer(name: str, **hparams: Any) -> optax.GradientTransformationExtraArgs:
    """Builds optimizer `name` with hyperparameters `hparams`.

    Args:
      name: one of `list_optimizers()`.
      **hparams: keyword arguments of that optimizer's factory (`learning_rate`
        for all but "lstm", which takes `meta_params` and an architecture's fields, `kind` optional).

    Returns:
      The optimizer, accepting (and possibly ignoring) extra update arguments.

    Raises:
      KeyError: unknown name. TypeError: unknown or missing hyperparameters, named.
    """
    if name not in OPTIMIZERS:
        raise KeyError(f"unknown optimizer {name!r}; known: {', '.join(list_optimizers())}")
    factory = OPTIMIZERS[name]
    signature = inspect.signature(factory)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    if not accepts_any:
        unknown = sorted(set(hparams) - set(signature.parameters))
        if unknown:
            raise TypeError(
                f"optimizer {name!r} has no hyperparameter(s) {unknown}; "
                f"valid: {sorted(signature.parameters)}"
            )
    try:
        signature.bind(**hparams)
    except TypeError as error:
        raise TypeError(f"optimizer {name!r}: {error}") from None
    return optax.with_extra_args_support(factory(**hparams))
