"""Names of the task families and how to build them.

The table below is a constant: families are added by editing it, never by
registering at import time, so what a name means never depends on import order.
Builders are named as "module:function" and imported when a family is built, so
listing tasks and checking their options (config loading) needs no JAX.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
from collections.abc import Mapping
from typing import Any

from tasks import lm_options
from tasks import options as opts


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    """How to build one family: its options dataclass, builder ("module:function"), kind,
    summary, and the options meta-training sets on top of a config's (`meta_training_variation`),
    so that meta-training instances differ where the family's instances would otherwise be alike.

    The kind (one of `KINDS`) is what "unseen" means for a learned optimizer: a task is unseen
    only if no family of its kind was in the optimizer's meta-training
    (`trainers.evaluation.seen_tasks`), so another data set for the same network is not."""

    options_type: type
    builder: str
    kind: str
    summary: str
    meta_training_variation: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def build(self, options: Any):
        """The `TaskFamily` built from `options` (imports the builder's module)."""
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module), function)(options)


_SYNTH, _IMAGE, _LM = "tasks.synthetic:", "tasks.image_tasks:", "tasks.language_model:"
# Classifiers on one data set differ only by their initialisation and minibatches; meta-training
# instances also scale their inputs and relabel their classes. Synthetic families already draw
# a new problem per instance; autoencoders keep their inputs (a scale would change the target);
# language models, whose inputs are tokens, differ by parameter scales only.
_CLASSIFIER_VARIATION = types.MappingProxyType(
    {"input_scale_range": (0.5, 2.0), "permute_labels": True}
)
_LM_VARIATION = types.MappingProxyType({"param_scale_range": (0.5, 2.0)})
FAMILIES: Mapping[str, FamilySpec] = types.MappingProxyType(
    {
        "quadratic": FamilySpec(
            opts.QuadraticOptions,
            _SYNTH + "quadratic_family",
            "regression",
            "||W theta - y||^2, random 10x10 W and y per instance",
        ),
        "poly_cubic": FamilySpec(
            opts.PolyCubicOptions,
            _SYNTH + "poly_cubic_family",
            "regression",
            "1-4-4-1 MLP regressing a random cubic on [0, 1]",
        ),
        "deep_linear": FamilySpec(
            opts.DeepLinearOptions,
            _SYNTH + "deep_linear_family",
            "regression",
            "K-layer linear network regression (connected level sets)",
        ),
        "digits_mlp": FamilySpec(
            opts.MLPOptions,
            _IMAGE + "digits_mlp_family",
            "mlp_classifier",
            "MLP on scikit-learn's 8x8 digits (embedded default)",
            _CLASSIFIER_VARIATION,
        ),
        "mnist_mlp": FamilySpec(
            opts.MnistMLPOptions,
            _IMAGE + "mnist_mlp_family",
            "mlp_classifier",
            "MLP on MNIST IDX files (20 sigmoid units, batch 128)",
            _CLASSIFIER_VARIATION,
        ),
        "mnist_cnn": FamilySpec(
            opts.MnistCNNOptions,
            _IMAGE + "mnist_cnn_family",
            "conv",
            "small convolutional network on MNIST",
            _CLASSIFIER_VARIATION,
        ),
        "cifar10_cnn": FamilySpec(
            opts.Cifar10CNNOptions,
            _IMAGE + "cifar10_cnn_family",
            "conv",
            "small convolutional network on CIFAR-10",
            _CLASSIFIER_VARIATION,
        ),
        "wine_mlp": FamilySpec(
            opts.MLPOptions,
            _IMAGE + "wine_mlp_family",
            "mlp_classifier",
            "MLP on scikit-learn's wine table (13 features, 3 classes)",
            _CLASSIFIER_VARIATION,
        ),
        "breast_cancer_mlp": FamilySpec(
            opts.MLPOptions,
            _IMAGE + "breast_cancer_mlp_family",
            "mlp_classifier",
            "MLP on scikit-learn's breast cancer table (30 features, 2 classes)",
            _CLASSIFIER_VARIATION,
        ),
        "digits_cnn": FamilySpec(
            opts.DigitsCNNOptions,
            _IMAGE + "digits_cnn_family",
            "conv",
            "small convolutional network on the 8x8 digits (channels 8, 16)",
            _CLASSIFIER_VARIATION,
        ),
        "digits_mlp_layernorm": FamilySpec(
            opts.LayerNormMLPOptions,
            _IMAGE + "digits_mlp_layernorm_family",
            "normalization",
            "MLP with LayerNorm in each hidden layer (32-32 ReLU) on the 8x8 digits",
            _CLASSIFIER_VARIATION,
        ),
        "logreg_badly_scaled": FamilySpec(
            opts.BadlyScaledLogregOptions,
            "tasks.logreg:logreg_badly_scaled_family",
            "badly_scaled_linear",
            "softmax regression, features scaled by 10**[-2, 2]: input covariance cond >= 1e8",
            _CLASSIFIER_VARIATION,
        ),
        "char_rnn_lm": FamilySpec(
            lm_options.CharRNNOptions,
            _LM + "char_rnn_lm_family",
            "sequence",
            "character LSTM language model on Python's standard-library sources",
            _LM_VARIATION,
        ),
        "transformer_lm": FamilySpec(
            lm_options.TransformerLMOptions,
            _LM + "transformer_lm_family",
            "sequence",
            "one-block causal transformer language model on the same text",
            _LM_VARIATION,
        ),
        "digits_autoencoder": FamilySpec(
            opts.AutoencoderOptions,
            _IMAGE + "digits_autoencoder_family",
            "autoencoder",
            "deep autoencoder on the 8x8 digits, squared error",
        ),
        "mnist_autoencoder": FamilySpec(
            opts.MnistAutoencoderOptions,
            _IMAGE + "mnist_autoencoder_family",
            "autoencoder",
            "deep autoencoder on MNIST, squared error",
        ),
    }
)


KINDS: Mapping[str, str] = types.MappingProxyType(
    {
        "regression": "synthetic regressions (quadratics, a cubic, deep linear networks)",
        "mlp_classifier": "MLP classifiers on images or tables",
        "autoencoder": "deep autoencoders, squared error",
        "conv": "convolutional networks",
        "normalization": "networks with normalization layers",
        "badly_scaled_linear": "linear models on badly scaled features",
        "sequence": "sequence models (recurrent and attention language models)",
    }
)


def family_kind(name: str) -> str:
    """The kind of family `name` (a key of `KINDS`)."""
    return _spec(name).kind


def list_tasks() -> list[str]:
    """The names accepted by `get_family` and `get_task`, sorted."""
    return sorted(FAMILIES)


def meta_training_variation(name: str) -> dict[str, Any]:
    """The task options family `name` sets for meta-training by default (`FamilySpec`)."""
    return dict(_spec(name).meta_training_variation)


def _spec(name: str) -> FamilySpec:
    if name not in FAMILIES:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(list_tasks())}")
    return FAMILIES[name]


def options_type(name: str) -> type:
    """The frozen options dataclass of family `name` (its fields are the valid overrides)."""
    return _spec(name).options_type


def make_options(name: str, overrides: Mapping[str, Any]) -> Any:
    """Builds family `name`'s options from keyword overrides of its defaults.

    Lists are turned into tuples so options stay hashable. Raises KeyError naming
    an unknown option and ValueError for a value its family rejects.
    """
    fields = {f.name for f in dataclasses.fields(options_type(name))}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise KeyError(f"unknown option(s) {unknown} for task {name!r}; valid: {sorted(fields)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return options_type(name)(**values)


def validate_options(name: str, overrides: Mapping[str, Any]) -> None:
    """Raises KeyError/ValueError naming the bad task name or option; loads no data."""
    make_options(name, overrides)


def get_family(name: str, **overrides: Any):
    """Builds family `name` (a `TaskFamily`) with its default options updated by `overrides`.

    Data-backed families load their data set here (once), so building a family
    can raise `tasks.data.DataFileError` naming a missing file.
    """
    return _spec(name).build(make_options(name, overrides))


def get_task(name: str, *, seed: int = 0, **overrides: Any):
    """The instance (a `Task`) of family `name` selected by `seed` (see `TaskFamily.instance`)."""
    import jax

    return get_family(name, **overrides).instance(jax.random.PRNGKey(seed))
