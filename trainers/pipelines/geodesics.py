"""The geometry jobs behind `meta-opt geodesics connect | sweep | targets | spectrum`.

Each writes a run folder holding the resolved config (so the run can be
repeated), its results and its plots; printing is left to `trainers.commands`.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import jax

from common.atomic import write_text
from common.progress import progress_bar
from geodesic_targets.paths import save_path
from geodesic_targets.reference import load_reference
from geodesic_targets.sampler import StringSampler
from geodesic_targets.sweep import energy_sweep
from geodesic_targets.targets import TargetSet, generate_targets
from trainers.config import save_config
from trainers.config.experiment import ExperimentConfig
from trainers.config.supervision import with_supervision
from trainers.config.task_families import build_family
from trainers.core import keys as run_keys
from trainers.pipelines import spectrum_points
from trainers.pipelines.string_ends import trainer_to_level
from trainers.reporting.plots import (
    path_profile_data,
    plot_path_profile,
    plot_sweep,
    plot_target_lengths,
)
from trainers.reporting.spectrum_report import group_summary, plot_index_vs_loss, spectrum_markdown
from trainers.reporting.tables import sweep_table
from trainers.reporting.target_report import (
    PAIR_COLUMNS,
    pair_rows,
    plot_targets,
    target_markdown,
    target_summary,
)

# The published values ship with the project's shared folder (beside the repository);
# where it is absent the sweep plot simply has no reference curve.
REFERENCE = (
    pathlib.Path(__file__).resolve().parents[3]
    / "shared"
    / "reference"
    / "freeman_bruna_figures.txt"
)
# Published figure per task, and what its x-axis measures: the cubic's is the loss, the
# MNIST figure's is % test error (digits is compared with MNIST's figure, as the nearest).
REFERENCE_FIGURES = {
    "poly_cubic": ("cubics", "level"),
    "mnist_mlp": ("MNIST", "test_error"),
    "digits_mlp": ("MNIST", "test_error"),
}


def run_folder(config: ExperimentConfig, out: str | None, command: str) -> pathlib.Path:
    """Creates the run folder (`--out`, else `<out_dir>/<name>/geodesics-<command>`) with config.yaml."""
    folder = (
        pathlib.Path(out)
        if out
        else pathlib.Path(config.out_dir) / config.name / f"geodesics-{command}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    save_config(config, folder / "config.yaml")
    return folder


def _write_json(path: pathlib.Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, default=float) + "\n")


def connect_command(
    config: ExperimentConfig, folder: pathlib.Path, progress: bool = True
) -> dict[str, Any]:
    """Trains two models of the task to `geodesics.level` and connects them."""
    geo = config.geodesics
    key = run_keys.derive(config.seed, "connect")
    task = build_family(config).instance(jax.random.fold_in(key, 1000))
    train = trainer_to_level(config, task)
    ends = [
        train(jax.random.fold_in(key, i), jax.random.fold_in(key, 10 + i), f"model {i}")
        for i in range(2)
    ]
    sampler = StringSampler(lambda p, _: task.eval_loss(p), geo.bead_optimizer.build(), geo.connect)
    result = sampler.connect(*ends, geo.level, key=jax.random.fold_in(key, 99))
    summary = {
        k: v
        for k, v in dataclasses.asdict(result).items()
        if k not in ("beads", "segment_max_losses")
    }
    summary["segment_max_losses"] = [float(x) for x in result.segment_max_losses]
    save_path(
        folder / "path.npz",
        result.beads,
        connected=result.connected,
        level=geo.level,
        normalized_length=result.normalized_length,
    )
    _write_json(folder / "connect.json", summary)
    plot_path_profile(
        *path_profile_data(task.eval_loss, result.beads),
        geo.level,
        folder / "path_profile.png",
        f"{config.task.name}: {'connected' if result.connected else 'NOT connected'}, "
        f"{result.num_beads} beads, normalized length {result.normalized_length:.3f}",
    )
    return summary


def sweep_command(
    config: ExperimentConfig, folder: pathlib.Path, progress: bool = True
) -> list[dict[str, Any]]:
    """Energy sweep of the task; writes sweep.md, sweep.json and sweep.png."""
    geo = config.geodesics
    key = run_keys.derive(config.seed, "sweep")
    task = build_family(config).instance(jax.random.fold_in(key, 1000))
    with progress_bar(len(geo.sweep.levels), "energy sweep", unit="level", enabled=progress) as bar:
        results = energy_sweep(
            task,
            geo.sweep,
            geo.connect,
            key=key,
            train_optimizer=geo.train_optimizer.build(),
            bead_optimizer=geo.bead_optimizer.build(),
            on_level=lambda r: (bar.update(), bar.set_postfix(level=r.level)),
        )
    write_text(folder / "sweep.md", sweep_table(results))
    _write_json(folder / "sweep.json", [dataclasses.asdict(r) for r in results])
    reference, (name, x_axis) = None, REFERENCE_FIGURES.get(config.task.name, (None, "level"))
    if name and REFERENCE.exists():
        figures = load_reference(REFERENCE)
        reference = {
            "normalized length": figures.get(f"normlength{name}"),
            "beads": figures.get(f"numbeads{name}"),
        }
    if x_axis == "test_error":
        x, x_label = [r.test_error_mean for r in results], "test error of the ends (%)"
    else:
        x, x_label = [r.level for r in results], "energy level λ (eval loss)"
    panels = {
        "normalized length": (
            [r.normalized_length_mean for r in results],
            [r.normalized_length_se for r in results],
        ),
        "beads": ([r.beads_mean for r in results], [r.beads_se for r in results]),
    }
    plot_sweep(
        x, x_label, panels, folder / "sweep.png", f"{config.task.name}: energy sweep", reference
    )
    return [dataclasses.asdict(r) for r in results]


def make_targets(config: ExperimentConfig, family=None, progress: bool = True) -> TargetSet:
    """The targets of a config (`geodesics.*` as `meta_train.supervision` sets them), from the
    key every command derives alike, on the meta-training family (`meta_train.task_variation`
    included), whose instances the imitation loss runs on."""
    geo = with_supervision(config).geodesics
    pairs = geo.targets.num_instances * (geo.targets.num_steps // geo.targets.horizon)
    with progress_bar(pairs, "geodesic targets", unit="pair", enabled=progress) as bar:
        return generate_targets(
            family or build_family(config, training=True),
            geo.targets,
            geo.connect,
            key=run_keys.derive(config.seed, "targets"),
            baseline=geo.baseline.build(),
            bead_optimizer=geo.bead_optimizer.build(),
            on_pair=lambda r: bar.update(),
        )


def targets_command(
    config: ExperimentConfig, folder: pathlib.Path, progress: bool = True
) -> dict[str, Any]:
    """Targets from teacher trajectories and their geometry, before any meta-training.

    Writes targets.npz (the set), targets.md (summary and a row per pair), targets.json
    (the same as data), target_lengths.png and target_geometry.png.
    """
    targets = make_targets(config, progress=progress)
    targets.save(folder / "targets.npz")
    title = (
        f"{config.task.name}: targets, schedule {targets.schedule}, timing {targets.timing}, "
        f"T = {config.geodesics.targets.horizon} ({len(targets.levels)} pairs)"
    )
    plot_target_lengths(
        targets.normalized_lengths,
        targets.levels,
        targets.start_steps,
        folder / "target_lengths.png",
        title,
    )
    plot_targets(targets, folder / "target_geometry.png", title)
    write_text(folder / "targets.md", target_markdown(targets, title))
    summary = target_summary(targets)
    _write_json(
        folder / "targets.json",
        {**summary, "pairs": [dict(zip(PAIR_COLUMNS, row)) for row in pair_rows(targets)]},
    )
    return summary


def spectrum_command(
    config: ExperimentConfig, folder: pathlib.Path, progress: bool = True
) -> dict[str, Any]:
    """Hessian spectra (extreme eigenvalues, index) along optimizer trajectories and string-sampled paths.

    Writes spectrum.md (tables by where the points come from, with the fit of index
    on loss), spectrum.json (every measured point) and index_vs_loss.png.
    """
    geo, spec = config.geodesics, config.geodesics.spectrum
    key = run_keys.derive(config.seed, "spectrum")
    task = build_family(config).instance(jax.random.fold_in(key, 1000))
    jobs = len(geo.spectrum_optimizers or (geo.baseline,)) + (1 if spec.path_pairs else 0)
    with progress_bar(jobs, "Hessian spectra", unit="job", enabled=progress) as bar:
        rows = spectrum_points.trajectory_rows(config, task, jax.random.fold_in(key, 1))
        bar.update(jobs - (1 if spec.path_pairs else 0))
        paths: list[dict[str, Any]] = []
        if spec.path_pairs:
            path_rows, paths = spectrum_points.path_rows(config, task, jax.random.fold_in(key, 2))
            rows += path_rows
            bar.update()
    title = f"{config.task.name}: Hessian index against loss"
    threshold = (
        f"{spec.epsilon:g} x the largest |eigenvalue|"
        if spec.relative_epsilon
        else f"{spec.epsilon:g}"
    )
    settings = (
        f"Lanczos {spec.num_iterations} iterations x {spec.num_probes} probes per point, index = "
        f"fraction of eigenvalues below -{threshold}; trajectories of {spec.trajectory_steps} steps "
        f"({spec.trajectory_seeds} seeds); {spec.path_pairs} string(s) at level {geo.level:g}; "
        f"loss = the task's eval_loss (fixed training subset)."
    )
    plot_index_vs_loss(rows, folder / "index_vs_loss.png", title)
    write_text(folder / "spectrum.md", spectrum_markdown(rows, title, settings))
    summary = {"groups": group_summary(rows), "paths": paths}
    _write_json(folder / "spectrum.json", {**summary, "points": rows})
    return summary
