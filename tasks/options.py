"""Option dataclasses shared by the task families, with value checks.

Each family is built from one frozen options dataclass; `tasks.get_family`
fills it from keyword overrides and the config loader fills it from YAML, so
the fields here (and in `tasks.lm_options`, the language models') are the complete, typed
list of what a family can vary.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal

Activation = Literal["sigmoid", "relu", "tanh"]
MnistSource = Literal["auto", "full", "test_only"]
CifarFormat = Literal["auto", "bin", "py"]
LogregData = Literal["digits", "breast_cancer", "wine"]


def check(condition: bool, message: str) -> None:
    """Raises ValueError(message) unless `condition` holds."""
    if not condition:
        raise ValueError(message)


def check_choice(name: str, value: object, choices: object) -> None:
    """Checks that `value` is one of the values of the `Literal` type `choices`."""
    allowed = typing.get_args(choices)
    check(value in allowed, f"{name} must be one of {allowed}, got {value!r}")


def check_sizes(name: str, sizes: tuple[int, ...], allow_empty: bool = False) -> None:
    """Checks that a tuple of layer widths is non-empty (unless allowed) and positive."""
    check(allow_empty or len(sizes) > 0, f"{name} must list at least one width")
    check(all(int(s) > 0 for s in sizes), f"{name} must be positive, got {sizes}")


@dataclasses.dataclass(frozen=True)
class SampledDataOptions:
    """Minibatching and per-instance input scaling common to data-backed tasks.

    Attributes:
      batch_size: examples per minibatch.
      eval_size: size of the fixed training subset behind `eval_loss`.
      validation_size: the last `validation_size` training examples form a validation
        split: never in a training minibatch, drawn by `Task.sample_validation_batch`
        (meta-training can score on it: `meta_train.unroll.score_on: validation`). 0: none.
      input_scale_range: each instance multiplies its inputs by a factor drawn
        log-uniformly from this range; (1, 1) leaves inputs unchanged.
      param_scale_range: each instance is posed in coordinates theta / s, one s per
        parameter tensor drawn log-uniformly from this range (`tasks.reparameterize`):
        the same losses, other gradient and parameter scales; (1, 1): unchanged.
    """

    batch_size: int = 128
    eval_size: int = 4096
    validation_size: int = 0
    input_scale_range: tuple[float, float] = (1.0, 1.0)
    param_scale_range: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self):
        check(self.batch_size > 0, f"batch_size must be positive, got {self.batch_size}")
        check(self.eval_size > 0, f"eval_size must be positive, got {self.eval_size}")
        check(
            self.validation_size >= 0, f"validation_size must be >= 0, got {self.validation_size}"
        )
        low, high = self.input_scale_range
        check(0 < low <= high, f"input_scale_range must satisfy 0 < low <= high, got {(low, high)}")
        low, high = self.param_scale_range
        check(0 < low <= high, f"param_scale_range must satisfy 0 < low <= high, got {(low, high)}")
        # Cooperative: a data-source mixin later in the MRO (MnistData) checks its fields too.
        getattr(super(), "__post_init__", lambda: None)()


@dataclasses.dataclass(frozen=True)
class ClassifierOptions(SampledDataOptions):
    """Adds a per-instance label permutation (off by default)."""

    permute_labels: bool = False


@dataclasses.dataclass(frozen=True)
class MLPOptions(ClassifierOptions):
    """An MLP classifier; the default is the Andrychowicz et al. (2016) protocol.

    Attributes:
      hidden_sizes: widths of the hidden layers (default one layer of 20).
      activation: hidden activation (default sigmoid).
    """

    hidden_sizes: tuple[int, ...] = (20,)
    activation: Activation = "sigmoid"

    def __post_init__(self):
        super().__post_init__()
        check_sizes("hidden_sizes", self.hidden_sizes, allow_empty=True)
        check_choice("activation", self.activation, Activation)


@dataclasses.dataclass(frozen=True)
class CNNOptions(ClassifierOptions):
    """A small convolutional classifier: conv 3x3 + pool per entry of `channels`."""

    channels: tuple[int, ...] = (16, 32)
    activation: Activation = "relu"

    def __post_init__(self):
        super().__post_init__()
        check_sizes("channels", self.channels)
        check_choice("activation", self.activation, Activation)


@dataclasses.dataclass(frozen=True)
class AutoencoderOptions(SampledDataOptions):
    """A deep autoencoder; `encoder_sizes` ends with the code width."""

    encoder_sizes: tuple[int, ...] = (32, 16, 8)
    activation: Activation = "sigmoid"

    def __post_init__(self):
        super().__post_init__()
        check_sizes("encoder_sizes", self.encoder_sizes)
        check_choice("activation", self.activation, Activation)


@dataclasses.dataclass(frozen=True)
class MnistData:
    """Where MNIST comes from.

    Attributes:
      data_dir: folder with the IDX files; None means $META_OPT_DATA or the cache.
      source: "full" (60k/10k), "test_only" (the 10k test images split into
        train and held-out parts), or "auto" (full when the training files exist).
    """

    data_dir: str | None = None
    source: MnistSource = "auto"

    def __post_init__(self):
        check_choice("source", self.source, MnistSource)


@dataclasses.dataclass(frozen=True)
class MnistMLPOptions(MLPOptions, MnistData):
    """`mnist_mlp`: MLPOptions plus the MNIST source."""


@dataclasses.dataclass(frozen=True)
class MnistCNNOptions(CNNOptions, MnistData):
    """`mnist_cnn`: CNNOptions plus the MNIST source."""


@dataclasses.dataclass(frozen=True)
class MnistAutoencoderOptions(AutoencoderOptions, MnistData):
    """`mnist_autoencoder`: a wider default than digits' (784 inputs)."""

    encoder_sizes: tuple[int, ...] = (256, 64, 16)


@dataclasses.dataclass(frozen=True)
class Cifar10CNNOptions(CNNOptions):
    """`cifar10_cnn`: CNNOptions plus where CIFAR-10 is and in which distribution."""

    channels: tuple[int, ...] = (32, 64)
    data_dir: str | None = None
    format: CifarFormat = "auto"

    def __post_init__(self):
        super().__post_init__()
        check_choice("format", self.format, CifarFormat)


@dataclasses.dataclass(frozen=True)
class DigitsCNNOptions(CNNOptions):
    """`digits_cnn`: two conv + pool stages take the 8x8 digits to 2x2 (about 1.9k parameters).

    Batches of 32, not 128: on CPU its convolutions cost about 100x the digits MLP per example
    (16 instances x 100 Adam steps: 3.5 s at batch 32, 18 s at 128, against 0.16 s for
    `digits_mlp` at 128; nice'd on a shared 2-core machine), and such runs should take seconds.
    """

    batch_size: int = 32
    channels: tuple[int, ...] = (8, 16)


@dataclasses.dataclass(frozen=True)
class LayerNormMLPOptions(MLPOptions):
    """`digits_mlp_layernorm`: MLPOptions, LayerNorm before each hidden activation."""

    hidden_sizes: tuple[int, ...] = (32, 32)
    activation: Activation = "relu"


@dataclasses.dataclass(frozen=True)
class BadlyScaledLogregOptions(ClassifierOptions):
    """`logreg_badly_scaled`: softmax regression on standardized features times fixed factors.

    Attributes:
      data: the scikit-learn table (digits: the 8x8 pixels, constant ones dropped).
      log10_scale_range: feature i is multiplied by 10**e_i, the e_i evenly spaced over this
        range in a fixed shuffled order; (0, 0) is the well-scaled problem.
    """

    data: LogregData = "digits"
    log10_scale_range: tuple[float, float] = (-2.0, 2.0)

    def __post_init__(self):
        super().__post_init__()
        check_choice("data", self.data, LogregData)
        low, high = self.log10_scale_range
        check(low <= high, f"log10_scale_range must satisfy low <= high, got {(low, high)}")


# Synthetic problems (tasks.synthetic)


@dataclasses.dataclass(frozen=True)
class QuadraticOptions:
    """Attributes:
    dim: size of theta, W is dim x dim.
    init_scale: theta_0 ~ N(0, init_scale^2 I).
    batch_noise: each batch perturbs y by N(0, batch_noise^2 I); 0 is deterministic.
    """

    dim: int = 10
    init_scale: float = 1.0
    batch_noise: float = 0.0

    def __post_init__(self):
        check(self.dim > 0, f"dim must be positive, got {self.dim}")
        check(self.batch_noise >= 0, f"batch_noise must be >= 0, got {self.batch_noise}")


@dataclasses.dataclass(frozen=True)
class PolyCubicOptions:
    """Attributes:
    hidden_sizes: MLP widths (Freeman & Bruna: 1-4-4-1).
    activation: sigmoid by default; Freeman & Bruna used relu.
    num_train: training inputs, an even grid on [0, 1].
    num_test: held-out inputs, uniform on [0, 1] per instance.
    batch_size: examples per minibatch.
    noise_std: Gaussian noise on the training targets.
    """

    hidden_sizes: tuple[int, ...] = (4, 4)
    activation: Activation = "sigmoid"
    num_train: int = 256
    num_test: int = 256
    batch_size: int = 32
    noise_std: float = 0.0

    def __post_init__(self):
        check_sizes("hidden_sizes", self.hidden_sizes, allow_empty=True)
        check_choice("activation", self.activation, Activation)
        check(min(self.num_train, self.num_test, self.batch_size) > 0, "sizes must be positive")


@dataclasses.dataclass(frozen=True)
class DeepLinearOptions:
    """Attributes:
    depth: number of linear layers K.
    input_dim, hidden_width, output_dim: layer sizes; Proposition 2.2 assumes
      hidden_width >= min(input_dim, output_dim).
    num_train, num_test: Gaussian inputs per instance.
    batch_size: examples per minibatch.
    noise_std: Gaussian noise on the targets y = A x + noise.
    """

    depth: int = 3
    input_dim: int = 8
    hidden_width: int = 8
    output_dim: int = 8
    num_train: int = 256
    num_test: int = 256
    batch_size: int = 32
    noise_std: float = 0.1

    def __post_init__(self):
        check(self.depth >= 1, f"depth must be >= 1, got {self.depth}")
        check(
            min(self.input_dim, self.hidden_width, self.output_dim) > 0, "widths must be positive"
        )
        check(min(self.num_train, self.num_test, self.batch_size) > 0, "sizes must be positive")
