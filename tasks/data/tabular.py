"""Small tabular classification data sets shipped inside scikit-learn (nothing is downloaded).

Tasks a learned optimizer meta-trained on images never saw: other input sizes, class
counts and statistics. Features are standardized with the training split's mean and
standard deviation; the split is stratified with a fixed seed, so every machine gets
the same one.
"""

from __future__ import annotations

import numpy as np

from tasks.base import LabeledSplits

SPLIT_SEED = 0
# name -> (scikit-learn loader, what it is)
DATASETS = {
    "wine": ("load_wine", "wine cultivars: 178 samples, 13 chemical features, 3 classes"),
    "breast_cancer": (
        "load_breast_cancer",
        "Wisconsin breast cancer: 569 samples, 30 features, 2 classes",
    ),
}


def load_tabular_splits(name: str, test_fraction: float = 0.25) -> LabeledSplits:
    """One of `DATASETS`, standardized, with a fixed stratified split.

    Raises:
      ValueError: an unknown name or `test_fraction` outside (0, 1).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown tabular data set {name!r}; known: {', '.join(sorted(DATASETS))}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    import sklearn.datasets  # slow to import; only these loaders need it
    from sklearn.model_selection import train_test_split

    loader, what = DATASETS[name]
    data = getattr(sklearn.datasets, loader)()
    x, y = np.asarray(data.data, np.float32), np.asarray(data.target, np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=SPLIT_SEED
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    standardize = lambda a: ((a - mean) / std).astype(np.float32)
    description = (
        f"scikit-learn {what}; {len(x_train)} train / {len(x_test)} test, standardized, "
        f"stratified split with random_state={SPLIT_SEED}"
    )
    return LabeledSplits(standardize(x_train), y_train, standardize(x_test), y_test, description)
