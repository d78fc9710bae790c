"""scikit-learn's 8x8 handwritten digits: the default data set, shipped inside scikit-learn."""

from __future__ import annotations

import numpy as np

from tasks.base import LabeledSplits

SPLIT_SEED = 0  # random_state of the stratified train/test split


def load_digits_splits(test_fraction: float = 0.2) -> LabeledSplits:
    """Loads the 1,797 digits with a fixed stratified split; nothing is downloaded.

    Args:
      test_fraction: share of the images held out, in (0, 1).

    Returns:
      LabeledSplits of float32 [N, 64] pixels scaled from 0..16 to [0, 1] and
      int32 labels 0..9. The split is stratified by class with random_state 0,
      so every call (and every machine) gets the same one.

    Raises:
      ValueError: `test_fraction` outside (0, 1).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    # Imported here: scikit-learn is slow to import and only this loader needs it.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (np.asarray(digits.data, np.float32) / 16.0).astype(np.float32)
    y = np.asarray(digits.target, np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=SPLIT_SEED
    )
    description = (
        f"scikit-learn digits (8x8, /16): {len(x_train)} train / {len(x_test)} test, "
        f"stratified split with random_state={SPLIT_SEED}"
    )
    return LabeledSplits(x_train, y_train, x_test, y_test, description)
