"""Cost of ESGD steps as a ratio to SGD steps on the same task, in the same process.

A training step computes the minibatch gradient and applies the optimizer's
update. ESGD also takes one Hessian-vector product (Pearlmutter: about two
gradients) when it refreshes its preconditioner D, every `update_interval`
steps. Targets: a refreshing step <= 2.5x SGD, and <= 1.15x amortized over
update_interval=20.

Measured: single jitted steps (SGD; ESGD refreshing; ESGD not refreshing) and
one jitted `lax.scan` of `--steps` consecutive steps for SGD, ESGD with
update_interval=1 and ESGD with `--update-interval` (started at count 0, so a
20-step scan with interval 20 holds exactly one refresh). Diagnostic scans split
the cost: ESGD that never refreshes (the lax.cond and preconditioner alone), and
SGD plus the probe draw, plus Hv, plus both, without lax.cond. Ratios are
medians of per-round ratios, cases timed in alternating rounds.

All rows are timed in the same alternating rounds, so the table is printed once,
when they are all measured (the parameter and FLOP counts before the timing).

Run: .venv/bin/python -m benchmarks.bench_esgd [--task digits_mlp] [--quick | --tiny]
"""

from __future__ import annotations

import argparse
import ast
import statistics
from typing import Any

import jax
import jax.numpy as jnp
import optax

import tasks
from benchmarks import common
from meta_opt.registry import get_optimizer

REFRESH_TARGET, AMORTIZED_TARGET = 2.5, 1.15


PRESETS = {
    "quick": dict(repeats=3, number=5),
    # Seconds, for tests/test_benchmarks.py: the same code as --quick at toy sizes.
    "tiny": dict(
        repeats=2, number=1, steps=4, update_interval=2, set=["batch_size=8", "hidden_sizes=[4]"]
    ),
}


def make_step(task: tasks.Task, opt: optax.GradientTransformationExtraArgs):
    """One training step `(params, state, batch) -> (params, state)`, not jitted."""

    def step(params, state, batch):
        grads = jax.grad(task.loss)(params, batch)
        updates, state = opt.update(grads, state, params, value_fn=lambda p: task.loss(p, batch))
        return optax.apply_updates(params, updates), state

    return step


def make_scan(step, steps: int):
    """`steps` consecutive training steps on a fixed batch as one `lax.scan`, not jitted."""

    def run(params, state, batch):
        def body(carry, _):
            return step(*carry, batch), None

        (params, state), _ = jax.lax.scan(body, (params, state), None, length=steps)
        return params, state

    return run


def make_diagnostics(task: tasks.Task, lr: float) -> dict[str, Any]:
    """Parts of a refreshing ESGD step added to an SGD step, without `lax.cond`, not jitted.

    Each is a step `(params, key, batch) -> (params, key)` for `make_scan`.
    """

    def parts(draw: Any, hv: bool):  # draw: a jax.random sampler, or None for v = 1
        def step(params, key, batch):
            grads = jax.grad(task.loss)(params, batch)
            key, sub = jax.random.split(key)
            v = (
                optax.tree_utils.tree_random_like(sub, params, draw)
                if draw
                else jax.tree_util.tree_map(jnp.ones_like, params)
            )
            if hv:
                v = jax.jvp(jax.grad(lambda p: task.loss(p, batch)), (params,), (v,))[1]
            scale = jax.tree_util.tree_map(lambda x: lr / (jnp.abs(x) + 1.0), v)
            return jax.tree_util.tree_map(lambda p, g, c: p - c * g, params, grads, scale), key

        return step

    normal, rademacher = jax.random.normal, jax.random.rademacher
    return {
        "sgd_draw": parts(normal, False),
        "sgd_rademacher": parts(rademacher, False),
        "sgd_hv": parts(None, True),
        "sgd_draw_hv": parts(normal, True),
    }


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`key=value` task options; values are parsed as Python literals where possible."""
    overrides = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    return overrides


def verdict(ratio: float, target: float) -> str:
    """ "met" when `ratio` is at most `target`, else "not met"."""
    return "met" if ratio <= target else "not met"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark on command-line `argv`: prints the table, writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits_mlp")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="task options, e.g. batch_size=512 hidden_sizes=[256]",
    )
    parser.add_argument("--update-interval", type=int, default=20)
    parser.add_argument(
        "--steps", type=int, default=20, help="steps per scan (a multiple of --update-interval)"
    )
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--number", type=int, default=20, help="calls per timed round")
    parser.add_argument(
        "--prng",
        default="threefry2x32",
        choices=["threefry2x32", "rbg"],
        help="jax_default_prng_impl, which draws ESGD's probes v",
    )
    parser.add_argument("--quick", action="store_true", help="repeats=3, number=5")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a toy MLP, a few seconds: the same code as --quick, for tests",
    )
    parser.add_argument("--out", default="runs/benchmarks/esgd.json")
    args = common.parse_args(parser, argv, PRESETS)
    jax.config.update("jax_default_prng_impl", args.prng)
    overrides = parse_overrides(args.set)
    task = tasks.get_task(args.task, **overrides)
    params = task.init(jax.random.PRNGKey(0))
    batch = task.sample_batch(jax.random.PRNGKey(1))
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
    lr = args.learning_rate
    opts = {
        "sgd": get_optimizer("sgd", learning_rate=lr),
        "esgd_k1": get_optimizer("esgd", learning_rate=lr, update_interval=1),
        "esgd_k": get_optimizer("esgd", learning_rate=lr, update_interval=args.update_interval),
        "esgd_never": get_optimizer("esgd", learning_rate=lr, update_interval=2**30),
    }
    cases, flops = {}, {}
    for name, opt in opts.items():
        state = opt.init(params)
        step = jax.jit(make_step(task, opt))
        if name == "esgd_never":  # after its first step it never refreshes again
            _, state = step(params, state, batch)
        else:  # a fresh state has count 0: a single esgd_k call refreshes; count 1 does not
            cases[f"{name}_step"] = (step, (params, state, batch))
            flops[f"{name}_step"] = common.xla_flops(step, params, state, batch)
        cases[f"{name}_scan"] = (
            jax.jit(make_scan(make_step(task, opt), args.steps)),
            (params, state, batch),
        )
        if name == "esgd_k":
            _, skip_state = step(params, state, batch)
            cases["esgd_k_skip_step"] = (step, (params, skip_state, batch))
    for name, fn in make_diagnostics(task, lr).items():
        cases[f"{name}_scan"] = (
            jax.jit(make_scan(fn, args.steps)),
            (params, jax.random.PRNGKey(2), batch),
        )
    # Printed before the timing, which measures every row at once (alternating rounds).
    print(
        f"task {args.task} {overrides}: {n_params} parameters; XLA flops/step: "
        f"SGD {flops['sgd_step']:.4g}, ESGD refresh {flops['esgd_k1_step']:.4g} "
        f"({flops['esgd_k1_step'] / flops['sgd_step']:.2f}x)",
        flush=True,
    )
    rounds = common.time_interleaved(
        cases, repeats=args.repeats, number=args.number, return_rounds=True
    )
    rounds = {
        name: [t / args.steps for t in ts] if name.endswith("_scan") else ts
        for name, ts in rounds.items()
    }
    sec = {name: statistics.median(ts) for name, ts in rounds.items()}
    ratio = {
        name: common.paired_ratio(
            rounds, name, "sgd_scan" if name.endswith("_scan") else "sgd_step"
        )
        for name in rounds
    }
    k, one, scan = args.update_interval, "single jitted step", f"scan of {args.steps}, per step"

    def row(label, measured_as, name, target=None):
        return (
            label,
            measured_as,
            sec[name] * 1e6,
            ratio[name],
            target or "",
            verdict(ratio[name], target) if target else "",
        )

    rows = [
        row("SGD", one, "sgd_step"),
        row("ESGD refresh (interval 1)", one, "esgd_k1_step", REFRESH_TARGET),
        row(f"ESGD interval {k}, refresh step", one, "esgd_k_step", REFRESH_TARGET),
        row(f"ESGD interval {k}, skip step", one, "esgd_k_skip_step"),
        row("SGD", scan, "sgd_scan"),
        row("ESGD refresh (interval 1)", scan, "esgd_k1_scan", REFRESH_TARGET),
        row(f"ESGD interval {k} (amortized)", scan, "esgd_k_scan", AMORTIZED_TARGET),
        row("diagnostic: ESGD never refreshing", scan, "esgd_never_scan"),
        row("diagnostic: SGD + draw v ~ N(0, I)", scan, "sgd_draw_scan"),
        row("diagnostic: SGD + draw Rademacher v", scan, "sgd_rademacher_scan"),
        row("diagnostic: SGD + Hv (v = 1)", scan, "sgd_hv_scan"),
        row("diagnostic: SGD + draw + Hv, no cond", scan, "sgd_draw_hv_scan"),
    ]
    headers = ["optimizer", "measured as", "us/step", "x SGD", "target", "verdict"]
    print(common.table(headers, rows), flush=True)
    results = {
        "benchmark": "esgd",
        "task": args.task,
        "task_options": overrides,
        "n_params": n_params,
        "prng": args.prng,
        "update_interval": k,
        "steps_per_scan": args.steps,
        "repeats": args.repeats,
        "number": args.number,
        "seconds_per_step": sec,
        "ratio_to_sgd": ratio,
        "rounds_seconds_per_step": rounds,
        "xla_flops_per_step": flops,
        "targets": {"refresh": REFRESH_TARGET, "amortized": AMORTIZED_TARGET},
        "table": {"headers": headers, "rows": rows},
        "machine": common.machine_info(),
    }
    print(f"wrote {common.write_results(args.out, results)}", flush=True)
    return results


if __name__ == "__main__":
    main()
