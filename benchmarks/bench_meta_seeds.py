"""K meta-seeds in one vmapped meta-step against K separate meta-steps, one after another.

The ablation trains K meta-training runs of one config (seeds seed .. seed + K - 1)
together: their `MetaState`s stacked on a new axis and one `jax.jit(jax.vmap(meta_step))`
(`trainers.core.meta_seeds.seeds_step`). The alternative is the same jitted single-run
meta-step called K times. Both are built from `load_experiment(config, overrides)`
exactly as `meta-opt ablation` builds an arm (`arm_config`, `initial_meta_state` per
seed, `build_meta_step` with the arm's targets), on one device, and timed in
alternating rounds (`common.time_interleaved`), each call waiting for its results.
The ratio is the median over rounds of (together / separate): below 1, the vmapped
call is cheaper than the K calls it replaces (the issue's aim: <= 0.5 at K = 5).

Run: .venv/bin/python -m benchmarks.bench_meta_seeds [--quick | --tiny]
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import statistics
import tempfile
import time
from typing import Any

import jax

from benchmarks import common
from trainers.config.experiment import load_experiment
from trainers.config.supervision import uses_stored_targets
from trainers.config.task_families import build_family
from trainers.core.meta_seeds import seeds_step, stack_states
from trainers.pipelines.ablation import Arm, arm_config
from trainers.pipelines.arm_training import step_cost
from trainers.pipelines.geodesics import make_targets
from trainers.pipelines.imitation_targets import load_targets
from trainers.pipelines.train import build_meta_step, initial_meta_state

HEADERS = [
    "arm",
    "K",
    "N",
    "U",
    "inner steps / meta-step",
    "separate s (K calls)",
    "together s (1 call)",
    "together / separate",
    "compile separate s",
    "compile together s",
]
TINY_SETTINGS = [
    "task.options.hidden_sizes=[8]",
    "task.options.batch_size=32",
    "meta_train.lstm.hidden_sizes=[4]",
    "meta_train.imitation_batch=2",
    "geodesics.targets.num_instances=1",
    "geodesics.targets.num_steps=10",
    "geodesics.targets.horizon=5",
]
PRESETS = {
    "quick": {"repeats": 3},
    "tiny": {
        "repeats": 2,
        "number": 1,
        "instances": 2,
        "unroll": 5,
        "horizon": 10,
        "seeds": 2,
        "arms": ["none"],
        "settings": TINY_SETTINGS,
    },
}


def build(config_path: str, overrides: list[str], supervision: str, seeds: int):
    """(single-run step, K states, vmapped step, stacked state, arm config) for one arm."""
    config = load_experiment(config_path, [*overrides, "logging.mode=disabled"])
    config = arm_config(config, Arm(supervision, supervision, config.geodesics.baseline))
    family = build_family(config)
    with tempfile.TemporaryDirectory() as folder:
        if uses_stored_targets(config):
            make_targets(config, family, progress=False).save(pathlib.Path(folder) / "targets.npz")
        targets = load_targets(config, family, pathlib.Path(folder))
    meta_step = build_meta_step(config, family, targets)
    states = [
        initial_meta_state(dataclasses.replace(config, seed=config.seed + k), family)
        for k in range(seeds)
    ]
    return jax.jit(meta_step), states, jax.jit(seeds_step(meta_step)), stack_states(states), config


def first_call(fn, *args) -> float:
    tick = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - tick


def run_arm(args, supervision: str) -> dict[str, Any]:
    overrides = [
        f"meta_train.num_instances={args.instances}",
        f"meta_train.unroll.unroll_length={args.unroll}",
        f"meta_train.unroll.horizon={args.horizon}",
        *args.settings,
    ]
    single, states, together, stacked, config = build(
        args.config, overrides, supervision, args.seeds
    )
    separate = lambda *states_: [single(s) for s in states_]
    compile_separate = first_call(single, states[0])
    compile_together = first_call(together, stacked)
    rounds = common.time_interleaved(
        {"separate": (separate, tuple(states)), "together": (together, (stacked,))},
        repeats=args.repeats,
        number=args.number,
        return_rounds=True,
    )
    median = {name: statistics.median(times) for name, times in rounds.items()}
    return {
        "arm": supervision,
        "seeds": args.seeds,
        "instances": args.instances,
        "unroll": args.unroll,
        "step_cost": step_cost(config),
        "median_s": median,
        "ratio": common.paired_ratio(rounds, "together", "separate"),
        "compile_s": {"separate": compile_separate, "together": compile_together},
    }


def row(r: dict[str, Any]) -> tuple:
    return (
        r["arm"],
        r["seeds"],
        r["instances"],
        r["unroll"],
        r["step_cost"],
        r["median_s"]["separate"],
        r["median_s"]["together"],
        r["ratio"],
        r["compile_s"]["separate"],
        r["compile_s"]["together"],
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark on command-line `argv`; prints each row as measured, the table, writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/ablation_digits.yaml")
    parser.add_argument(
        "--arms", nargs="*", default=["none", "chord"], help="supervision arms to time"
    )
    parser.add_argument("--seeds", type=int, default=5, help="K meta-seeds")
    parser.add_argument("--instances", type=int, default=8, help="N task instances per run")
    parser.add_argument("--unroll", type=int, default=20, help="U steps per meta-gradient")
    parser.add_argument("--horizon", type=int, default=100, help="H inner steps before a restart")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--number", type=int, default=2, help="calls per round")
    parser.add_argument("--quick", action="store_true", help="repeats=3")
    parser.add_argument(
        "--tiny", action="store_true", help="toy sizes, seconds: the --quick code, for tests"
    )
    parser.add_argument("--out", default="runs/benchmarks/meta_seeds.json")
    parser.add_argument(
        "--settings",
        nargs="*",
        default=[],
        help="dotted config overrides, e.g. task.options.batch_size=64",
    )
    args = common.parse_args(parser, argv, PRESETS)
    printer = common.RowPrinter(
        f"K = {args.seeds} meta-seeds: one vmapped call against K calls, as measured:", HEADERS
    )
    results = []
    for supervision in args.arms:
        results.append(run_arm(args, supervision))
        printer.add(row(results[-1]))
    print()
    print(printer.table())
    out = {
        "benchmark": "meta_seeds",
        "config": args.config,
        "settings": args.settings,
        "results": results,
        "table": {"headers": HEADERS, "rows": printer.rows},
        "machine": common.machine_info(),
    }
    print(f"wrote {common.write_results(args.out, out)}", flush=True)
    return out


if __name__ == "__main__":
    main()
