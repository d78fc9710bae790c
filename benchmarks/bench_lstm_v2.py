"""Cost of the v2 LSTM optimizer's update (all inputs on) next to optax.adam's and the v1 LSTM's.

Question: what does the richer-input learned optimizer cost per inner step, as
a ratio to Adam and to the 2016 LSTM optimizer, on the same parameters in the
same process? Each optimizer's step is `opt.update(grads, state, params)` then
`optax.apply_updates`, on a fixed gradient (the gradient's own cost is left
out: it is the same for all three). Problems:

- the digits MLP (`tasks.get_task("digits_mlp")`, 1,510 parameters; its
  minibatch gradient at init);
- an MLP of about 100k parameters (widths `--mlp-widths`, default
  256-256-128-10: 99,978 parameters), random gradients.

Steps are timed as one jitted `lax.scan` of `--steps` steps, divided by
`--steps`, as the trainers unroll them (a single jitted call would mostly time
dispatch on these sizes). Compilation happens before timing. All cases of a
problem are timed in alternating rounds; a time is the median over rounds, a
ratio the median of per-round ratios. The FLOP column is XLA's count of the
scan, which counts its body (one step) once. v2 is `LSTMv2Config(inputs=INPUTS, horizon=1000,
relative_update=True)`: 23 features per coordinate against v1's 2.

Run: .venv/bin/python -m benchmarks.bench_lstm_v2 [--quick | --tiny]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import jax
import jax.numpy as jnp
import optax

import tasks
from benchmarks import common
from meta_opt.lstm_v1_config import LSTMv1Config
from meta_opt.lstm_v2_config import INPUTS, LSTMv2Config

OPTIMIZERS = ("adam", "lstm_v1", "lstm_v2")
HEADERS = ["problem", "params", "optimizer", "us/step", "x adam", "x lstm_v1", "XLA MFLOP/step"]
PRESETS = {
    "quick": dict(repeats=3, number=3),
    # Seconds, for tests: the same code as --quick at toy sizes.
    "tiny": dict(repeats=2, number=1, steps=2, mlp_widths=[8, 8, 4], digits_hidden=[4]),
}


def mlp_problem(widths: list[int], key: jax.Array) -> tuple[Any, Any]:
    """Weights and biases of an MLP with layer widths `widths` (inputs first), and random gradients."""
    keys = jax.random.split(key, len(widths))
    params = {
        f"layer_{i}": {"w": jax.random.normal(k, (a, b)) / a**0.5, "b": jnp.zeros(b)}
        for i, (k, a, b) in enumerate(zip(keys, widths[:-1], widths[1:]))
    }
    grads = optax.tree_utils.tree_random_like(keys[-1], params)
    return params, jax.tree_util.tree_map(lambda g: 1e-2 * g, grads)


def problems(args: argparse.Namespace) -> dict[str, tuple[Any, Any]]:
    """name -> (params, grads) of the problems measured (set up in jitted functions: faster)."""
    task = tasks.get_task("digits_mlp", hidden_sizes=tuple(args.digits_hidden))

    def setup(init_key, batch_key):
        params = task.init(init_key)
        return params, jax.grad(task.loss)(params, task.sample_batch(batch_key))

    digits = jax.jit(setup)(jax.random.PRNGKey(0), jax.random.PRNGKey(1))
    mlp = jax.jit(mlp_problem, static_argnums=0)(tuple(args.mlp_widths), jax.random.PRNGKey(2))
    return {"digits_mlp": digits, "mlp_" + "-".join(map(str, args.mlp_widths)): mlp}


def optimizers() -> dict[str, optax.GradientTransformation]:
    """Adam, the v1 LSTM optimizer and the v2 one with every input, with fresh meta-params."""
    v1, v2 = LSTMv1Config(), LSTMv2Config(inputs=INPUTS, horizon=1000, relative_update=True)
    meta_v1, meta_v2 = jax.jit(lambda key: (v1.init(key), v2.init(key)))(jax.random.PRNGKey(0))
    return {
        "adam": optax.adam(1e-3),
        "lstm_v1": v1.transformation(meta_v1),
        "lstm_v2": v2.transformation(meta_v2),
    }


def make_case(
    opt: optax.GradientTransformation, params: Any, grads: Any, steps: int
) -> tuple[Any, tuple[Any, ...]]:
    """A scan of `steps` steps `(params, state, grads) -> (params, state)` and its arguments,
    compiled once (`jax.jit(...).lower(...).compile()`: callable, with XLA's cost analysis)."""

    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    def scan(params, state, grads):
        body = lambda carry, _: (step(*carry, grads), None)
        return jax.lax.scan(body, (params, state), None, length=steps)[0]

    args = (params, opt.init(params), grads)
    return jax.jit(scan).lower(*args).compile(), args


def measure(
    name: str,
    params: Any,
    grads: Any,
    opts: dict[str, optax.GradientTransformation],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Times every optimizer's scan on one problem in alternating rounds."""
    cases = {opt_name: make_case(opt, params, grads, args.steps) for opt_name, opt in opts.items()}
    rounds = common.time_interleaved(
        cases, repeats=args.repeats, number=args.number, return_rounds=True
    )
    rounds = {label: [t / args.steps for t in ts] for label, ts in rounds.items()}
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
    return [
        {
            "problem": name,
            "n_params": n_params,
            "optimizer": opt_name,
            "seconds_per_step": statistics.median(rounds[opt_name]),
            "ratio_to_adam": common.paired_ratio(rounds, opt_name, "adam"),
            "ratio_to_lstm_v1": common.paired_ratio(rounds, opt_name, "lstm_v1"),
            "xla_flops_per_step": common.cost_dict(cases[opt_name][0].cost_analysis()).get(
                "flops", float("nan")
            ),
            "rounds_seconds_per_step": rounds[opt_name],
        }
        for opt_name in OPTIMIZERS
    ]


def row(r: dict[str, Any]) -> tuple:
    """One table row of a `measure` result."""
    return (
        r["problem"],
        r["n_params"],
        r["optimizer"],
        r["seconds_per_step"] * 1e6,
        r["ratio_to_adam"],
        r["ratio_to_lstm_v1"],
        r["xla_flops_per_step"] / 1e6,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark on command-line `argv`: prints rows as measured, the table, writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlp-widths", type=int, nargs="+", default=[256, 256, 128, 10])
    parser.add_argument(
        "--digits-hidden",
        type=int,
        nargs="+",
        default=[20],
        help="hidden widths of the digits MLP (the task's default: 20)",
    )
    parser.add_argument("--steps", type=int, default=20, help="steps per scan")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--number", type=int, default=10, help="scans per timed round")
    parser.add_argument("--quick", action="store_true", help="repeats=3, number=3")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="toy sizes, a few seconds: the same code as --quick, for tests",
    )
    parser.add_argument("--out", default="runs/benchmarks/lstm_v2.json")
    args = common.parse_args(parser, argv, PRESETS)
    printer = common.RowPrinter("LSTM v2 optimizer step cost, as measured:", HEADERS)
    results = []
    opts = optimizers()
    for name, (params, grads) in problems(args).items():
        for r in measure(name, params, grads, opts, args):
            results.append(r)
            printer.add(row(r))
    print()
    print(printer.table())
    out = {
        "benchmark": "lstm_v2",
        "inputs": list(INPUTS),
        "steps_per_scan": args.steps,
        "repeats": args.repeats,
        "number": args.number,
        "results": results,
        "machine": common.machine_info(),
    }
    print(f"wrote {common.write_results(args.out, out)}", flush=True)
    return out


if __name__ == "__main__":
    main()
