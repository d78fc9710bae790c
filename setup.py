"""Packaging for geodesic-meta-opt: learned optimizers supervised by level-set geodesics."""

from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as readme:
    LONG_DESCRIPTION = readme.read()

setup(
    name="geodesic-meta-opt",
    version="0.1.0",
    description=(
        "JAX framework for LSTM meta-optimizers trained to follow level-set geodesics "
        "found by Dynamic String Sampling."
    ),
    long_description=LONG_DESCRIPTION,
    long_description_content_type="text/markdown",
    packages=find_packages(
        include=["meta_opt*", "tasks*", "trainers*", "geodesic_targets*", "common*"]
    ),
    package_data={"meta_opt": ["pretrained_optimizers/*/*"]},  # the shipped pretrained optimizers
    python_requires=">=3.10",
    install_requires=[
        # Lower bounds are the oldest versions the test suite was run against (README).
        # jax 0.5.0 is the oldest tested; before it jax drew different random numbers
        # (threefry_partitionable off by default), so seeded results would differ.
        "jax>=0.5.0",
        "dm-haiku>=0.0.13",
        "optax>=0.2.5",  # optax.tree_utils.tree_norm
        "chex>=0.1.88",
        "numpy>=1.26.4",
        "wandb>=0.19.0",
        "scikit-learn>=1.5.0",
        "scipy>=1.10.0",  # t quantiles of the ablation's intervals, shortening's NNLS (also required by scikit-learn)
        "matplotlib>=3.9.0",
        "pyyaml>=6.0.1",
        "tqdm>=4.66.0",
        "tabulate>=0.10.0",
    ],
    extras_require={
        "dev": ["pytest>=8.0.0", "pytest-xdist>=3.5.0", "ruff>=0.8.0"],
        "cuda": ["jax[cuda12]"],
    },
    entry_points={"console_scripts": ["meta-opt=trainers.commands.cli:main"]},
)
