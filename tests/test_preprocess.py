"""Gradient preprocessing against the formula of Andrychowicz et al. (2016), appendix A."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_opt.preprocess import gradient_features, log_sign_features

P = 10.0


def formula(g: float, p: float) -> tuple[float, float]:
    """The paper's preprocessing, written independently in float64 numpy."""
    if abs(g) >= np.exp(-p):
        return np.log(abs(g)) / p, np.sign(g)
    return -1.0, np.exp(p) * g


@pytest.mark.parametrize("g", [0.0, 1e-30, -1e-30, 1e-6, -3e-5, 0.5, -2.0, 1e30, -1e30, 3.4e38])
def test_matches_formula(g):
    features = np.asarray(log_sign_features(jnp.float32(g), P), np.float64)
    np.testing.assert_allclose(features, formula(np.float32(g), P), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_both_sides_of_the_threshold(sign):
    threshold = np.exp(-P)
    at = np.asarray(log_sign_features(jnp.float32(sign * threshold), P))
    np.testing.assert_allclose(at, [-1.0, sign], rtol=1e-5)
    below = np.asarray(log_sign_features(jnp.float32(sign * threshold * (1 - 1e-3)), P))
    np.testing.assert_allclose(below, [-1.0, sign * (1 - 1e-3)], rtol=1e-4)
    above = np.asarray(log_sign_features(jnp.float32(sign * threshold * (1 + 1e-3)), P))
    np.testing.assert_allclose(above, [-1.0 + np.log1p(1e-3) / P, sign], rtol=1e-4)


def test_never_nan_or_inf_values_or_gradients():
    info = np.finfo(np.float32)
    g = jnp.array([0.0, -0.0, info.tiny, -info.tiny, 1e-45, info.max, -info.max, 1.0, -1.0])
    features = log_sign_features(g, P)
    assert features.shape == (9, 2) and np.all(np.isfinite(features))
    grads = jax.grad(lambda x: jnp.sum(log_sign_features(x, P)))(g)
    assert np.all(np.isfinite(grads))


def test_raw_mode_and_bad_scale():
    g = jnp.array([0.25, -4.0])
    np.testing.assert_array_equal(gradient_features(g, None), g[:, None])
    assert gradient_features(g, P).shape == (2, 2)
    with pytest.raises(ValueError, match="positive"):
        log_sign_features(g, -1.0)
