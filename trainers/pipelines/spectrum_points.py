"""The measured points behind `meta-opt geodesics spectrum`: Hessian spectra, row by row.

`geodesics.spectrum_command` measures points of two kinds, along optimizer trajectories
and along string-sampled paths at `geodesics.level`; the two builders here turn each into
rows (source, optimizer, run, step and every measured quantity) that the job then tables,
plots and writes, keeping the sampling apart from the report.
"""

from __future__ import annotations

from typing import Any

import jax

from geodesic_targets.landscape import measure_points, record_trajectory, segment_high_points
from geodesic_targets.sampler import StringSampler
from meta_opt.inner_step import task_objective
from trainers.config.experiment import ExperimentConfig
from trainers.pipelines.string_ends import trainer_to_level


def trajectory_rows(config: ExperimentConfig, task, key) -> list[dict[str, Any]]:
    """Measured points along every `geodesics.spectrum_optimizers` run (default: `baseline`)."""
    geo, spec = config.geodesics, config.geodesics.spectrum
    objective = task_objective(task)
    rows = []
    for o, optimizer in enumerate(geo.spectrum_optimizers or (geo.baseline,)):
        label = (
            f"{optimizer.name} ({', '.join(f'{k}={v:g}' for k, v in optimizer.hparams.items())})"
        )
        transformation = optimizer.build()
        for seed in range(spec.trajectory_seeds):
            run_key = jax.random.fold_in(key, 100 * o + seed)
            points, steps = record_trajectory(
                objective,
                transformation,
                task.init(jax.random.fold_in(run_key, 0)),
                key=jax.random.fold_in(run_key, 1),
                num_steps=spec.trajectory_steps,
                num_points=spec.trajectory_points,
            )
            measured = measure_points(
                task.eval_loss, points, key=jax.random.fold_in(run_key, 2), options=spec
            )
            rows += [
                {
                    "source": "trajectory",
                    "optimizer": label,
                    "run": seed,
                    "step": int(step),
                    **{name: float(values[i]) for name, values in measured.items()},
                }
                for i, step in enumerate(steps)
            ]
    return rows


def path_rows(
    config: ExperimentConfig, task, key
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Measured beads and segment high points of `spectrum.path_pairs` strings at `geodesics.level`."""
    geo, spec = config.geodesics, config.geodesics.spectrum
    train = trainer_to_level(config, task)
    sampler = StringSampler(lambda p, _: task.eval_loss(p), geo.bead_optimizer.build(), geo.connect)
    rows, paths = [], []
    for pair in range(spec.path_pairs):
        ends = [
            train(
                jax.random.fold_in(key, 10 * pair + i),
                jax.random.fold_in(key, 10 * pair + 5 + i),
                f"pair {pair}: model {i}",
            )
            for i in range(2)
        ]
        result = sampler.connect(*ends, geo.level, key=jax.random.fold_in(key, 1000 + pair))
        high, ts, _ = segment_high_points(task.eval_loss, result.beads, geo.connect.num_grid)
        for source, points, where in (
            ("beads", result.beads, range(result.num_beads)),
            ("segment high points", high, [float(t) for t in ts]),
        ):
            measured = measure_points(
                task.eval_loss, points, key=jax.random.fold_in(key, 2000 + pair), options=spec
            )
            rows += [
                {
                    "source": source,
                    "optimizer": "",
                    "run": pair,
                    "step": position,
                    **{name: float(values[i]) for name, values in measured.items()},
                }
                for i, position in enumerate(where)
            ]
        paths.append(
            {
                "pair": pair,
                "connected": result.connected,
                "beads": result.num_beads,
                "normalized_length": result.normalized_length,
                "reason": result.reason,
            }
        )
    return rows, paths
