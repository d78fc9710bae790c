"""Configuration of the v2 learned optimizer, and the one table of its per-coordinate inputs.

No JAX here (configs load without it); the implementation is `meta_opt.lstm_v2`,
the inputs' computation `meta_opt.features`.

References:
  Metz et al., "VeLO: Training versatile learned optimizers by scaling up", 2022;
  learned_optimization's `mlp_lopt.py` / `adafac_mlp_lopt.py`.
  Moudgil et al., "Celo: Training versatile learned optimizers on a compute diet", 2025.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar, Literal, NamedTuple

from meta_opt.architectures import LearnedOptimizerConfig
from meta_opt.lstm_v1_config import check_hidden_sizes


class InputSpec(NamedTuple):
    """One v2 input: what it is, how wide, and how it is treated.

    Attributes:
      name: the name a config lists in `inputs`.
      width: features per coordinate, given the configuration.
      normalized: divided, feature by feature and tensor by tensor, by its RMS over
        the tensor (for inputs that can be large).
      needs_params: computed from the parameter values (`update` must get `params`).
      formula: what it is (t = count + 1; m̂_k, v̂ the bias-corrected moving averages
        of g and g²; `meta_opt.features` computes it).
    """

    name: str
    width: Callable[[LSTMv2Config], int]
    normalized: bool
    needs_params: bool
    formula: str


TENSOR_CONTEXT_WIDTH = 3
# The v2 inputs, in the order their features are concatenated.
INPUT_TABLE: tuple[InputSpec, ...] = (
    InputSpec("log_sign_gradient", lambda c: 2, False, False, "(log|g| / p, sign g), Andrychowicz"),
    InputSpec("momenta", lambda c: len(c.momentum_decays), True, False, "m̂_k, one per decay"),
    InputSpec(
        "rms_normalized",
        lambda c: 1 + len(c.momentum_decays),
        True,
        False,
        "g / sqrt(v̂ + eps) and m̂_k / sqrt(v̂ + eps)",
    ),
    InputSpec(
        "step_embedding",
        lambda c: len(c.step_timescales),
        False,
        False,
        "tanh(count / timescale), one per timescale",
    ),
    InputSpec("horizon_fraction", lambda c: 1, False, False, "count / horizon"),
    InputSpec(
        "tensor_context",
        lambda c: TENSOR_CONTEXT_WIDTH,
        False,
        True,
        "per tensor, broadcast: 0.5 log mean (g / sqrt(v̂ + eps))², 0.5 log mean θ², log size",
    ),
    InputSpec("param", lambda c: 1, True, True, "θ"),
)
INPUTS = tuple(spec.name for spec in INPUT_TABLE)
INPUT_SPECS = {spec.name: spec for spec in INPUT_TABLE}
# What the shipped v2 bundles see: everything but the parameter and the horizon fraction.
DEFAULT_INPUTS = (
    "log_sign_gradient",
    "momenta",
    "rms_normalized",
    "step_embedding",
    "tensor_context",
)


@dataclasses.dataclass(frozen=True)
class LSTMv2Config(LearnedOptimizerConfig):
    """Selectable per-coordinate inputs, two outputs: update = output_scale * d * exp(magnitude_scale * m).

    Still one coordinatewise LSTM (Andrychowicz et al. 2016); what it sees and says
    follows VeLO / learned_optimization (`meta_opt.lstm_v2`).

    Attributes:
      kind: "lstm_v2" (the registry key, `meta_opt.architectures`).
      hidden_sizes: widths of the stacked LSTM layers.
      preprocess_p: the log/sign preprocessing scale p ("log_sign_gradient" needs p > 0).
      output_scale: the update's scale (direction x exp(magnitude) times this).
      inputs: the per-coordinate inputs, names from `INPUT_TABLE` (concatenated in its
        order, whatever the order here).
      momentum_decays: decays of the gradient moving averages, each in [0, 1).
      rms_decay: decay of the moving average v of the squared gradient.
      rms_eps: the epsilon in g / sqrt(v + eps), inside the square root.
      step_timescales: timescales of the "step_embedding" tanh(count / timescale).
      horizon: the inner run's length in steps, for "horizon_fraction".
      magnitude_scale: multiplies the magnitude output inside the exponential.
      relative_update: multiply each tensor's update by max(RMS of that tensor's
        values, `relative_floor`) (Celo's parameter-scaled updates).
      relative_floor: the floor of that scale (> 0).
    """

    kind: Literal["lstm_v2"] = "lstm_v2"
    hidden_sizes: tuple[int, ...] = (20, 20)
    preprocess_p: float | None = 10.0
    output_scale: float = 0.1
    inputs: tuple[str, ...] = DEFAULT_INPUTS
    momentum_decays: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999)
    rms_decay: float = 0.999
    rms_eps: float = 1e-12
    step_timescales: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
    horizon: int | None = None
    magnitude_scale: float = 1.0
    relative_update: bool = False
    relative_floor: float = 1e-3

    implementation: ClassVar[str] = "meta_opt.lstm_v2"

    def __post_init__(self):
        check_hidden_sizes(self.hidden_sizes)
        unknown = [name for name in self.inputs if name not in INPUT_SPECS]
        if unknown or not self.inputs:
            raise ValueError(
                f"inputs: unknown input(s) {unknown} or none; known: {', '.join(INPUTS)}"
            )
        if len(set(self.inputs)) != len(self.inputs):
            raise ValueError(f"inputs: each input at most once, got {self.inputs}")
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
    def summary(self) -> str:
        """One line saying what this optimizer is, for cards and reports."""
        return (
            f"a coordinatewise LSTM (lstm_v2; hidden sizes {list(self.hidden_sizes)}; "
            f"inputs {', '.join(self.inputs)}; output scale {self.output_scale})"
        )

    @property
    def selected(self) -> tuple[InputSpec, ...]:
        """The selected inputs' specs, in concatenation (`INPUT_TABLE`) order."""
        return tuple(spec for spec in INPUT_TABLE if spec.name in self.inputs)

    @property
    def input_widths(self) -> dict[str, int]:
        """Features per coordinate of each selected input, in concatenation order."""
        return {spec.name: spec.width(self) for spec in self.selected}

    @property
    def num_features(self) -> int:
        """Input features per coordinate."""
        return sum(self.input_widths.values())

    @property
    def needs_params(self) -> bool:
        """Whether `update` must be given the parameters (an input of them, or relative_update)."""
        return self.relative_update or any(spec.needs_params for spec in self.selected)
