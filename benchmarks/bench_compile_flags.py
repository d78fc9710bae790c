"""XLA compile time of test-sized programs under the test suite's compile flags and XLA's defaults.

Most of `make test`'s time is compilation (tests compile many small programs and run each
for moments), so tests/conftest.py sets `FAST_COMPILE_FLAGS`. This benchmark shows what
each part of those flags buys and that results change by float rounding only: every flag
set compiles the same programs, each in a fresh process with no compilation cache, and
runs them once to compare their final training losses with XLA's defaults.

Programs: `run_grid`'s vmapped run (`trainers.core.trajectories.make_run`) on digits_mlp
for Adam (a 2-setting learning-rate grid), a v1 LSTM (hidden 8) and the shipped v2_digits
bundle, 2 seeds each. Rounds alternate the flag sets (round r of every set runs before round
r + 1 of any), so a slow spell of a shared machine hits all alike; the table gives the median
over rounds and its ratio to the default flags' median.

Run: .venv/bin/python -m benchmarks.bench_compile_flags [--quick | --tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks import common
from tests.conftest import CHEAPEST_OPTIMIZATION_FLAGS, FAST_COMPILE_FLAGS

FLAG_SETS = {
    "XLA defaults": "",
    "cheapest optimization": CHEAPEST_OPTIMIZATION_FLAGS,
    "tests (conftest.py)": FAST_COMPILE_FLAGS,
}
PROGRAMS = ("adam", "lstm_v1", "v2_digits")
HEADERS = ["flags", "compile s", "x faster than defaults", "max abs Δ final loss vs defaults"]
PRESETS = {
    "quick": dict(rounds=2),
    # Seconds, for tests/test_benchmarks.py: the same code at one program and two steps.
    "tiny": dict(
        rounds=1, programs=["adam"], steps=2, flags=["XLA defaults", "tests (conftest.py)"]
    ),
}


def compile_programs(programs: list[str], steps: int) -> dict[str, dict[str, Any]]:
    """Compiles and runs each program in this process: its compile seconds and final losses."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import tasks
    from meta_opt import LSTMOptimizer, pretrained
    from trainers.core.trajectories import make_run

    family = tasks.get_family("digits_mlp")
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    lstm = LSTMOptimizer(hidden_sizes=(8,))
    weights = lstm.init(jax.random.PRNGKey(1))
    builds = {  # name -> (hyperparameters -> optimizer, the grid repeated per seed)
        "adam": (lambda hp: optax.adam(hp["lr"]), {"lr": jnp.array([0.01, 0.01, 0.1, 0.1])}),
        "lstm_v1": (lambda hp: lstm.transformation(weights), {}),
        "v2_digits": (lambda hp: pretrained("v2_digits"), {}),
    }
    out = {}
    for name in programs:
        build, grid = builds[name]
        run_keys = jnp.tile(keys, (2, 1)) if grid else keys
        lowered = jax.jit(jax.vmap(make_run(family, build, steps, 2))).lower(grid, run_keys)
        start = time.perf_counter()
        compiled = lowered.compile()
        seconds = time.perf_counter() - start
        losses = np.asarray(compiled(grid, run_keys)["curve"][:, -1])
        out[name] = {"compile_s": seconds, "final_losses": losses.tolist()}
    return out


def measure(flags: str, programs: list[str], steps: int) -> dict[str, dict[str, Any]]:
    """`compile_programs` in a fresh process with these XLA_FLAGS and no compilation cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env |= {"XLA_FLAGS": flags, "JAX_ENABLE_COMPILATION_CACHE": "false", "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "benchmarks.bench_compile_flags", "--child", str(steps)]
    root = pathlib.Path(__file__).resolve().parents[1]
    done = subprocess.run(
        command + programs, env=env, cwd=root, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"the child process failed with XLA_FLAGS={flags!r}:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark on `argv`: prints rows as measured, the table at the end, writes the JSON."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:  # the measuring process
        print(json.dumps(compile_programs(argv[2:], int(argv[1]))))
        return {}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", nargs="*", default=list(PROGRAMS), choices=PROGRAMS)
    parser.add_argument("--steps", type=int, default=6, help="inner steps of each run")
    parser.add_argument(
        "--flags", nargs="*", default=list(FLAG_SETS), choices=list(FLAG_SETS), help="flag sets"
    )
    parser.add_argument("--rounds", type=int, default=3, help="processes per flag set")
    parser.add_argument("--quick", action="store_true", help="rounds=2")
    parser.add_argument(
        "--tiny", action="store_true", help="adam at 2 steps, 2 flag sets, 1 round: for tests"
    )
    parser.add_argument("--out", default="runs/benchmarks/compile_flags.json")
    args = common.parse_args(parser, argv, PRESETS)
    if "XLA defaults" not in args.flags:
        parser.error("--flags must include 'XLA defaults' (the reference of every ratio)")
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in args.flags}
    for _ in range(args.rounds):
        for name in args.flags:
            rounds[name].append(measure(FLAG_SETS[name], args.programs, args.steps))

    def total_seconds(measured: dict[str, dict[str, Any]]) -> float:
        return sum(measured[p]["compile_s"] for p in args.programs)

    base = statistics.median(total_seconds(m) for m in rounds["XLA defaults"])
    defaults = rounds["XLA defaults"][0]  # losses are deterministic: one round is enough
    printer = common.RowPrinter(
        f"Compilation of {', '.join(args.programs)} (digits_mlp, {args.steps} steps), "
        f"median of {args.rounds} process(es):",
        HEADERS,
    )
    for name, measured in rounds.items():
        seconds = statistics.median(total_seconds(m) for m in measured)
        drift = max(
            abs(a - b)
            for p in args.programs
            for a, b in zip(measured[0][p]["final_losses"], defaults[p]["final_losses"])
        )
        printer.add([name, seconds, base / seconds, drift])
    print()
    print(printer.table())
    out = {
        "benchmark": "compile_flags",
        "options": vars(args),
        "flag_sets": FLAG_SETS,
        "rounds": rounds,
        "table": {"headers": HEADERS, "rows": printer.rows},
        "machine": common.machine_info(),
    }
    print(f"wrote {common.write_results(args.out, out)}", flush=True)
    return out


if __name__ == "__main__":
    main()
