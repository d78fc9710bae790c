"""Badly conditioned softmax regression: a convex problem whose only difficulty is its scaling.

Multinomial logistic regression (one linear layer) on a standardized scikit-learn table whose
feature i is multiplied by a fixed factor d_i = 10**e_i, the exponents e_i evenly spaced over
`log10_scale_range` and assigned to features in a fixed shuffled order (`SCALE_SEED`). The
training inputs' covariance becomes D C D, C the standardized features' correlation matrix and
D = diag(d). Since C's diagonal is 1, D C D has diagonal d_i**2, so its largest eigenvalue is at
least max d**2 and its smallest at most min d**2: its condition number is at least
10**(2 (high - low)), 1e8 for the default (-2, 2), and at most cond(C) times that. Measured on
the training splits: digits 150 standardized, 5.1e8 scaled (the default); breast cancer 1.1e5
and 1.8e11; wine 46 and 7.4e8. The loss Hessian inherits this spread, so an
optimizer without per-coordinate scaling moves the large-factor weights and crawls along the
small-factor ones, while a diagonal preconditioner (Adam, RMSProp) undoes D.
"""

from __future__ import annotations

import numpy as np

from tasks import models
from tasks.base import LabeledSplits, TaskFamily
from tasks.data.digits import load_digits_splits
from tasks.data.tabular import load_tabular_splits
from tasks.image_tasks import classifier_family
from tasks.options import BadlyScaledLogregOptions

SCALE_SEED = 0  # the permutation assigning exponents to features


def feature_factors(
    num_features: int, log10_scale_range: tuple[float, float], seed: int = SCALE_SEED
) -> np.ndarray:
    """float32 [num_features] factors 10**e, e evenly spaced over the range, shuffled by `seed`."""
    exponents = np.linspace(*log10_scale_range, num_features)
    return (10.0 ** exponents[np.random.default_rng(seed).permutation(num_features)]).astype(
        np.float32
    )


def standardized_table(data: str) -> LabeledSplits:
    """The table `data` standardized with its training split's statistics.

    The digits' pixels that are constant over the training split (blank corners) are dropped:
    they carry nothing, and a zero feature would make the input covariance singular.
    """
    if data != "digits":
        return load_tabular_splits(data)
    digits = load_digits_splits()
    mean, std = digits.x_train.mean(axis=0), digits.x_train.std(axis=0)
    keep = std > 0
    standardize = lambda x: ((x[:, keep] - mean[keep]) / std[keep]).astype(np.float32)
    description = f"{digits.description}; standardized, {int(keep.sum())} non-constant pixels"
    return LabeledSplits(
        standardize(digits.x_train),
        digits.y_train,
        standardize(digits.x_test),
        digits.y_test,
        description,
    )


def badly_scaled(splits: LabeledSplits, log10_scale_range: tuple[float, float]) -> LabeledSplits:
    """`splits` with both parts' features multiplied by `feature_factors` (the same factors)."""
    factors = feature_factors(splits.x_train.shape[1], log10_scale_range)
    low, high = log10_scale_range
    return LabeledSplits(
        splits.x_train * factors,
        splits.y_train,
        splits.x_test * factors,
        splits.y_test,
        f"{splits.description}; features times 10**[{low}, {high}] (seed {SCALE_SEED})",
    )


def logreg_badly_scaled_family(options: BadlyScaledLogregOptions) -> TaskFamily:
    """`logreg_badly_scaled`: softmax regression on `badly_scaled(options.data)` features."""
    splits = badly_scaled(standardized_table(options.data), options.log10_scale_range)
    num_classes = int(max(splits.y_train.max(), splits.y_test.max())) + 1
    net = models.mlp((), num_classes, "sigmoid")  # a single linear layer: no activation applies
    return classifier_family("logreg_badly_scaled", options, splits, net, num_classes)
