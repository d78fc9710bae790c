"""The geometry: interpolation, Dynamic String Sampling, paths, energy sweeps and targets.

`connect(loss_fn, theta_a, theta_b, threshold, key=...)` joins two points inside a
level set; `StringSampler` does so repeatedly with one compilation;
`energy_sweep` and `generate_targets` build on it; `align` removes the hidden-unit
permutation between two networks; `hessian_extremes`, `hessian_index` and
`spectral_density` measure Hessian spectra (Lanczos), and `landscape` gathers the
trajectory points, beads and segment high points to measure. Never imports `trainers`.
Exports are lazy (`common.lazy`): `geodesic_targets.options` needs no JAX.
"""

from common.lazy import lazy_exports

_EXPORTS = {
    "StringSampler": "sampler",
    "connect": "sampler",
    "PathResult": "path_result",
    "ConnectOptions": "options",
    "LevelSchedule": "level_schedule",
    "ShortenOptions": "options",
    "SweepOptions": "options",
    "TargetOptions": "options",
    "SpectrumOptions": "options",
    "align": "alignment",
    "permute_hidden": "alignment",
    "hessian_extremes": "spectrum",
    "hessian_index": "spectrum",
    "spectral_density": "spectrum",
    "exact_index": "spectrum",
    "spectra_at": "spectrum",
    "segment_high_points": "landscape",
    "record_trajectory": "landscape",
    "measure_points": "landscape",
    "Shortener": "shortening",
    "shorten": "shortening",
    "load_path": "paths",
    "normalized_length": "paths",
    "path_length": "paths",
    "resample": "paths",
    "save_path": "paths",
    "LevelResult": "sweep",
    "energy_sweep": "sweep",
    "NoCertifiedPairs": "targets",
    "TargetSet": "targets",
    "generate_targets": "targets",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
