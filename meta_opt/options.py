"""What a config may say about optimizers, checked without importing JAX.

`LSTMOptimizer` is the learned optimizer's configuration (a frozen dataclass that
YAML fills); its `init` and `transformation` import the JAX implementation
(`meta_opt.lstm_optimizer`, or `meta_opt.lstm_v2` when `inputs` is set) only
when called. `HPARAMS` lists, per optimizer
name, the hyperparameters a config may set: `check_hparams` validates an
optimizer section at config-load time, and a test keeps the table a subset of
each factory's real signature.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

FEATURES = ("gradient", "momentum")
# The v2 per-coordinate inputs, in the order their features are concatenated.
INPUTS = (
    "log_sign_gradient",
    "momenta",
    "rms_normalized",
    "step_embedding",
    "horizon_fraction",
    "tensor_context",
    "param",
)
TENSOR_CONTEXT_WIDTH = 3  # log RMS of the RMS-normalized gradient, log RMS of the values, log size
# Fields only v2 reads, with their defaults; a v1 config (empty `inputs`) must leave them as is.
_V2_DEFAULTS: Mapping[str, Any] = {
    "momentum_decays": (0.5, 0.9, 0.99, 0.999),
    "rms_decay": 0.999,
    "rms_eps": 1e-12,
    "step_timescales": (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0),
    "horizon": None,
    "magnitude_scale": 1.0,
    "relative_update": False,
    "relative_floor": 1e-3,
}

_CURVATURE = (
    "learning_rate",
    "damping",
    "update_interval",
    "ema_decay",
    "momentum",
    "nesterov",
    "key",
)
HPARAMS: Mapping[str, tuple[str, ...]] = {
    "sgd": ("learning_rate",),
    "momentum": ("learning_rate", "momentum", "nesterov"),
    "adam": ("learning_rate", "b1", "b2", "eps", "eps_root"),
    "rmsprop": (
        "learning_rate",
        "decay",
        "eps",
        "initial_scale",
        "centered",
        "momentum",
        "nesterov",
    ),
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
        raise TypeError(
            f"optimizer {name!r} has no hyperparameter(s) {unknown}; valid: {sorted(HPARAMS[name])}"
        )
    missing = [k for k in REQUIRED if k not in hparams]
    if missing:
        raise TypeError(f"optimizer {name!r} needs hyperparameter(s) {missing}")


@dataclasses.dataclass(frozen=True)
class LSTMOptimizer:
    """Configuration of the coordinatewise LSTM optimizer (Andrychowicz et al. 2016).

    Version 1 (`inputs` empty, the default) feeds each coordinate the features in
    `features`, and its update is `output_scale` times the LSTM's one output.
    Version 2 (`inputs` non-empty) feeds richer per-coordinate inputs and reads two
    outputs per coordinate, update = output_scale * direction *
    exp(magnitude_scale * magnitude), as VeLO / learned_optimization do
    (`meta_opt.lstm_v2`). The two versions have different states and meta-params.

    Attributes:
      hidden_sizes: widths of the stacked LSTM layers.
      preprocess_p: the log/sign preprocessing scale p; None or 0 feeds raw values
        (v1); v2's "log_sign_gradient" input needs p > 0.
      output_scale: the update is the LSTM output (v2: direction x exp(magnitude))
        times this (the paper: 0.1).
      features: v1 only: which inputs each coordinate sees, from "gradient" and
        "momentum" (a moving average of the gradient with decay `momentum_decay`).
      momentum_decay: v1 only: decay of the gradient moving average.
      inputs: v2: the per-coordinate inputs, names from `INPUTS` (concatenated in
        `INPUTS` order, whatever the order here); empty selects v1. See
        `meta_opt.features` for their formulas.
      momentum_decays: v2: decays of the gradient moving averages ("momenta",
        "rms_normalized"), each in [0, 1).
      rms_decay: v2: decay of the moving average v of the squared gradient.
      rms_eps: v2: the epsilon in g / sqrt(v + eps), inside the square root.
      step_timescales: v2: timescales of the "step_embedding" tanh(count / timescale).
      horizon: v2: the inner run's length in steps, for "horizon_fraction".
      magnitude_scale: v2: multiplies the magnitude output inside the exponential.
      relative_update: v2: multiply each tensor's update by max(RMS of that
        tensor's values, `relative_floor`).
      relative_floor: v2: the floor of that scale (> 0).
    """

    hidden_sizes: tuple[int, ...] = (20, 20)
    preprocess_p: float | None = 10.0
    output_scale: float = 0.1
    features: tuple[str, ...] = ("gradient",)
    momentum_decay: float = 0.9
    inputs: tuple[str, ...] = ()
    momentum_decays: tuple[float, ...] = _V2_DEFAULTS["momentum_decays"]
    rms_decay: float = _V2_DEFAULTS["rms_decay"]
    rms_eps: float = _V2_DEFAULTS["rms_eps"]
    step_timescales: tuple[float, ...] = _V2_DEFAULTS["step_timescales"]
    horizon: int | None = _V2_DEFAULTS["horizon"]
    magnitude_scale: float = _V2_DEFAULTS["magnitude_scale"]
    relative_update: bool = _V2_DEFAULTS["relative_update"]
    relative_floor: float = _V2_DEFAULTS["relative_floor"]

    def __post_init__(self):
        unknown = sorted(set(self.features) - set(FEATURES))
        if unknown or not self.features:
            raise ValueError(
                f"features must be a non-empty subset of {FEATURES}, got {self.features}"
            )
        if not self.hidden_sizes or min(self.hidden_sizes) <= 0:
            raise ValueError(f"hidden_sizes must be positive widths, got {self.hidden_sizes}")
        if self.inputs:
            self._check_v2()
        else:
            changed = [k for k, v in _V2_DEFAULTS.items() if getattr(self, k) != v]
            if changed:
                raise ValueError(
                    f"{', '.join(changed)}: only used by the v2 optimizer; "
                    f"set inputs (from {INPUTS}) or leave them at their defaults"
                )

    def _check_v2(self):
        unknown = [name for name in self.inputs if name not in INPUTS]
        if unknown:
            raise ValueError(f"inputs: unknown input(s) {unknown}; known: {', '.join(INPUTS)}")
        if len(set(self.inputs)) != len(self.inputs):
            raise ValueError(f"inputs: each input at most once, got {self.inputs}")
        for name in ("features", "momentum_decay"):
            if getattr(self, name) != LSTMOptimizer.__dataclass_fields__[name].default:
                raise ValueError(
                    f"{name}: v1 only; with inputs set use 'momenta' and momentum_decays"
                )
        if "log_sign_gradient" in self.inputs and not (self.preprocess_p and self.preprocess_p > 0):
            raise ValueError(
                f"preprocess_p: input 'log_sign_gradient' needs p > 0, got {self.preprocess_p}"
            )
        decays = self.momentum_decays
        if not decays or not all(0.0 <= d < 1.0 for d in decays) or len(set(decays)) != len(decays):
            raise ValueError(
                f"momentum_decays must be distinct decays in [0, 1), at least one, got {decays}"
            )
        if not 0.0 <= self.rms_decay < 1.0:
            raise ValueError(f"rms_decay must be in [0, 1), got {self.rms_decay}")
        if not self.rms_eps > 0:
            raise ValueError(f"rms_eps must be positive, got {self.rms_eps}")
        if not self.step_timescales or not all(t > 0 for t in self.step_timescales):
            raise ValueError(
                f"step_timescales must be positive, at least one, got {self.step_timescales}"
            )
        if self.horizon is not None and self.horizon <= 0:
            raise ValueError(
                f"horizon must be a positive number of steps or None, got {self.horizon}"
            )
        if "horizon_fraction" in self.inputs and self.horizon is None:
            raise ValueError(
                "horizon: input 'horizon_fraction' needs a horizon (the run's length in steps)"
            )
        if not self.relative_floor > 0:
            raise ValueError(f"relative_floor must be positive, got {self.relative_floor}")

    @property
    def version(self) -> int:
        """1 for the 2016 optimizer (`inputs` empty), 2 for the richer-input one."""
        return 2 if self.inputs else 1

    @property
    def input_widths(self) -> dict[str, int]:
        """v2: features per coordinate of each selected input, in concatenation order."""
        k = len(self.momentum_decays)
        width = {
            "log_sign_gradient": 2,
            "momenta": k,
            "rms_normalized": 1 + k,
            "step_embedding": len(self.step_timescales),
            "horizon_fraction": 1,
            "tensor_context": TENSOR_CONTEXT_WIDTH,
            "param": 1,
        }
        return {name: width[name] for name in INPUTS if name in self.inputs}

    @property
    def num_features(self) -> int:
        """Input features per coordinate."""
        if self.inputs:
            return sum(self.input_widths.values())
        return len(self.features) * (2 if self.preprocess_p else 1)

    def init(self, key):
        """Fresh meta-parameters (the LSTM and head weights); see `meta_opt.lstm_optimizer`
        (v1) and `meta_opt.lstm_v2` (v2)."""
        if self.inputs:
            from meta_opt.lstm_v2 import init_meta_params_v2  # JAX, only when used

            return init_meta_params_v2(self, key)
        from meta_opt.lstm_optimizer import init_meta_params  # JAX, only when used

        return init_meta_params(self, key)

    def transformation(self, meta_params):
        """The optax transformation that applies this optimizer with `meta_params`.

        Works for any params pytree, under `jit` and `vmap`, and is differentiable
        with respect to `meta_params`. v2 with "tensor_context", "param" or
        `relative_update` needs `params` passed to `update`.
        """
        if self.inputs:
            from meta_opt.lstm_v2 import lstm_v2_transformation  # JAX, only when used

            return lstm_v2_transformation(self, meta_params)
        from meta_opt.lstm_optimizer import lstm_transformation  # JAX, only when used

        return lstm_transformation(self, meta_params)
