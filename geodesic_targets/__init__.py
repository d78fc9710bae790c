"""The geometry: interpolation, Dynamic String Sampling, paths, energy sweeps and targets.

`connect(loss_fn, theta_a, theta_b, threshold, key=...)` joins two points inside a
level set; `StringSampler` does so repeatedly with one compilation;
`energy_sweep` and `generate_targets` build on it. Never imports `trainers`.
Exports are lazy (`common.lazy`): `geodesic_targets.options` needs no JAX.
"""

from common.lazy import lazy_exports

_EXPORTS = {
    "StringSampler": "sampler", "connect": "sampler", "PathResult": "path_result",
    "ConnectOptions": "options", "LevelSchedule": "options", "ShortenOptions": "options",
    "SweepOptions": "options", "TargetOptions": "options",
    "Shortener": "shortening", "shorten": "shortening",
    "load_path": "paths", "normalized_length": "paths", "path_length": "paths",
    "resample": "paths", "save_path": "paths",
    "LevelResult": "sweep", "energy_sweep": "sweep",
    "NoCertifiedPairs": "targets", "TargetSet": "targets", "generate_targets": "targets",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
