"""Rounds and wall time to a converged shortened path, against the former fixed-rounds relaxation.

`Shortener` (`geodesic_targets.shortening`) stops once the path's length is still
(relative change <= tolerance over `window` rounds) and every point keeps its level;
the former method (`geodesic_targets.midpoint_relaxation`: pull-to-midpoint rounds, a
Jacobi iteration of the path energy) ran a fixed number of rounds (200 in every target
set made before). Per case and horizon T (one level per point, the teacher's schedule
floored at the end's loss), measured:

- the new method: rounds to convergence, seconds (second call; the first compiles),
  normalized length (path length / end distance);
- the former method after 200 rounds: its normalized length;
- the former method run until its path energy 1/2 sum |p_{i+1} - p_i|^2 (what both
  methods minimize, under the same levels and alpha) is within `--match` (relative) of the
  new method's: the rounds and seconds that took, or "> max" after `--max-rounds`.
  Energy, not length: under a level per point the length is not what either method
  minimizes, and the former method passes through shorter, unevenly spaced paths on its
  way (GEODESICS.md, "Converged shortening").

Cases:
  bowl:   the known-answer problem of tests/test_shorten_convergence.py (F = |theta|^2
          in 12 dimensions, a wiggly teacher path twice the chord's length).
  digits: digits_mlp (64-20-10 sigmoid) trained by Adam 0.1 (configs/targets_geometry.yaml),
          the teacher's own path over steps 0 .. T of one run.

Run: .venv/bin/python -m benchmarks.bench_shorten_convergence [--cases bowl digits] [--horizons 20 50 100 200]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import common
from geodesic_targets import target_geometry as geometry
from geodesic_targets.level_schedule import LevelSchedule
from geodesic_targets.midpoint_relaxation import midpoint_relaxation
from geodesic_targets.options import ShortenOptions, TargetOptions
from geodesic_targets.paths import endpoint_distance, path_length, segment_lengths
from geodesic_targets.shortening import Shortener
from geodesic_targets.teacher import run_teacher
from tests.test_shorten_convergence import bowl_loss, bowl_teacher, floored_levels

HEADERS = [
    "case",
    "T",
    "new rounds",
    "new converged",
    "new s",
    "new length",
    "former 200 rounds length",
    "former 200 rounds energy / new",
    "former rounds to match",
    "former s to match",
    "former length then",
    "former s / new s",
]
PRESETS = {
    "tiny": dict(cases=["bowl"], horizons=[20], max_rounds=400)
}  # seconds, for tests/test_benchmarks.py


def bowl_case(horizon: int) -> tuple[Callable, dict, np.ndarray]:
    path = bowl_teacher(horizon)
    return (lambda p, _: bowl_loss(p)), {"w": jnp.asarray(path, jnp.float32)}, floored_levels(path)


def digits_case(horizon: int) -> tuple[Callable, dict, np.ndarray]:
    import tasks

    family = tasks.get_family("digits_mlp")
    runs = run_teacher(
        family,
        optax.adam(0.1),
        TargetOptions(num_instances=1, num_steps=horizon, horizon=horizon),
        jax.random.PRNGKey(0),
    )
    path, losses = runs.pair(0, 0, horizon)
    key = runs.instance_keys[0]
    task = family.instance(jnp.asarray(key))
    return (lambda p, _: task.eval_loss(p)), path, geometry.teacher_levels(losses) * (1 + 1e-5)


CASES = {"bowl": bowl_case, "digits": digits_case}


def energy(path) -> float:
    """1/2 sum of squared steps, the objective of both methods."""
    return 0.5 * float(jnp.sum(segment_lengths(path) ** 2))


def former(loss, path, levels, rounds: int, options: ShortenOptions = ShortenOptions()):
    """`rounds` rounds of the former relaxation with the budgets of `options` (pull, alpha, projection steps)."""
    return midpoint_relaxation(
        lambda q: loss(q, None),
        path,
        levels,
        rounds=rounds,
        pull=options.pull,
        alpha=options.alpha,
        projection_steps=options.projection_steps,
    )


def former_until(loss, path, levels, target_energy: float, chunk: int, max_rounds: int):
    """Former rounds (in chunks) until the energy is at most `target_energy`: (rounds, seconds, path)."""
    relax = jax.jit(lambda p: former(loss, p, levels, chunk))
    jax.block_until_ready(relax(path))  # compile
    tick, rounds, current = time.perf_counter(), 0, path
    while rounds < max_rounds:
        current, rounds = jax.block_until_ready(relax(current)), rounds + chunk
        if energy(current) <= target_energy:
            break
    return rounds, time.perf_counter() - tick, current


def run_one(name: str, horizon: int, args) -> tuple:
    loss, path, levels = CASES[name](horizon)
    distance = float(endpoint_distance(path))
    shortener = Shortener(loss, ShortenOptions(), by="index")
    schedule = LevelSchedule.by_index(levels)
    shortener.shorten(path, schedule)  # compile
    tick = time.perf_counter()
    result = shortener.shorten(path, schedule)
    seconds = time.perf_counter() - tick
    levels32 = jnp.asarray(levels, jnp.float32)
    former_200 = former(loss, path, levels32, 200)
    target = energy(result.beads) * (1 + args.match)
    rounds, former_s, matched_path = former_until(
        loss, path, levels32, target, args.chunk, args.max_rounds
    )
    matched = energy(matched_path) <= target
    return (
        name,
        horizon,
        result.rounds,
        result.converged,
        seconds,
        result.normalized_length,
        float(path_length(former_200)) / distance,
        energy(former_200) / energy(result.beads),
        rounds if matched else f"> {args.max_rounds}",
        former_s,
        float(path_length(matched_path)) / distance,
        former_s / seconds,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark on `argv`: prints rows as measured, the table at the end, writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--horizons", nargs="*", type=int, default=[20, 50, 100, 200])
    parser.add_argument(
        "--match", type=float, default=1e-3, help="relative length the former method must reach"
    )
    parser.add_argument(
        "--chunk", type=int, default=200, help="former rounds between length checks"
    )
    parser.add_argument(
        "--max-rounds", type=int, default=20_000, help="former rounds before giving up"
    )
    parser.add_argument("--tiny", action="store_true", help="the bowl at T = 20 only, for tests")
    parser.add_argument("--out", default="runs/benchmarks/shorten_convergence.json")
    args = common.parse_args(parser, argv, PRESETS)
    printer = common.RowPrinter(
        "Converged shortening against the former fixed-rounds relaxation:", HEADERS
    )
    for name in args.cases:
        for horizon in args.horizons:
            printer.add(run_one(name, horizon, args))
    print()
    print(printer.table())
    out = {
        "benchmark": "shorten_convergence",
        "options": vars(args) | {"shorten": vars(ShortenOptions())},
        "table": {"headers": HEADERS, "rows": printer.rows},
        "machine": common.machine_info(),
    }
    print(f"wrote {common.write_results(args.out, out)}", flush=True)
    return out


if __name__ == "__main__":
    main()
