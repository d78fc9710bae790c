"""Synthetic problems whose data are drawn from the instance key.

- `quadratic`: f(theta) = ||W theta - y||^2 with Gaussian W and y (Andrychowicz
  et al. 2016).
- `poly_cubic`: a small MLP regressing a cubic on [0, 1] with values in [0, 1]
  (Freeman & Bruna's polynomial experiment).
- `deep_linear`: a K-layer linear network regressing a linear map (the setting of
  Freeman & Bruna's Proposition 2.2, where every level set is connected).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tasks import losses, models
from tasks.base import Task, TaskFamily
from tasks.options import DeepLinearOptions, PolyCubicOptions, QuadraticOptions
from tasks.supervised import supervised_task


def quadratic_problem(key: jax.Array, dim: int) -> tuple[jax.Array, jax.Array]:
    """The instance's W (dim x dim) and y (dim), both standard Gaussian."""
    key_w, key_y = jax.random.split(key)
    return jax.random.normal(key_w, (dim, dim)), jax.random.normal(key_y, (dim,))


def quadratic_family(options: QuadraticOptions) -> TaskFamily:
    """Quadratics ||W theta - y||^2; each instance key draws its own W and y."""
    dim = options.dim

    def make_task(key: jax.Array) -> Task:
        w, y = quadratic_problem(key, dim)

        def residual_loss(params, target):
            return jnp.sum((w @ params["theta"] - target) ** 2)

        return Task(
            name="quadratic",
            init=lambda k: {"theta": options.init_scale * jax.random.normal(k, (dim,))},
            loss=lambda params, batch: residual_loss(params, y + batch["noise"]),
            sample_batch=lambda k: {"noise": options.batch_noise * jax.random.normal(k, (dim,))},
            eval_loss=lambda params: residual_loss(params, y),
        )

    return TaskFamily("quadratic", options, make_task)


def random_cubic(key: jax.Array, x: jax.Array) -> jax.Array:
    """Values at `x` of a random cubic rescaled to span exactly [0, 1] on [0, 1].

    The coefficients are Gaussian; the affine rescaling uses the extremes on a
    fine grid, so the polynomial (still a cubic) maps [0, 1] into [0, 1].
    """
    coefficients = jax.random.normal(key, (4,))
    grid = jnp.linspace(0.0, 1.0, 1001)
    on_grid = jnp.polyval(coefficients, grid)
    low, high = jnp.min(on_grid), jnp.max(on_grid)
    return (jnp.polyval(coefficients, x) - low) / jnp.maximum(high - low, 1e-6)


def poly_cubic_family(options: PolyCubicOptions) -> TaskFamily:
    """Regression of a per-instance random cubic by a small MLP, mean squared error."""
    net = models.mlp(options.hidden_sizes, 1, options.activation)
    x_train = jnp.linspace(0.0, 1.0, options.num_train)[:, None]

    def make_task(key: jax.Array) -> Task:
        key_poly, key_test, key_noise = jax.random.split(key, 3)
        x_test = jax.random.uniform(key_test, (options.num_test, 1))
        noise = options.noise_std * jax.random.normal(key_noise, x_train.shape)
        return supervised_task(
            "poly_cubic",
            net,
            (x_train, random_cubic(key_poly, x_train) + noise),
            (x_test, random_cubic(key_poly, x_test)),
            batch_size=options.batch_size,
            eval_size=options.num_train,
            per_example_loss=losses.squared_error,
        )

    return TaskFamily("poly_cubic", options, make_task)


def deep_linear_family(options: DeepLinearOptions) -> TaskFamily:
    """Deep linear regression: fit y = A x + noise with W_K ... W_1 x, squared error."""
    widths = [options.hidden_width] * (options.depth - 1) + [options.output_dim]
    net = models.deep_linear(widths)

    def make_task(key: jax.Array) -> Task:
        key_a, key_train, key_test, key_noise = jax.random.split(key, 4)
        a = jax.random.normal(key_a, (options.output_dim, options.input_dim))
        a = a / jnp.sqrt(options.input_dim)
        x_train = jax.random.normal(key_train, (options.num_train, options.input_dim))
        x_test = jax.random.normal(key_test, (options.num_test, options.input_dim))
        noise = options.noise_std * jax.random.normal(
            key_noise, (options.num_train, options.output_dim)
        )
        return supervised_task(
            "deep_linear",
            net,
            (x_train, x_train @ a.T + noise),
            (x_test, x_test @ a.T),
            batch_size=options.batch_size,
            eval_size=options.num_train,
            per_example_loss=losses.squared_error,
        )

    return TaskFamily("deep_linear", options, make_task)
