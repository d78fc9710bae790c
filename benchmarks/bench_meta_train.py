"""Meta-training throughput, FLOP rate next to a big matmul, and meta-step memory.

The meta-step is built exactly as `trainers.pipelines.train.train` builds it:
`load_experiment(config, overrides)` with `meta_train.num_instances=N`,
`meta_train.unroll.unroll_length=U` and `logging.mode=disabled`, then
`build_family`, `place_state(initial_meta_state(...), sharding.task_mesh())`,
`build_meta_step(config, family, load_targets(...))` (the step `meta-opt train` builds),
and `jax.jit(meta_step, out_shardings=(state_sharding, None))`, lowered and
compiled once per N x U; that one executable serves the throughput, FLOP-count
and memory tables.

Throughput (U = `--unroll`, N in `--instances`): each timed call consumes the
state the previous call returned (as in training), waiting for it with
`jax.block_until_ready`. Rounds of each N alternate with rounds of a jitted
[2048, 2048] f32 matmul; "of matmul" is the median of per-round ratios of the
two FLOP rates. Inner steps per second are N * U / (seconds per meta-step).

FLOP count: XLA's `cost_analysis` counts a `lax.scan` (while loop) body once,
so the compiled step's own count does not grow with U. For the count we
therefore lower the same step a second time with every `lax.scan` traced with
`unroll=True` (a temporary wrapper around `jax.lax.scan`, only while tracing
for the count; the timed step is the ordinary rolled one). Its count is the
whole meta-step: U forward inner steps, U backward steps, and the outer
update. The printed U-check compares both counts at U/2 and U. The horizon
reset inside the scan is a `lax.cond`, counted by XLA as its dearer branch
(re-initializing the instance), a small over-count.

Memory: `compiled.memory_analysis()` of the rolled step for every N x U in
`--mem-instances` x `--mem-unrolls` (divisors of the horizon, which the config
requires; every U is checked before anything is measured): arguments + outputs + temporaries (the
saved activations of the backward pass live in the temporaries); aliased bytes
are subtracted. The ordinary (not unrolled) step is the one measured.

Each table row is printed as soon as it is measured (all N of the throughput
table together, as they are timed in the same rounds); the tables are printed
again, aligned, at the end.

Run: .venv/bin/python -m benchmarks.bench_meta_train [--quick | --tiny]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import pathlib
import statistics
import tempfile
import time
from typing import Any

import jax

from benchmarks import common
from trainers.config.experiment import load_experiment
from trainers.config.task_families import build_family
from trainers.core import sharding
from trainers.pipelines.imitation_targets import load_targets
from trainers.pipelines.train import build_meta_step, initial_meta_state, place_state

TARGET_FRACTION = 0.25
TARGET_N = 16


@contextlib.contextmanager
def unrolled_scans():
    """While active, `jax.lax.scan` unrolls fully (so XLA's cost analysis counts every trip)."""
    original = jax.lax.scan

    @functools.wraps(original)
    def scan(*args, **kwargs):
        kwargs["unroll"] = True
        return original(*args, **kwargs)

    jax.lax.scan = scan
    try:
        yield
    finally:
        jax.lax.scan = original


def build(config_path: str, n: int, u: int, extra: list[str]) -> tuple[Any, Any, Any, Any]:
    """(jitted meta-step, placed state, un-jitted meta_step, state sharding) as `meta_train.train` builds them."""
    overrides = [
        f"meta_train.num_instances={n}",
        f"meta_train.unroll.unroll_length={u}",
        "logging.mode=disabled",
        *extra,
    ]
    config = load_experiment(config_path, overrides)
    mesh = sharding.task_mesh()
    sharding.check_divisible(config.meta_train.num_instances, mesh)
    family = build_family(config)
    state = place_state(initial_meta_state(config, family), mesh)
    with tempfile.TemporaryDirectory() as run_dir:
        targets = load_targets(config, family, pathlib.Path(run_dir))
    meta_step = build_meta_step(config, family, targets)
    state_sharding = jax.tree_util.tree_map(lambda x: x.sharding, state)
    step_fn = jax.jit(meta_step, out_shardings=(state_sharding, None))
    return step_fn, state, meta_step, state_sharding


class Steps:
    """Meta-steps built (`build`) and compiled once per (N, U), shared by all three tables.

    `get(n, u)` -> dict with `compiled` (the rolled step's executable, called as
    `compiled(state)`), `state`, `meta_step`, `state_sharding` and `compile_s`
    (seconds to trace, lower and compile).
    """

    def __init__(self, config_path: str, extra: list[str]):
        self.config_path, self.extra, self.cache = config_path, extra, {}

    def get(self, n: int, u: int) -> dict[str, Any]:
        if (n, u) not in self.cache:
            step_fn, state, meta_step, state_sharding = build(self.config_path, n, u, self.extra)
            tick = time.perf_counter()
            compiled = step_fn.lower(state).compile()
            self.cache[(n, u)] = dict(
                compiled=compiled,
                state=state,
                meta_step=meta_step,
                state_sharding=state_sharding,
                compile_s=time.perf_counter() - tick,
            )
        return self.cache[(n, u)]


def flop_counts(compiled, meta_step, state, state_sharding) -> dict[str, float]:
    """XLA's FLOP count of the rolled step (scan bodies once) and of the fully unrolled one."""
    rolled = common.cost_dict(compiled.cost_analysis())
    # A fresh wrapper, so jit's trace cache (keyed on the function) cannot hand back
    # the rolled trace.
    with unrolled_scans():
        lowered = jax.jit(lambda s: meta_step(s), out_shardings=(state_sharding, None)).lower(state)
    unrolled = common.cost_dict(lowered.compile().cost_analysis())
    return {
        "rolled": rolled.get("flops", float("nan")),
        "unrolled": unrolled.get("flops", float("nan")),
        "unrolled_bytes": unrolled.get("bytes accessed", float("nan")),
    }


def memory(compiled) -> dict[str, float]:
    """Bytes of the compiled step from `memory_analysis()`."""
    m = compiled.memory_analysis()
    fields = (
        "argument_size_in_bytes",
        "output_size_in_bytes",
        "temp_size_in_bytes",
        "alias_size_in_bytes",
        "generated_code_size_in_bytes",
    )
    out = {f: float(getattr(m, f, float("nan"))) for f in fields}
    out["total_bytes"] = (
        out["argument_size_in_bytes"]
        + out["output_size_in_bytes"]
        + out["temp_size_in_bytes"]
        - out["alias_size_in_bytes"]
    )
    return out


def time_chained(
    cases: dict[int, tuple[Any, Any]], matmul, repeats: int, numbers: dict[int, int]
) -> tuple[dict[int, list[float]], dict[int, list[float]]]:
    """Per-round seconds per meta-step (state chained from call to call) and the matmul's,
    in alternating rounds: round r of every N (each followed by one matmul round) runs
    before round r + 1 of any."""
    mm_fn, mm_args = matmul
    jax.block_until_ready(mm_fn(*mm_args))
    states = {}
    for n, (fn, state) in cases.items():
        state, metrics = fn(state)  # compiled already; one more warm call
        states[n] = jax.block_until_ready(state)
    step_rounds = {n: [] for n in cases}
    mm_rounds = {n: [] for n in cases}
    for _ in range(repeats):
        for n, (fn, _) in cases.items():
            state = states[n]
            start = time.perf_counter()
            for _ in range(numbers[n]):
                state, metrics = fn(state)
                jax.block_until_ready((state, metrics))
            step_rounds[n].append((time.perf_counter() - start) / numbers[n])
            states[n] = state
            start = time.perf_counter()
            for _ in range(3):
                jax.block_until_ready(mm_fn(*mm_args))
            mm_rounds[n].append((time.perf_counter() - start) / 3)
    return step_rounds, mm_rounds


UNROLL = 20
MEM_UNROLLS = [10, 20, 50]  # divisors of the default config's horizon (100)
TINY_SET = [
    "meta_train.unroll.horizon=4",
    "task.options.batch_size=8",
    "task.options.hidden_sizes=[4]",
    "meta_train.lstm.hidden_sizes=[4, 4]",
]
PRESETS = {
    "quick": dict(repeats=3, inner_steps=640),
    # Seconds, for tests/test_benchmarks.py: the same code as --quick at toy sizes.
    "tiny": dict(
        instances=[1],
        unroll=2,
        mem_instances=[1],
        mem_unrolls=[1, 2],
        repeats=2,
        inner_steps=4,
        matmul_n=64,
        set=TINY_SET,
    ),
}


def unroll_lengths(u: int, mem_unrolls: list[int]) -> list[int]:
    """Every unroll length the run builds a step for: U, the U check's U // 2, the memory sweep's."""
    return sorted({u, max(1, u // 2), *mem_unrolls})


def check_unrolls(config_path: str, unrolls: list[int], extra: list[str]) -> None:
    """Loads the config (no JAX) at every unroll length before anything is measured.

    Raises:
      ValueError: naming the unroll lengths the config rejects (the horizon must be a
        multiple of each) and the ones it accepts, so a bad sweep fails in a second,
        not after minutes of measuring.
    """
    rejected = {}
    for u in unrolls:
        try:
            load_experiment(
                config_path,
                [f"meta_train.unroll.unroll_length={u}", "logging.mode=disabled", *extra],
            )
        except ValueError as error:
            rejected[u] = error
    if rejected:
        horizon = load_experiment(
            config_path, ["logging.mode=disabled", *extra]
        ).meta_train.unroll.horizon
        valid = [d for d in range(1, horizon + 1) if horizon % d == 0]
        raise ValueError(
            f"unroll lengths {sorted(rejected)} are not divisors of the horizon {horizon} "
            f"({config_path}, {extra}); valid: {valid}. First error: "
            f"{next(iter(rejected.values()))}"
        )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark on command-line `argv`: prints the tables, writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/digits_mlp.yaml")
    parser.add_argument("--set", nargs="*", default=[], help="extra a.b=value overrides")
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument(
        "--unroll",
        type=int,
        default=UNROLL,
        help="U for the throughput table (U and U // 2 must divide the horizon)",
    )
    parser.add_argument("--mem-instances", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument(
        "--mem-unrolls",
        type=int,
        nargs="+",
        default=MEM_UNROLLS,
        help="U of the memory sweep, divisors of the horizon (100 in the default config)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--inner-steps",
        type=int,
        default=1280,
        help="about this many inner steps (N*U summed) per timed round",
    )
    parser.add_argument("--matmul-n", type=int, default=2048)
    parser.add_argument("--quick", action="store_true", help="repeats 3, fewer steps per round")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="toy sizes, a few seconds: the same code as --quick, for tests",
    )
    parser.add_argument("--out", default="runs/benchmarks/meta_train.json")
    args = common.parse_args(parser, argv, PRESETS)
    u = args.unroll
    check_unrolls(args.config, unroll_lengths(u, args.mem_unrolls), args.set)
    matmul = common.matmul_case(args.matmul_n)
    matmul_flops = 2.0 * args.matmul_n**3
    gflop_headers = ["N", "U", "rolled (scan bodies once) GFLOP", "fully unrolled GFLOP"]
    gflop_row = lambda n, uu, c: (n, uu, c["rolled"] / 1e9, c["unrolled"] / 1e9)

    steps = Steps(args.config, args.set)
    cases, counts, compile_s = {}, {}, {}
    counting = common.RowPrinter("XLA FLOP counts, as measured:", gflop_headers)
    for n in args.instances:
        step = steps.get(n, u)
        tick = time.perf_counter()
        jax.block_until_ready(step["compiled"](step["state"]))  # first call (not timed)
        compile_s[n] = step["compile_s"] + time.perf_counter() - tick
        cases[n] = (step["compiled"], step["state"])
        counts[(n, u)] = flop_counts(
            step["compiled"], step["meta_step"], step["state"], step["state_sharding"]
        )
        counting.add(gflop_row(n, u, counts[(n, u)]))
    # U check: the same counts at U/2 for the target N.
    check_n = TARGET_N if TARGET_N in args.instances else args.instances[0]
    check_u = max(1, u // 2)
    step = steps.get(check_n, check_u)
    counts[(check_n, check_u)] = flop_counts(
        step["compiled"], step["meta_step"], step["state"], step["state_sharding"]
    )
    counting.add(gflop_row(check_n, check_u, counts[(check_n, check_u)]))
    print()

    numbers = {n: max(1, args.inner_steps // (n * u)) for n in args.instances}
    step_rounds, mm_rounds = time_chained(cases, matmul, args.repeats, numbers)

    # All N are timed in the same alternating rounds, so their rows come out together.
    throughput = common.RowPrinter(
        "Throughput, as measured:",
        [
            "N",
            "U",
            "ms/meta-step",
            "inner steps/s",
            "XLA GFLOP/meta-step",
            "MFLOP/inner step",
            "GFLOP/s",
            "of matmul",
            "compile+1st s",
        ],
    )
    results = []
    for n in args.instances:
        flops = counts[(n, u)]["unrolled"]
        seconds = statistics.median(step_rounds[n])
        fraction = statistics.median(
            flops * m / (matmul_flops * t) for t, m in zip(step_rounds[n], mm_rounds[n])
        )
        r = {
            "num_instances": n,
            "unroll_length": u,
            "seconds_per_meta_step": seconds,
            "inner_steps_per_second": n * u / seconds,
            "compile_and_first_call_s": compile_s[n],
            "xla_flops": flops,
            "xla_flops_rolled": counts[(n, u)]["rolled"],
            "xla_bytes_unrolled": counts[(n, u)]["unrolled_bytes"],
            "flop_rate": flops / seconds,
            "matmul_rate": matmul_flops / statistics.median(mm_rounds[n]),
            "fraction_of_matmul": fraction,
            "calls_per_round": numbers[n],
            "rounds_s": step_rounds[n],
        }
        results.append(r)
        throughput.add(
            (
                n,
                u,
                r["seconds_per_meta_step"] * 1e3,
                r["inner_steps_per_second"],
                r["xla_flops"] / 1e9,
                r["xla_flops"] / (n * u) / 1e6,
                r["flop_rate"] / 1e9,
                f"{100 * r['fraction_of_matmul']:.1f}%",
                r["compile_and_first_call_s"],
            )
        )
    print()

    mib = 2.0**20
    memory_rows = common.RowPrinter(
        "Meta-step memory (compiled.memory_analysis(), MiB), as measured:",
        ["N", "U", "arguments", "outputs", "temporaries", "aliased", "total (args+out+temp-alias)"],
    )
    mem_rows = []
    for n in args.mem_instances:
        for mu in args.mem_unrolls:
            m = {"num_instances": n, "unroll_length": mu, **memory(steps.get(n, mu)["compiled"])}
            mem_rows.append(m)
            memory_rows.add(
                (
                    n,
                    mu,
                    m["argument_size_in_bytes"] / mib,
                    m["output_size_in_bytes"] / mib,
                    m["temp_size_in_bytes"] / mib,
                    m["alias_size_in_bytes"] / mib,
                    m["total_bytes"] / mib,
                )
            )
    print()

    rates = [r["matmul_rate"] for r in results]
    print(
        f"f32 [{args.matmul_n}]^2 matmul, timed between rounds: "
        f"{min(rates) / 1e9:.0f}-{max(rates) / 1e9:.0f} GFLOP/s (median per N)"
    )
    print(throughput.table())
    print()
    print("XLA FLOP counts (U check):")
    print(
        common.table(gflop_headers, [gflop_row(n, uu, c) for (n, uu), c in sorted(counts.items())])
    )
    print()
    print("Meta-step memory (compiled.memory_analysis(), MiB):")
    print(memory_rows.table())
    for r in results:
        if r["num_instances"] == TARGET_N:
            met = "met" if r["fraction_of_matmul"] >= TARGET_FRACTION else "not met"
            print(
                f"N={TARGET_N}, U={u}: {100 * r['fraction_of_matmul']:.1f}% of the matmul rate "
                f"-> aim >= {100 * TARGET_FRACTION:.0f}% {met}"
            )
    out = {
        "benchmark": "meta_train",
        "config": args.config,
        "overrides": args.set,
        "matmul_n": args.matmul_n,
        "target_fraction": TARGET_FRACTION,
        "repeats": args.repeats,
        "results": results,
        "flop_counts": [
            {"num_instances": n, "unroll_length": uu, **c} for (n, uu), c in sorted(counts.items())
        ],
        "memory": mem_rows,
        "machine": common.machine_info(),
    }
    print(f"wrote {common.write_results(args.out, out)}", flush=True)
    return out


if __name__ == "__main__":
    main()
