"""Throughput of the LSTM meta-optimizer's update and its FLOP rate next to a big matmul.

For n coordinates (params = {"w": zeros(n)}, random gradients) this times the
jitted `update` of `LSTMv1Config().transformation(meta_params)`, alone and as
a `lax.scan` of `--steps` updates (as the trainers unroll it), and reports
coordinates per second, XLA's own FLOP count per update (`cost_analysis`), the
achieved FLOP/s and its fraction of a jitted [2048, 2048] f32 matmul's rate
measured in the same process, in rounds alternating with the update's.
Target: >= 40% of that rate at 16k coordinates.
XLA's "bytes accessed" count over the time is shown too (traffic, cache included).

To support the explanation it also times the LSTM's gate matmuls alone
([n, 22] x [22, 80] and [n, 40] x [40, 80] for hidden (20, 20)) and, with
`--dtypes float32 bfloat16`, the same update in bfloat16.

Each size's rows are printed as soon as they are measured; the table is printed
again, aligned, at the end.

Run: .venv/bin/python -m benchmarks.bench_lstm_optimizer [--sizes 1024 16384] [--quick | --tiny]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import jax
import jax.numpy as jnp

from benchmarks import common
from meta_opt.lstm_v1_config import LSTMv1Config

TARGET_FRACTION = 0.40


def cast_floats(tree: Any, dtype: Any) -> Any:
    """`tree` with its floating-point leaves cast to `dtype` (integer leaves untouched)."""
    return jax.tree_util.tree_map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )


def make_cases(
    n: int, dtype: Any, steps: int, unroll: int = 1
) -> dict[str, tuple[Any, tuple[Any, ...]]]:
    """Jitted functions and arguments: one update, a scan of `steps` updates, the gate matmuls."""
    config = LSTMv1Config()
    meta_params = cast_floats(config.init(jax.random.PRNGKey(0)), dtype)
    opt = config.transformation(meta_params)
    params = {"w": jnp.zeros(n, dtype)}
    state = cast_floats(opt.init(params), dtype)
    grads = 1e-3 * jax.random.normal(jax.random.PRNGKey(1), (steps, n), dtype)

    def scan(params, state, grads):
        def body(carry, g):
            params, state = carry
            updates, state = opt.update({"w": g}, state, params)
            return (jax.tree_util.tree_map(jnp.add, params, updates), state), None

        return jax.lax.scan(body, (params, state), grads, unroll=unroll)[0]

    widths = [config.num_features] + list(config.hidden_sizes[:-1])
    inputs = [jnp.ones((n, w + h), dtype) for w, h in zip(widths, config.hidden_sizes)]
    weights = [jnp.ones((w + h, 4 * h), dtype) for w, h in zip(widths, config.hidden_sizes)]
    gates = jax.jit(lambda xs, ws: [x @ w for x, w in zip(xs, ws)])
    return {
        "update": (jax.jit(opt.update), ({"w": grads[0]}, state, params)),
        "scan": (jax.jit(scan), (params, state, grads)),
        "gate_matmuls": (gates, (inputs, weights)),
    }


def measure(n: int, dtype: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Times the cases for n coordinates, each in rounds alternating with the big matmul.

    The fraction of the matmul rate is the median over rounds of the ratio of
    the two rates in the same round, so a busy spell of the machine cancels out.
    """
    cases = make_cases(n, dtype, args.steps, args.unroll)
    matmul = common.matmul_case(args.matmul_n)
    matmul_flops = 2.0 * args.matmul_n**3
    number = args.number or max(1, 2**16 // n)
    per_update = {"update": 1, "scan": args.steps, "gate_matmuls": 1}
    rounds = {}
    for group in (("update", "gate_matmuls"), ("scan",)):
        timed = common.time_interleaved(
            {**{k: cases[k] for k in group}, "matmul": matmul},
            repeats=args.repeats,
            number={**{k: max(1, number // per_update[k]) for k in group}, "matmul": 1},
            return_rounds=True,
        )
        rounds.update({k: (timed[k], timed["matmul"]) for k in group})
    costs = {name: common.xla_cost(fn, *fn_args) for name, (fn, fn_args) in cases.items()}
    results = []
    for name in ("update", "scan", "gate_matmuls"):
        times = [t / per_update[name] for t in rounds[name][0]]
        seconds = statistics.median(times)
        # XLA counts a scan's body once (xla_flops_raw), so the scan uses one update's count.
        cost = costs["update"] if name == "scan" else costs[name]
        flops = cost.get("flops", float("nan"))
        results.append(
            {
                "n": n,
                "dtype": jnp.dtype(dtype).name,
                "case": name,
                "seconds_per_update": seconds,
                "coords_per_second": n / seconds,
                "xla_flops_per_update": flops,
                "xla_bytes_per_update": cost.get("bytes accessed", float("nan")),
                "xla_transcendentals_per_update": cost.get("transcendentals", float("nan")),
                "xla_flops_raw": costs[name].get("flops", float("nan")),
                "flop_rate": flops / seconds,
                "xla_byte_rate": cost.get("bytes accessed", float("nan")) / seconds,
                "matmul_rate": matmul_flops / statistics.median(rounds[name][1]),
                "fraction_of_matmul": statistics.median(
                    flops * m / (matmul_flops * t) for t, m in zip(times, rounds[name][1])
                ),
            }
        )
    return results


HEADERS = [
    "n",
    "dtype",
    "case",
    "us/update",
    "Mcoord/s",
    "XLA MFLOP/update",
    "flop/byte",
    "GB/s (XLA bytes)",
    "GFLOP/s",
    "of matmul",
]
PRESETS = {
    "quick": dict(sizes=[1024, 16384], repeats=3),
    # Seconds, for tests/test_benchmarks.py: the same code as --quick at toy sizes.
    "tiny": dict(sizes=[64, 256], steps=4, repeats=2, number=1, matmul_n=64),
}


def row(r: dict[str, Any]) -> tuple:
    """One table row of a `measure` result."""
    return (
        r["n"],
        r["dtype"],
        r["case"],
        r["seconds_per_update"] * 1e6,
        r["coords_per_second"] / 1e6,
        r["xla_flops_per_update"] / 1e6,
        r["xla_flops_per_update"] / r["xla_bytes_per_update"],
        r["xla_byte_rate"] / 1e9,
        r["flop_rate"] / 1e9,
        f"{100 * r['fraction_of_matmul']:.1f}%",
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark on command-line `argv`: prints each size's rows as measured, the
    table at the end, and writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    parser.add_argument("--dtypes", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--steps", type=int, default=20, help="updates per scan")
    parser.add_argument("--unroll", type=int, default=1, help="lax.scan unroll of the scan")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--number",
        type=int,
        default=0,
        help="calls per timed round (0: about 65536 coordinates' worth)",
    )
    parser.add_argument("--matmul-n", type=int, default=2048)
    parser.add_argument("--quick", action="store_true", help="sizes 1024 16384, repeats 3")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="toy sizes, a few seconds: the same code as --quick, for tests",
    )
    parser.add_argument("--out", default="runs/benchmarks/lstm_optimizer.json")
    args = common.parse_args(parser, argv, PRESETS)
    printer = common.RowPrinter("LSTM optimizer updates, as measured:", HEADERS)
    results = []
    for dtype in args.dtypes:
        for n in args.sizes:
            for r in measure(n, jnp.dtype(dtype), args):
                results.append(r)
                printer.add(row(r))
    print()
    rates = [r["matmul_rate"] for r in results]
    print(
        f"f32 [{args.matmul_n}]^2 matmul, timed in the rounds between: "
        f"{min(rates) / 1e9:.0f}-{max(rates) / 1e9:.0f} GFLOP/s (median per case); "
        f"target >= {100 * TARGET_FRACTION:.0f}% at n=16384"
    )
    print(printer.table())
    for r in results:
        if r["n"] == 16384 and r["case"] in ("update", "scan"):
            met = "met" if r["fraction_of_matmul"] >= TARGET_FRACTION else "not met"
            print(
                f"n=16384 {r['dtype']} {r['case']}: {100 * r['fraction_of_matmul']:.1f}% "
                f"of the matmul rate -> target {met}"
            )
    out = {
        "benchmark": "lstm_optimizer",
        "matmul_n": args.matmul_n,
        "target_fraction": TARGET_FRACTION,
        "steps_per_scan": args.steps,
        "scan_unroll": args.unroll,
        "repeats": args.repeats,
        "results": results,
        "machine": common.machine_info(),
    }
    print(f"wrote {common.write_results(args.out, out)}", flush=True)
    return out


if __name__ == "__main__":
    main()
