"""The task axis sharded over devices: one CPU, all GPUs of a machine, or many hosts.

A 1-D mesh named "tasks" spans `jax.devices()`; arrays whose leading axis is the
task instance are split along it and everything else is replicated. `jit`
partitions the meta-step accordingly, so the mean over instances in the
meta-loss becomes a cross-device reduction.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

PyTree = Any
AXIS = "tasks"


def maybe_initialize_distributed(enabled: bool) -> None:
    """Calls `jax.distributed.initialize()` for multi-host jobs.

    Enabled by the config or by `META_OPT_DISTRIBUTED=1`; the coordinator address,
    process count and id come from the environment or the cluster (see the JAX
    multi-process docs).
    """
    if enabled or os.environ.get("META_OPT_DISTRIBUTED") == "1":
        jax.distributed.initialize()


def task_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """A 1-D mesh over `devices` (default: all devices of all processes)."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (AXIS,))


def check_divisible(num_instances: int, mesh: Mesh) -> None:
    """Raises ValueError unless the instances split evenly over the mesh's devices."""
    if num_instances % mesh.size:
        raise ValueError(f"num_instances ({num_instances}) must be a multiple of the number of "
                         f"devices ({mesh.size}) so that each device holds the same share")


def shard_tasks(tree: PyTree, mesh: Mesh) -> PyTree:
    """Places every leaf split along its leading (instance) axis."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec(AXIS)))


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Places every leaf whole on every device."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
