"""The environment of a subprocess that sees several host CPU devices."""

from __future__ import annotations

import os


def host_devices_env(devices: int) -> dict[str, str]:
    """This environment with `devices` CPU devices; the test run's XLA compile flags stay."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    return dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
