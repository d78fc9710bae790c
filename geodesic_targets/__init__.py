"""The geometry: interpolation, Dynamic String Sampling, paths, energy sweeps and targets.

`connect(loss_fn, theta_a, theta_b, threshold, key=...)` joins two points inside a
level set; `StringSampler` does so repeatedly with one compilation;
`energy_sweep` and `generate_targets` build on it. Never imports `trainers`.
"""

from geodesic_targets.connect import ConnectOptions, PathResult, StringSampler, connect
from geodesic_targets.paths import (load_path, normalized_length, path_length, resample,
                                    save_path)
from geodesic_targets.sweep import LevelResult, SweepOptions, energy_sweep
from geodesic_targets.targets import TargetOptions, TargetSet, generate_targets

__all__ = [
    "ConnectOptions", "LevelResult", "PathResult", "StringSampler", "SweepOptions",
    "TargetOptions", "TargetSet", "connect", "energy_sweep", "generate_targets", "load_path",
    "normalized_length", "path_length", "resample", "save_path",
]
