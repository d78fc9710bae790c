"""What a config may say about optimizers, checked without importing JAX.

`BASELINE_TABLE` is the one list of baseline (hand-designed) optimizers: per
name, the hyperparameters a config may set, the ones an evaluation tunes, and
whether its schedule needs the run's length. `check_hparams` validates an
optimizer section at config-load time, and a test keeps the table a subset of
each factory's real signature (`meta_opt.registry.OPTIMIZERS`). The learned
optimizers' configurations are `meta_opt.architectures` (one class per `kind`);
their names are re-exported here for code written before the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from meta_opt.architectures import LearnedOptimizerConfig, architecture_from_fields
from meta_opt.lstm_v1_config import FEATURES, LSTMv1Config
from meta_opt.lstm_v2_config import INPUTS, TENSOR_CONTEXT_WIDTH, LSTMv2Config

__all__ = [
    "FEATURES",
    "BASELINES",
    "BASELINE_TABLE",
    "Baseline",
    "HPARAMS",
    "INPUTS",
    "REQUIRED",
    "TENSOR_CONTEXT_WIDTH",
    "LSTMOptimizer",
    "LSTMv1Config",
    "LSTMv2Config",
    "LearnedOptimizerConfig",
    "check_hparams",
]


class Baseline(NamedTuple):
    """One hand-designed optimizer a config may name, as data.

    Attributes:
      name: its name (`meta_opt.registry.OPTIMIZERS` holds its factory under it).
      hparams: the hyperparameters a config may set (a subset of the factory's arguments).
      tuned: the hyperparameters an evaluation searches, jointly (the product of their
        grids; `EvaluationConfig.grids` says which values).
      needs_run_length: its schedule needs the run's length, passed as `decay_steps`.
    """

    name: str
    hparams: tuple[str, ...]
    tuned: tuple[str, ...] = ("learning_rate",)
    needs_run_length: bool = False


_CURVATURE = (
    "learning_rate",
    "damping",
    "update_interval",
    "ema_decay",
    "momentum",
    "nesterov",
    "key",
)
_RMSPROP = ("learning_rate", "decay", "eps", "initial_scale", "centered", "momentum", "nesterov")
BASELINE_TABLE: tuple[Baseline, ...] = (
    Baseline("adam", ("learning_rate", "b1", "b2", "eps", "eps_root")),
    Baseline("rmsprop", _RMSPROP),
    Baseline("momentum", ("learning_rate", "momentum", "nesterov")),
    Baseline("esgd", _CURVATURE, tuned=("learning_rate", "damping")),
    Baseline("jacobi", _CURVATURE, tuned=("learning_rate", "damping")),
    Baseline("sgd", ("learning_rate",)),
    Baseline("rmsprop_bc", ("learning_rate", "decay", "eps")),
    Baseline("adam_cosine", ("learning_rate", "decay_steps"), needs_run_length=True),
)
BASELINES: Mapping[str, Baseline] = {b.name: b for b in BASELINE_TABLE}
HPARAMS: Mapping[str, tuple[str, ...]] = {b.name: b.hparams for b in BASELINE_TABLE}
REQUIRED = ("learning_rate",)


def check_hparams(name: str, hparams: Mapping[str, Any]) -> None:
    """Checks an optimizer's name and hyperparameter names against `HPARAMS`.

    The learned optimizer ("lstm") is built from a checkpoint, never from a config
    section, so it is not accepted here.

    Raises:
      KeyError: an unknown optimizer name (the message lists the known ones).
      TypeError: an unknown or missing hyperparameter, named.
    """
    if name not in HPARAMS:
        raise KeyError(f"unknown optimizer {name!r}; known: {', '.join(sorted(HPARAMS))}")
    unknown = sorted(set(hparams) - set(HPARAMS[name]))
    if unknown:
        raise TypeError(
            f"optimizer {name!r} has no hyperparameter(s) {unknown}; valid: {sorted(HPARAMS[name])}"
        )
    missing = [k for k in REQUIRED if k not in hparams]
    if missing:
        raise TypeError(f"optimizer {name!r} needs hyperparameter(s) {missing}")


def LSTMOptimizer(**fields: Any) -> LearnedOptimizerConfig:  # noqa: N802 (the old class's name)
    """A v1 or v2 configuration from the fields of the pre-registry `LSTMOptimizer` class.

    Non-empty `inputs` selects `LSTMv2Config`, else `LSTMv1Config`; a field of the other
    version set away from its default is refused, as the class did. New code names the
    class (or passes `kind`); this stays for code and data written before the registry.

    Raises:
      ValueError: a field of the other version, or an invalid value, named.
    """
    return architecture_from_fields(fields)
