"""Configuration of the v1 learned optimizer: the coordinatewise LSTM of Andrychowicz et al. (2016).

No JAX here (configs load without it); the implementation is `meta_opt.lstm_optimizer`.

References:
  Andrychowicz et al., "Learning to learn by gradient descent by gradient
  descent", NeurIPS 2016.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from meta_opt.architectures import LearnedOptimizerConfig

FEATURES = ("gradient", "momentum")


@dataclasses.dataclass(frozen=True)
class LSTMv1Config(LearnedOptimizerConfig):
    """The 2016 optimizer: each coordinate's features through one shared LSTM, one output.

    The update is `output_scale` times the LSTM's output.

    Attributes:
      kind: "lstm_v1" (the registry key, `meta_opt.architectures`).
      hidden_sizes: widths of the stacked LSTM layers.
      preprocess_p: the log/sign preprocessing scale p; None or 0 feeds raw values.
      output_scale: the update is the LSTM output times this (the paper: 0.1).
      features: which inputs each coordinate sees, from "gradient" and "momentum" (a
        moving average of the gradient with decay `momentum_decay`).
      momentum_decay: decay of the gradient moving average.
    """

    kind: Literal["lstm_v1"] = "lstm_v1"
    hidden_sizes: tuple[int, ...] = (20, 20)
    preprocess_p: float | None = 10.0
    output_scale: float = 0.1
    features: tuple[str, ...] = ("gradient",)
    momentum_decay: float = 0.9

    implementation: ClassVar[str] = "meta_opt.lstm_optimizer"

    def __post_init__(self):
        check_hidden_sizes(self.hidden_sizes)
        unknown = sorted(set(self.features) - set(FEATURES))
        if unknown or not self.features:
            raise ValueError(
                f"features must be a non-empty subset of {FEATURES}, got {self.features}"
            )

    @property
    def summary(self) -> str:
        """One line saying what this optimizer is, for cards and reports."""
        return (
            f"a coordinatewise LSTM (lstm_v1; hidden sizes {list(self.hidden_sizes)}; "
            f"v1 features {', '.join(self.features)}; output scale {self.output_scale})"
        )

    @property
    def num_features(self) -> int:
        """Input features per coordinate."""
        return len(self.features) * (2 if self.preprocess_p else 1)


def check_hidden_sizes(hidden_sizes: tuple[int, ...]) -> None:
    """Raises ValueError unless `hidden_sizes` is a non-empty tuple of positive widths."""
    if not hidden_sizes or min(hidden_sizes) <= 0:
        raise ValueError(f"hidden_sizes must be positive widths, got {hidden_sizes}")
