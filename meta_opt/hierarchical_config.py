"""Configuration of the hierarchical learned optimizer: a per-tensor LSTM over a tiny per-parameter MLP.

No JAX here (configs load without it); the implementation is `meta_opt.hierarchical`.
The two tables below say what each network sees (name, width, formula), in the
order the features are concatenated.

References:
  Metz et al., "VeLO: Training versatile learned optimizers by scaling up", 2022;
  learned_optimization's `hyper_v2.py` (a per-tensor LSTM choosing the weights of
  a per-parameter MLP from a bank, Adam-like per-parameter features).
  Moudgil et al., "Celo: Training versatile learned optimizers on a compute diet",
  2025 (a per-parameter MLP update rule under a learned step-size schedule,
  parameter-scaled updates).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar, Literal, NamedTuple

from meta_opt.architectures import LearnedOptimizerConfig


class Feature(NamedTuple):
    """One group of inputs: its name, width given the configuration, and what it is."""

    name: str
    width: Callable[[HierarchicalConfig], int]
    formula: str


# What the per-parameter MLP sees; every column is divided by its RMS over the tensor
# (learned_optimization's second-moment normalizer), so a scaled loss changes none.
# t = count + 1; m̂_k, v̂ the bias-corrected moving averages of g and g².
PARAMETER_FEATURES: tuple[Feature, ...] = (
    Feature("gradient", lambda c: 1, "g"),
    Feature("momenta", lambda c: len(c.momentum_decays), "m̂_k, one per decay"),
    Feature("rms_normalized", lambda c: 1 + len(c.momentum_decays), "g / √(v̂+ε), m̂_k / √(v̂+ε)"),
    Feature("param", lambda c: int(c.param_feature), "θ (with param_feature)"),
)
# What the per-tensor LSTM sees, one row per tensor (all free of the loss's scale).
TENSOR_FEATURES: tuple[Feature, ...] = (
    Feature("step_embedding", lambda c: len(c.step_timescales), "tanh(count / τ), one per τ"),
    Feature("horizon_fraction", lambda c: int(c.horizon is not None), "count / horizon"),
    Feature(
        "rms_ratios",
        lambda c: 1 + len(c.momentum_decays),
        "½ log mean (g/√(v̂+ε))² and ½ log mean (m̂_k/√(v̂+ε))² over the tensor",
    ),
    Feature("param_scale", lambda c: 1, "½ log mean θ² over the tensor"),
    Feature("log_size", lambda c: 1, "log of the tensor's number of coordinates"),
)


@dataclasses.dataclass(frozen=True)
class HierarchicalConfig(LearnedOptimizerConfig):
    """A per-tensor LSTM that sets the step size and MLP weights of a per-parameter MLP.

    Per tensor, the LSTM (on `TENSOR_FEATURES`) outputs a log step size s and
    logits over a bank of `num_mlps` MLPs; their weights, mixed by the softmax of the
    logits, form the tensor's MLP, applied to each coordinate's `PARAMETER_FEATURES`:

        update = output_scale * exp(s) * d * exp(magnitude_scale * m)  [* max(RMS θ, floor)]

    (d, m the MLP's two outputs; the last factor with `relative_update`). The LSTM
    runs once per tensor, the MLP once per coordinate, so a step costs a few
    hundred FLOP per parameter instead of the coordinatewise LSTMs' ~10,000.

    Attributes:
      kind: "hierarchical" (the registry key, `meta_opt.architectures`).
      mlp_hidden: the per-parameter MLP's hidden width (1 to 8).
      num_mlps: MLPs in the bank the LSTM mixes (1: one MLP, the LSTM sets s only).
      lstm_hidden: the per-tensor LSTM's width.
      momentum_decays: decays of the gradient moving averages, each in [0, 1) (v2's four:
        hyper_v2's 0.9, 0.99, 0.999 and a short 0.5).
      rms_decay: decay of the moving average v of the squared gradient.
      rms_eps: the ε in g / √(v̂ + ε).
      param_feature: whether the MLP sees the parameter value θ.
      step_timescales: the τ of the LSTM's step embedding tanh(count / τ).
      horizon: the inner run's length in steps (adds count / horizon), or None.
      output_scale: the update's scale.
      magnitude_scale: multiplies the magnitude output inside the exponential.
      relative_update: multiply each tensor's update by max(RMS of its values, floor).
      relative_floor: that floor (> 0).
    """

    kind: Literal["hierarchical"] = "hierarchical"
    mlp_hidden: int = 4
    num_mlps: int = 4
    lstm_hidden: int = 32
    momentum_decays: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999)
    rms_decay: float = 0.999
    rms_eps: float = 1e-12
    param_feature: bool = True
    step_timescales: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
    horizon: int | None = None
    output_scale: float = 0.01
    magnitude_scale: float = 1.0
    relative_update: bool = False
    relative_floor: float = 1e-3

    implementation: ClassVar[str] = "meta_opt.hierarchical"

    def __post_init__(self):
        if not 1 <= self.mlp_hidden <= 8:
            raise ValueError(f"mlp_hidden: expected a width from 1 to 8, got {self.mlp_hidden}")
        for name in ("num_mlps", "lstm_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive number, got {getattr(self, name)}")
        decays = self.momentum_decays
        if not decays or not all(0.0 <= d < 1.0 for d in decays) or len(set(decays)) != len(decays):
            raise ValueError(
                f"momentum_decays: expected distinct decays in [0, 1), at least one, got {decays}"
            )
        if not 0.0 <= self.rms_decay < 1.0:
            raise ValueError(f"rms_decay: expected a decay in [0, 1), got {self.rms_decay}")
        for name in ("rms_eps", "relative_floor", "output_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected a positive number, got {getattr(self, name)}")
        if not self.step_timescales or not all(t > 0 for t in self.step_timescales):
            raise ValueError(
                f"step_timescales: expected positive timescales, got {self.step_timescales}"
            )
        if self.horizon is not None and self.horizon <= 0:
            raise ValueError(f"horizon: expected a positive number of steps, got {self.horizon}")

    @property
    def summary(self) -> str:
        """One line saying what this optimizer is, for cards and reports."""
        return (
            f"a per-tensor LSTM over a per-parameter MLP (hierarchical; LSTM width "
            f"{self.lstm_hidden}, {self.num_mlps} MLPs of hidden width {self.mlp_hidden}; "
            f"output scale {self.output_scale})"
        )

    @property
    def num_parameter_features(self) -> int:
        """Inputs of the per-parameter MLP."""
        return sum(f.width(self) for f in PARAMETER_FEATURES)

    @property
    def num_tensor_features(self) -> int:
        """Inputs of the per-tensor LSTM."""
        return sum(f.width(self) for f in TENSOR_FEATURES)

    @property
    def state_floats_per_parameter(self) -> int:
        """Optimizer state per parameter: the momenta and the second moment (Adam: 2)."""
        return len(self.momentum_decays) + 1

    @property
    def needs_params(self) -> bool:
        """Whether `update` must be given the parameters."""
        return True  # the LSTM's param_scale input
