"""Option dataclasses of the character-level language-model families, with value checks.

Kept beside `tasks.options` (whose checks they use) so that each file stays short; like those,
they import neither JAX nor the data.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from tasks.options import check, check_choice, check_sizes

RNNCell = Literal["lstm", "gru", "vanilla"]


@dataclasses.dataclass(frozen=True)
class LanguageModelOptions:
    """Next-character prediction on windows of a text (`tasks.language_model`).

    Attributes:
      batch_size: windows per minibatch.
      seq_len: predicted positions per window (a window holds seq_len + 1 characters).
      eval_size: fixed training windows, evenly spaced over the training text, behind `eval_loss`.
      validation_size: the last `validation_size` characters of the training text are never
        inside a training window; `sample_validation_batch` draws windows from them. 0: none.
      param_scale_range: as in `SampledDataOptions` (per-tensor parameter rescaling).
    """

    batch_size: int = 32
    seq_len: int = 32
    eval_size: int = 128
    validation_size: int = 0
    param_scale_range: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self):
        for name in ("batch_size", "seq_len", "eval_size"):
            check(getattr(self, name) > 0, f"{name} must be positive, got {getattr(self, name)}")
        check(
            self.validation_size == 0 or self.validation_size > self.seq_len,
            f"validation_size must be 0 or > seq_len ({self.seq_len}), got {self.validation_size}",
        )
        low, high = self.param_scale_range
        check(0 < low <= high, f"param_scale_range must satisfy 0 < low <= high, got {(low, high)}")


@dataclasses.dataclass(frozen=True)
class CharRNNOptions(LanguageModelOptions):
    """`char_rnn_lm`: embedding, one recurrent cell, linear readout."""

    embed_size: int = 16
    hidden_size: int = 32
    cell: RNNCell = "lstm"

    def __post_init__(self):
        super().__post_init__()
        check_sizes("embed_size", (self.embed_size,))
        check_sizes("hidden_size", (self.hidden_size,))
        check_choice("cell", self.cell, RNNCell)


@dataclasses.dataclass(frozen=True)
class TransformerLMOptions(LanguageModelOptions):
    """`transformer_lm`: causal pre-LayerNorm blocks (`tasks.models.transformer_lm`)."""

    model_size: int = 32
    num_heads: int = 2
    mlp_size: int = 64
    num_layers: int = 1

    def __post_init__(self):
        super().__post_init__()
        check_sizes("model_size", (self.model_size,))
        check_sizes("mlp_size", (self.mlp_size,))
        check_sizes("num_layers", (self.num_layers,))
        check(
            self.num_heads > 0 and self.model_size % self.num_heads == 0,
            f"num_heads must be positive and divide model_size ({self.model_size}), "
            f"got {self.num_heads}",
        )
