"""Classifiers and autoencoders on digits, MNIST and CIFAR-10.

A family holds one data set on device; an instance key selects an input scale
(for classifiers, a label permutation; optionally per-tensor parameter scales) from
the family's options, so N instances share one copy of the data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tasks import losses, models
from tasks.base import LabeledSplits, Task, TaskFamily
from tasks.data.cifar10 import load_cifar10_splits
from tasks.data.digits import load_digits_splits
from tasks.data.mnist import load_mnist_splits
from tasks.data.tabular import load_tabular_splits
from tasks.options import (
    AutoencoderOptions,
    Cifar10CNNOptions,
    ClassifierOptions,
    DigitsCNNOptions,
    LayerNormMLPOptions,
    MLPOptions,
    MnistAutoencoderOptions,
    MnistCNNOptions,
    MnistMLPOptions,
    SampledDataOptions,
)
from tasks.reparameterize import rescaled
from tasks.supervised import log_uniform, supervised_task

NUM_CLASSES = 10


def _on_device(
    splits: LabeledSplits,
) -> tuple[tuple[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
    as_float = lambda x: jnp.asarray(x, jnp.float32)
    as_label = lambda y: jnp.asarray(y, jnp.int32)
    return (
        (as_float(splits.x_train), as_label(splits.y_train)),
        (as_float(splits.x_test), as_label(splits.y_test)),
    )


def _input_scale(key: jax.Array, options: SampledDataOptions) -> jax.Array:
    return log_uniform(key, *options.input_scale_range)


def _rescaled(task: Task, key: jax.Array, options: SampledDataOptions) -> Task:
    """`task` posed in rescaled coordinates where `param_scale_range` asks for it."""
    return rescaled(task, key, options.param_scale_range)


def classifier_family(
    name: str,
    options: ClassifierOptions,
    splits: LabeledSplits,
    net,
    num_classes: int = NUM_CLASSES,
) -> TaskFamily:
    """Softmax cross-entropy classification of `splits` by `net`, accuracy as metric."""
    train, test = _on_device(splits)

    def make_task(key: jax.Array) -> Task:
        key_scale, key_perm = jax.random.split(key)
        scale = _input_scale(key_scale, options)
        if options.permute_labels:
            permutation = jax.random.permutation(key_perm, num_classes)
        else:
            permutation = jnp.arange(num_classes)
        return _rescaled(
            supervised_task(
                name,
                net,
                train,
                test,
                batch_size=options.batch_size,
                eval_size=options.eval_size,
                validation_size=options.validation_size,
                per_example_loss=losses.cross_entropy,
                metric_fns={"accuracy": losses.accuracy},
                transform=lambda x, y: (x * scale, permutation[y]),
            ),
            key,
            options,
        )

    return TaskFamily(name, options, make_task)


def autoencoder_family(name: str, options: AutoencoderOptions, splits: LabeledSplits) -> TaskFamily:
    """Reconstruction of the (unscaled) inputs, squared error summed over pixels."""
    (x_train, _), (x_test, _) = _on_device(splits)
    net = models.autoencoder(options.encoder_sizes, options.activation)

    def make_task(key: jax.Array) -> Task:
        scale = _input_scale(key, options)
        return _rescaled(
            supervised_task(
                name,
                net,
                (x_train, x_train),
                (x_test, x_test),
                batch_size=options.batch_size,
                eval_size=options.eval_size,
                validation_size=options.validation_size,
                per_example_loss=losses.squared_error,
                transform=lambda x, y: (x * scale, y),
            ),
            key,
            options,
        )

    return TaskFamily(name, options, make_task)


def mnist_images(options) -> LabeledSplits:
    """MNIST as float images in [0, 1] with a channel axis, [N, 28, 28, 1]."""
    raw = load_mnist_splits(options.data_dir, source=options.source)
    scale = lambda x: (np.asarray(x, np.float32) / 255.0)[..., None]
    return LabeledSplits(
        scale(raw.x_train), raw.y_train, scale(raw.x_test), raw.y_test, raw.description
    )


def cifar10_images(options: Cifar10CNNOptions) -> LabeledSplits:
    """CIFAR-10 as [N, 32, 32, 3] floats, standardized per channel with training statistics."""
    raw = load_cifar10_splits(options.data_dir, fmt=options.format)
    x_train = np.asarray(raw.x_train, np.float32) / 255.0
    mean, std = x_train.mean(axis=(0, 1, 2)), x_train.std(axis=(0, 1, 2)) + 1e-6
    standardize = lambda x: (np.asarray(x, np.float32) / 255.0 - mean) / std
    return LabeledSplits(
        standardize(raw.x_train), raw.y_train, standardize(raw.x_test), raw.y_test, raw.description
    )


def digits_mlp_family(options: MLPOptions) -> TaskFamily:
    """`digits_mlp`: scikit-learn's 8x8 digits, the embedded default data set."""
    net = models.mlp(options.hidden_sizes, NUM_CLASSES, options.activation)
    return classifier_family("digits_mlp", options, load_digits_splits(), net)


def digits_mlp_layernorm_family(options: LayerNormMLPOptions) -> TaskFamily:
    """`digits_mlp_layernorm`: the digits MLP with LayerNorm in every hidden layer."""
    net = models.layernorm_mlp(options.hidden_sizes, NUM_CLASSES, options.activation)
    return classifier_family("digits_mlp_layernorm", options, load_digits_splits(), net)


def digits_cnn_family(options: DigitsCNNOptions) -> TaskFamily:
    """`digits_cnn`: a small convolutional classifier on the digits as [N, 8, 8, 1] images."""
    flat = load_digits_splits()
    image = lambda x: x.reshape(-1, 8, 8, 1)
    splits = LabeledSplits(
        image(flat.x_train), flat.y_train, image(flat.x_test), flat.y_test, flat.description
    )
    net = models.convnet(options.channels, NUM_CLASSES, options.activation)
    return classifier_family("digits_cnn", options, splits, net)


def mnist_mlp_family(options: MnistMLPOptions) -> TaskFamily:
    """`mnist_mlp`: the Andrychowicz et al. (2016) MNIST protocol by default."""
    net = models.mlp(options.hidden_sizes, NUM_CLASSES, options.activation)
    return classifier_family("mnist_mlp", options, mnist_images(options), net)


def mnist_cnn_family(options: MnistCNNOptions) -> TaskFamily:
    """`mnist_cnn`: a small convolutional classifier on MNIST."""
    net = models.convnet(options.channels, NUM_CLASSES, options.activation)
    return classifier_family("mnist_cnn", options, mnist_images(options), net)


def cifar10_cnn_family(options: Cifar10CNNOptions) -> TaskFamily:
    """`cifar10_cnn`: a small convolutional classifier on CIFAR-10."""
    net = models.convnet(options.channels, NUM_CLASSES, options.activation)
    return classifier_family("cifar10_cnn", options, cifar10_images(options), net)


def tabular_mlp_family(data: str):
    """The builder of an MLP classifier family on the scikit-learn table `data` (`tasks.data.tabular`)."""

    def build(options: MLPOptions) -> TaskFamily:
        splits = load_tabular_splits(data)
        num_classes = int(max(splits.y_train.max(), splits.y_test.max())) + 1
        net = models.mlp(options.hidden_sizes, num_classes, options.activation)
        return classifier_family(f"{data}_mlp", options, splits, net, num_classes)

    return build


wine_mlp_family = tabular_mlp_family("wine")
breast_cancer_mlp_family = tabular_mlp_family("breast_cancer")


def digits_autoencoder_family(options: AutoencoderOptions) -> TaskFamily:
    """`digits_autoencoder`: a deep autoencoder on the 64-pixel digits."""
    return autoencoder_family("digits_autoencoder", options, load_digits_splits())


def mnist_autoencoder_family(options: MnistAutoencoderOptions) -> TaskFamily:
    """`mnist_autoencoder`: the Dauphin et al. (2015) experiment family, smaller by default."""
    return autoencoder_family("mnist_autoencoder", options, mnist_images(options))
