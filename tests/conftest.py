"""Shared fixtures: tiny data sets written in the genuine distribution formats."""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import numpy as np
import pytest

# Tests compile many small programs and run each for moments, so compilation is most of the suite's
# time (1,123 s of backend compilation in 1,908 s of in-process test time on 2026-12-03, measured per
# test with jax.monitoring's compile events). XLA's cheapest backend optimization, then its older
# CPU fusion emitters and one codegen thread (two workers share two cores anyway), compile
# test-sized programs 2.5x and 6.2x faster than XLA's defaults, with final losses equal to 3e-7
# (benchmarks/bench_compile_flags.py, BENCHMARKS.md). Benchmarks, demos and real runs keep XLA's
# defaults.
CHEAPEST_OPTIMIZATION_FLAGS = (
    "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
)
FAST_COMPILE_FLAGS = (
    f"{CHEAPEST_OPTIMIZATION_FLAGS}"
    " --xla_cpu_use_fusion_emitters=false --xla_cpu_parallel_codegen_split_count=1"
)


def pytest_configure(config):
    """Fast XLA compilation and one persistent XLA compilation cache for the whole test run.

    XLA_FLAGS gets FAST_COMPILE_FLAGS unless it names an optimization level already; set
    before any test touches a device, and inherited by the workers and subprocesses.

    Many tests compile the same programs (the tiny demo config alone is trained by several
    end-to-end tests, in this process and in the subprocesses some tests start); with the cache
    each program that takes 50 ms or more to compile is compiled once per run. The folder is
    made by the first process (the xdist controller, before it starts the workers, which inherit
    the environment variable) and removed by it at the end, so every run starts cold, as on CI.
    A cache the user names through JAX_COMPILATION_CACHE_DIR is used as it is and kept.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {FAST_COMPILE_FLAGS}".strip()
    cache = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if not cache:
        cache = tempfile.mkdtemp(prefix="meta-opt-tests-xla-cache-")
        os.environ["JAX_COMPILATION_CACHE_DIR"] = cache
        config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))
    import jax

    jax.config.update("jax_compilation_cache_dir", cache)
    if (
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ
    ):  # jax's default, 1 s, skips most test programs
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = (
            "0.05"  # the workers and subprocesses too
        )
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.05)


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> pathlib.Path:
    """A data folder with a small MNIST (IDX) and CIFAR-10 (binary) in standard layout."""
    from tasks.data.cifar10 import write_cifar10_bin
    from tasks.data.idx import write_idx

    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    mnist = root / "mnist"
    mnist.mkdir()
    for prefix, n in (("train", 96), ("t10k", 48)):
        write_idx(
            mnist / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), np.uint8)
        )
        write_idx(mnist / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    cifar = root / "cifar-10-batches-bin"
    cifar.mkdir()
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        write_cifar10_bin(
            cifar / name,
            rng.integers(0, 256, (12, 32, 32, 3), np.uint8),
            (np.arange(12) % 10).astype(np.uint8),
        )
    return root
