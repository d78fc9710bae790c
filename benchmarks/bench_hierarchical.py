"""Cost of the hierarchical learned optimizer next to the v2 LSTM and optax.adam (issue 24).

Question: does the per-tensor LSTM over a tiny per-parameter MLP (`HierarchicalConfig()`)
cost what it was built to cost? Four measures, all in one process so the ratios compare:

1. update / Adam's: `opt.update(grads, state, params)` + `optax.apply_updates` on the
   ~100k-parameter MLP of `bench_lstm_v2` (widths `--mlp-widths`, random gradients); v2 is
   `bench_lstm_v2`'s (every input on). Target: hierarchical <= 4x.
2. whole step / Adam's: gradient of the softmax cross-entropy of an MLP `--train-widths`
   (784-128-64-10) on one random batch of `--batch-size` (128), then the update; fresh
   hierarchical meta-params (the cost does not depend on their values) against the shipped
   v2_mixed and v2_digits bundles. Target: hierarchical <= 1.3x.
3. meta-training inner steps per second on digits_mlp: the meta-step `meta-opt train`
   builds (`bench_meta_train.build`: `build_meta_step` with the config), for
   configs/lstm_v2.yaml and configs/hierarchical.yaml at the same N and U; each timed call
   consumes the state the previous one returned. Target: hierarchical >= 5x v2.
4. optimizer state floats per parameter: floating-point elements of `tx.init(params)`
   (integer step counters left out) over parameters, on the MLP `--state-widths` (shapes
   only, `jax.eval_shape`, so full size even with --tiny; default the 100k MLP of 1).
   Adam: 2; hierarchical: `state_floats_per_parameter` plus its per-tensor LSTM rows.

1 and 2 time one jitted `lax.scan` of `--steps` steps (divided by `--steps`), compiled
first; every measure alternates its cases in rounds, a time is the median over rounds and
a ratio the median of per-round ratios (`common.time_interleaved`, `common.paired_ratio`).

Run: .venv/bin/python -m benchmarks.bench_hierarchical [--quick | --tiny]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import jax
import jax.numpy as jnp
import optax

import meta_opt
from benchmarks import bench_lstm_v2, bench_meta_train, common
from meta_opt.hierarchical_config import HierarchicalConfig

HEADERS = ["measure", "v2", "hierarchical", "target", "verdict"]
CONFIGS = {"lstm_v2": "configs/lstm_v2.yaml", "hierarchical": "configs/hierarchical.yaml"}
TINY_META = {
    "lstm_v2": ["meta_train.lstm.hidden_sizes=[4, 4]"],
    "hierarchical": ["meta_train.lstm.lstm_hidden=4"],
}
TINY_SET = [s for s in bench_meta_train.TINY_SET if "lstm" not in s]
PRESETS = {
    "quick": dict(repeats=3, number=2, meta_calls=1),
    # Seconds, for tests: the same code as --quick at toy sizes.
    "tiny": dict(
        repeats=2,
        number=1,
        steps=2,
        mlp_widths=[8, 8, 4],
        train_widths=[16, 8, 4],
        batch_size=8,
        instances=1,
        unroll=2,
        meta_calls=1,
        set=TINY_SET,
    ),
}


def timed(cases: dict[str, tuple[Any, tuple]], args: argparse.Namespace) -> dict[str, Any]:
    """Seconds per step (median of rounds) and ratio to Adam (median of paired rounds) per case."""
    rounds = common.time_interleaved(cases, args.repeats, args.number, return_rounds=True)
    return {
        name: {
            "seconds_per_step": statistics.median(ts) / args.steps,
            "ratio_to_adam": common.paired_ratio(rounds, name, "adam"),
        }
        for name, ts in rounds.items()
    }


def train_case(opt: optax.GradientTransformation, params: Any, batch: tuple, steps: int):
    """A compiled scan of `steps` whole training steps (gradient, update) and its arguments."""

    def loss(params, x, y):
        for i in range(len(params)):
            x = x @ params[f"layer_{i}"]["w"] + params[f"layer_{i}"]["b"]
            x = jax.nn.relu(x) if i < len(params) - 1 else x
        return optax.softmax_cross_entropy_with_integer_labels(x, y).mean()

    def body(carry, _):
        params, state = carry
        updates, state = opt.update(jax.grad(loss)(params, *batch), state, params)
        return (optax.apply_updates(params, updates), state), None

    scan = lambda p, s: jax.lax.scan(body, (p, s), None, length=steps)[0]
    args = (params, opt.init(params))
    return jax.jit(scan).lower(*args).compile(), args


def meta_throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Inner steps per second of each kind's meta-step, timed in alternating rounds."""
    cases = {}
    for kind, path in CONFIGS.items():
        extra = args.set + (TINY_META[kind] if args.tiny else [])
        step_fn, state, _, _ = bench_meta_train.build(path, args.instances, args.unroll, extra)
        cases[kind] = (step_fn.lower(state).compile(), state)
    # time_chained alternates rounds with a matmul's (its rates, of a tiny one, are unused).
    numbers = {kind: args.meta_calls for kind in cases}
    rounds, _ = bench_meta_train.time_chained(cases, common.matmul_case(64), args.repeats, numbers)
    steps = args.instances * args.unroll
    rates = {kind: [steps / t for t in ts] for kind, ts in rounds.items()}
    return {
        "inner_steps_per_second": {k: statistics.median(r) for k, r in rates.items()},
        "hierarchical_over_v2": common.paired_ratio(rates, "hierarchical", "lstm_v2"),
        "rounds_seconds_per_meta_step": rounds,
    }


def state_floats(opt: optax.GradientTransformation, widths: list[int]) -> float:
    """Floating-point elements of `opt.init(params)` per parameter of the MLP `widths`."""
    params = jax.eval_shape(lambda: bench_lstm_v2.mlp_problem(widths, jax.random.PRNGKey(0))[0])
    floats = lambda tree: sum(
        x.size for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)
    )
    return floats(jax.eval_shape(opt.init, params)) / floats(params)


def verdict(met: bool) -> str:
    """A table's verdict cell."""
    return "met" if met else "not met"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark on command-line `argv`: prints rows as measured, the table, writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlp-widths", type=int, nargs="+", default=[256, 256, 128, 10])
    parser.add_argument("--train-widths", type=int, nargs="+", default=[784, 128, 64, 10])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--state-widths", type=int, nargs="+", default=[256, 256, 128, 10])
    parser.add_argument("--steps", type=int, default=20, help="steps per scan (1 and 2)")
    parser.add_argument("--instances", type=int, default=8, help="N of the meta-step (3)")
    parser.add_argument("--unroll", type=int, default=20, help="U of the meta-step (3)")
    parser.add_argument("--set", nargs="*", default=[], help="extra a.b=value overrides (3)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=3, help="scans per timed round (1, 2)")
    parser.add_argument("--meta-calls", type=int, default=2, help="meta-steps per round (3)")
    parser.add_argument("--quick", action="store_true", help="repeats=3, fewer calls per round")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="toy sizes, a few seconds: the same code as --quick, for tests",
    )
    parser.add_argument("--out", default="runs/benchmarks/hierarchical.json")
    args = common.parse_args(parser, argv, PRESETS)
    printer = common.RowPrinter("Hierarchical optimizer step cost, as measured:", HEADERS)
    hier = HierarchicalConfig()
    fresh = hier.transformation(jax.jit(hier.init)(jax.random.PRNGKey(0)))
    base = bench_lstm_v2.optimizers()
    opts = {"adam": base["adam"], "lstm_v2": base["lstm_v2"], "hierarchical": fresh}

    params, grads = jax.jit(bench_lstm_v2.mlp_problem, static_argnums=0)(
        tuple(args.mlp_widths), jax.random.PRNGKey(2)
    )
    update = timed(
        {k: bench_lstm_v2.make_case(o, params, grads, args.steps) for k, o in opts.items()}, args
    )
    u = {k: r["ratio_to_adam"] for k, r in update.items()}
    printer.add(
        ("update / Adam", u["lstm_v2"], u["hierarchical"], "<= 4", verdict(u["hierarchical"] <= 4))
    )

    kx, ky = jax.random.split(jax.random.PRNGKey(3))
    batch = (
        jax.random.normal(kx, (args.batch_size, args.train_widths[0])),
        jax.random.randint(ky, (args.batch_size,), 0, args.train_widths[-1]),
    )
    train_params = bench_lstm_v2.mlp_problem(tuple(args.train_widths), jax.random.PRNGKey(4))[0]
    bundles = {name: meta_opt.pretrained(name) for name in ("v2_mixed", "v2_digits")}
    train_opts = {"adam": opts["adam"], **bundles, "hierarchical": fresh}
    whole = timed(
        {k: train_case(o, train_params, batch, args.steps) for k, o in train_opts.items()}, args
    )
    w = {k: r["ratio_to_adam"] for k, r in whole.items()}
    v2_cell = f"{w['v2_mixed']:.4g} (mixed) / {w['v2_digits']:.4g} (digits)"
    printer.add(
        (
            "whole step / Adam",
            v2_cell,
            w["hierarchical"],
            "<= 1.3",
            verdict(w["hierarchical"] <= 1.3),
        )
    )

    meta = meta_throughput(args)
    rate, ratio = meta["inner_steps_per_second"], meta["hierarchical_over_v2"]
    h_cell = f"{rate['hierarchical']:.4g} ({ratio:.3g}x v2)"
    printer.add(("inner steps/s", rate["lstm_v2"], h_cell, ">= 5x v2", verdict(ratio >= 5)))

    floats = {k: state_floats(o, args.state_widths) for k, o in opts.items()}
    adam_cell = f"report (Adam {floats['adam']:.4g})"
    printer.add(
        ("state floats / param", floats["lstm_v2"], floats["hierarchical"], adam_cell, "reported")
    )
    print()
    print(printer.table())
    out = {
        "benchmark": "hierarchical",
        "args": vars(args),
        "hierarchical_config": repr(hier),
        "config_state_floats_per_parameter": hier.state_floats_per_parameter,
        "update": update,
        "whole_step": whole,
        "meta_train": meta,
        "state_floats_per_parameter": floats,
        "table": {"headers": HEADERS, "rows": printer.rows},
        "machine": common.machine_info(),
    }
    print(f"wrote {common.write_results(args.out, out)}", flush=True)
    return out


if __name__ == "__main__":
    main()
