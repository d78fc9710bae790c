"""What a config may say about optimizers, checked without importing JAX.

`LSTMOptimizer` is the learned optimizer's configuration (a frozen dataclass that
YAML fills); its `init` and `transformation` import the JAX implementation
(`meta_opt.lstm_optimizer`) only when called. `HPARAMS` lists, per optimizer
name, the hyperparameters a config may set: `check_hparams` validates an
optimizer section at config-load time, and a test keeps the table a subset of
each factory's real signature.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

FEATURES = ("gradient", "momentum")

_CURVATURE = ("learning_rate", "damping", "update_interval", "ema_decay", "momentum", "nesterov", "key")
HPARAMS: Mapping[str, tuple[str, ...]] = {
    "sgd": ("learning_rate",),
    "momentum": ("learning_rate", "momentum", "nesterov"),
    "adam": ("learning_rate", "b1", "b2", "eps", "eps_root"),
    "rmsprop": ("learning_rate", "decay", "eps", "initial_scale", "centered", "momentum", "nesterov"),
    "esgd": _CURVATURE,
    "jacobi": _CURVATURE,
    "rmsprop_bc": ("learning_rate", "decay", "eps"),
    "adam_cosine": ("learning_rate", "decay_steps"),
}
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
        raise TypeError(f"optimizer {name!r} has no hyperparameter(s) {unknown}; "
                        f"valid: {sorted(HPARAMS[name])}")
    missing = [k for k in REQUIRED if k not in hparams]
    if missing:
        raise TypeError(f"optimizer {name!r} needs hyperparameter(s) {missing}")


@dataclasses.dataclass(frozen=True)
class LSTMOptimizer:
    """Configuration of the coordinatewise LSTM optimizer (Andrychowicz et al. 2016).

    Attributes:
      hidden_sizes: widths of the stacked LSTM layers.
      preprocess_p: the log/sign preprocessing scale p; None or 0 feeds raw values.
      output_scale: the update is the LSTM output times this (the paper: 0.1).
      features: which inputs each coordinate sees, from "gradient" and "momentum"
        (a moving average of the gradient with decay `momentum_decay`).
      momentum_decay: decay of the gradient moving average.
    """

    hidden_sizes: tuple[int, ...] = (20, 20)
    preprocess_p: float | None = 10.0
    output_scale: float = 0.1
    features: tuple[str, ...] = ("gradient",)
    momentum_decay: float = 0.9

    def __post_init__(self):
        unknown = sorted(set(self.features) - set(FEATURES))
        if unknown or not self.features:
            raise ValueError(f"features must be a non-empty subset of {FEATURES}, got {self.features}")
        if not self.hidden_sizes or min(self.hidden_sizes) <= 0:
            raise ValueError(f"hidden_sizes must be positive widths, got {self.hidden_sizes}")

    @property
    def num_features(self) -> int:
        """Input features per coordinate."""
        return len(self.features) * (2 if self.preprocess_p else 1)

    def init(self, key):
        """Fresh meta-parameters (the LSTM and head weights); see `meta_opt.lstm_optimizer`."""
        from meta_opt.lstm_optimizer import init_meta_params  # JAX, only when used

        return init_meta_params(self, key)

    def transformation(self, meta_params):
        """The optax transformation that applies this optimizer with `meta_params`.

        Works for any params pytree, under `jit` and `vmap`, and is differentiable
        with respect to `meta_params`.
        """
        from meta_opt.lstm_optimizer import lstm_transformation  # JAX, only when used

        return lstm_transformation(self, meta_params)
