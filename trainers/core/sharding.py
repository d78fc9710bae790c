"""The task axis sharded over devices: one CPU, all GPUs of a machine, or many hosts.

A 1-D mesh named "tasks" spans `jax.devices()` (the devices of every process); arrays
whose leading axis is the task instance are split along it and everything else is
replicated. `jit` partitions the meta-step accordingly, so the mean over instances in
the meta-loss becomes a cross-device (and cross-process) reduction.

Several processes (one per host, JAX's own distributed runtime): each process builds
the same host values from the seed (or reads the same checkpoint) and `shard_tasks` /
`replicate` turn them into global arrays of which each process holds its own shards.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from common.pytree import PyTree
from trainers.errors import RunError

AXIS = "tasks"
# Explicit settings of a multi-process job; unset: `jax.distributed.initialize()` detects
# the cluster (SLURM, Open MPI, Kubernetes, Cloud TPU, ...) by itself.
COORDINATOR_ENV = "META_OPT_COORDINATOR"  # host:port of process 0's coordinator service
NUM_PROCESSES_ENV = "META_OPT_NUM_PROCESSES"
PROCESS_ID_ENV = "META_OPT_PROCESS_ID"


def maybe_initialize_distributed(enabled: bool) -> None:
    """Joins JAX's distributed runtime for multi-process (multi-host) jobs.

    Call it before anything else touches a JAX backend. It does nothing unless
    `enabled` (`meta_train.distributed`), `META_OPT_DISTRIBUTED=1` or
    `META_OPT_COORDINATOR` is set, or when the runtime is already initialized.
    `META_OPT_COORDINATOR` (e.g. `10.0.0.1:12355`), `META_OPT_NUM_PROCESSES` and
    `META_OPT_PROCESS_ID` are passed to `jax.distributed.initialize` when set; the
    settings not given are detected from the cluster (e.g. SLURM's `srun`).

    Raises:
      RunError: a setting that is not an integer.
    """
    env = os.environ
    if not (enabled or env.get("META_OPT_DISTRIBUTED") == "1" or env.get(COORDINATOR_ENV)):
        return
    if _distributed_is_initialized():
        return
    try:
        settings = {
            "coordinator_address": env.get(COORDINATOR_ENV) or None,
            "num_processes": int(env[NUM_PROCESSES_ENV]) if env.get(NUM_PROCESSES_ENV) else None,
            "process_id": int(env[PROCESS_ID_ENV]) if env.get(PROCESS_ID_ENV) else None,
        }
    except ValueError as err:
        raise RunError(
            f"{NUM_PROCESSES_ENV} and {PROCESS_ID_ENV} must be integers: {err}"
        ) from None
    jax.distributed.initialize(**{k: v for k, v in settings.items() if v is not None})


def _distributed_is_initialized() -> bool:
    """`jax.distributed.is_initialized()` (newer JAX) or its internal equivalent (older)."""
    probe = getattr(jax.distributed, "is_initialized", None)
    if probe is not None:
        return probe()
    from jax._src import distributed  # pylint: disable=g-import-not-at-top

    return distributed.global_state.client is not None


def is_primary() -> bool:
    """Whether this is process 0, the one that writes checkpoints and logs."""
    return jax.process_index() == 0


def task_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: all devices of all processes)."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (AXIS,))


def check_divisible(num_instances: int, mesh: Mesh) -> None:
    """Raises RunError unless the instances split evenly over the mesh's devices."""
    if num_instances % mesh.size:
        raise RunError(
            f"num_instances ({num_instances}) must be a multiple of the number of "
            f"devices ({mesh.size}) so that each device holds the same share"
        )


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _put(x: Any, sharding: NamedSharding) -> jax.Array:
    """One leaf, equal on every process, as a global array with `sharding`."""
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    if _is_key(x):  # typed keys travel as their key data
        return jax.random.wrap_key_data(
            _put(jax.random.key_data(x), sharding), impl=jax.random.key_impl(x)
        )
    host = np.asarray(jax.device_get(x))
    # Each process supplies only the shards of its own devices (cut from the full value).
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_tasks(tree: PyTree, mesh: Mesh) -> PyTree:
    """Places every leaf split along its leading (instance) axis.

    With several processes every process must pass the same full values.
    """
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))
    return jax.tree_util.tree_map(lambda x: _put(x, sharding), tree)


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Places every leaf whole on every device (every process passes the same values)."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree_util.tree_map(lambda x: _put(x, sharding), tree)


def to_host(tree: PyTree) -> PyTree:
    """Numpy copies of replicated (or single-process) arrays, without communication.

    A replicated array of a multi-process job is not fully addressable, so
    `jax.device_get` refuses it; its local copy is the whole value.
    """

    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            if not x.is_fully_replicated:
                raise ValueError(
                    f"to_host: an array sharded over processes ({x.sharding}); use gather_to_host"
                )
            return np.asarray(x.addressable_data(0))
        return np.asarray(jax.device_get(x))

    return jax.tree_util.tree_map(one, tree)


def gather_to_host(tree: PyTree) -> PyTree:
    """The full values of every leaf, on every process: numpy arrays (typed PRNG keys
    stay key arrays, on this process's first device).

    With several processes this is a collective: every process must call it with the
    same structure. Arrays already whole on this process are not sent.
    """
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

    def one(x):
        if _is_key(x):
            return jax.random.wrap_key_data(
                one(jax.random.key_data(x)), impl=jax.random.key_impl(x)
            )
        if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return to_host(x)

    return jax.tree_util.tree_map(one, tree)
