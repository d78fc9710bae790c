"""Wall time of one string search with all beads of a level trained together versus one at a time.

`StringSampler.connect` trains the new beads of each recursion level in one
vmapped, jitted call (`ConnectOptions(batched=True)`, the default); with
`batched=False` it trains them one call per bead. Both variants take the same
decisions (same keys, same bead training), so they return the same chain; only
the wall time differs. Target: batched / one-at-a-time <= 0.4 on a search that
needs >= 8 beads.

Cases:
  ring:       (||theta|| - 1)^2 in 2-D, ends at 0 and 150 degrees, threshold 1e-4,
              optax.sgd(0.2), max_steps 2000 (as in tests/test_connect.py).
  ring_slow_lr: the same ring with sgd(--slow-lr) and max_steps 20000, so that
              every bead needs hundreds of training steps.
  poly_cubic: two 1-4-4-1 ReLU cubic regressors trained (RMSProp 1e-2) down to
              --cubic-level, connected inside that level by Adam-trained beads.

Each case builds one sampler per variant, warms both up (compiles every batch
size the search uses), then times `--repeats` searches of each in alternating
rounds; medians and the median of per-round ratios are reported, together with
the number of beads, the depth and the split between measuring segments and
training beads (`PathResult.timings`).

Each case's two rows are printed as soon as the case is measured; the table is
printed again, aligned, at the end.

Run: .venv/bin/python -m benchmarks.bench_connect [--cases ring poly_cubic] [--quick | --tiny]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import tasks
from benchmarks import common
from geodesic_targets.beads import descend_until
from geodesic_targets.sampler import ConnectOptions, StringSampler

TARGET = 0.4


def ring_case(args, learning_rate: float = 0.2, max_steps: int = 2000) -> dict[str, Any]:
    """The 2-D ring: loss, bead optimizer, ends, threshold and options."""

    def ring_loss(params, _):
        return (jnp.sqrt(jnp.sum(params["x"] ** 2) + 1e-12) - 1.0) ** 2

    def on_circle(degrees):
        angle = np.deg2rad(degrees)
        return {"x": jnp.array([np.cos(angle), np.sin(angle)], jnp.float32)}

    return dict(
        loss=ring_loss,
        optimizer=optax.sgd(learning_rate),
        ends=(on_circle(0), on_circle(args.ring_degrees)),
        threshold=args.ring_threshold,
        options=dict(max_depth=8, max_beads=64, max_steps=max_steps),
        describe="2-D ring "
        f"(||x||-1)^2, ends 0 and {args.ring_degrees:g} deg, threshold {args.ring_threshold:g}, "
        f"sgd({learning_rate:g}), max_steps {max_steps}",
    )


def cubic_case(args) -> dict[str, Any]:
    """Two ReLU cubic regressors trained to `args.cubic_level`."""
    task = tasks.get_family("poly_cubic", hidden_sizes=(4, 4), activation="relu").instance(
        jax.random.PRNGKey(0)
    )
    objective = lambda params, k: task.loss(params, task.sample_batch(k))
    train = jax.jit(
        lambda start, k: descend_until(
            objective, task.eval_loss, optax.rmsprop(1e-2), start, args.cubic_level, 15000, k
        )
    )
    ends, seed = [], 0
    while len(ends) < 2 and seed < 20:  # skip a model stuck at the dead-ReLU plateau
        params, loss, _ = train(
            task.init(jax.random.PRNGKey(100 + seed)), jax.random.PRNGKey(200 + seed)
        )
        if float(loss) <= args.cubic_level:
            ends.append(params)
        seed += 1
    if len(ends) < 2:
        raise RuntimeError(f"could not train two cubic models to {args.cubic_level}")
    return dict(
        loss=lambda params, _: task.eval_loss(params),
        optimizer=optax.adam(1e-2),
        ends=tuple(ends),
        threshold=args.cubic_level,
        options=dict(max_depth=8, max_beads=64, max_steps=2000),
        describe=f"poly_cubic 1-4-4-1 ReLU pair at level {args.cubic_level:g}, adam(1e-2) beads",
    )


CASES = {
    "ring": ring_case,
    # the same ring with a small bead learning rate: each bead needs hundreds of steps
    "ring_slow_lr": lambda args: ring_case(args, args.slow_lr, 20000),
    "poly_cubic": cubic_case,
}


def run_case(name: str, case: dict[str, Any], repeats: int) -> dict[str, Any]:
    """Warms up and times both variants of one case in alternating rounds."""
    samplers = {
        variant: StringSampler(
            case["loss"],
            case["optimizer"],
            ConnectOptions(batched=(variant == "batched"), **case["options"]),
        )
        for variant in ("batched", "single")
    }
    key = jax.random.PRNGKey(0)
    search = lambda variant: samplers[variant].connect(*case["ends"], case["threshold"], key=key)
    warm = {}
    for variant in samplers:  # compile: every bucket size the search needs
        tick = time.perf_counter()
        warm[variant] = search(variant)
        warm[variant + "_first_s"] = time.perf_counter() - tick
    rounds: dict[str, list[dict[str, float]]] = {"batched": [], "single": []}
    last = {}
    for _ in range(repeats):
        for variant in samplers:
            tick = time.perf_counter()
            result = search(variant)
            wall = time.perf_counter() - tick
            rounds[variant].append(dict(result.timings, wall_s=wall))
            last[variant] = result
    med = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in rounds.items()}
    ratio = statistics.median(
        b["wall_s"] / s["wall_s"] for b, s in zip(rounds["batched"], rounds["single"])
    )
    # nan where no bead was trained (ends connected by the straight segment): no train time
    train_ratio = statistics.median(
        b["train_s"] / s["train_s"] if s["train_s"] > 0 else float("nan")
        for b, s in zip(rounds["batched"], rounds["single"])
    )
    same_chain = (
        bool(
            np.allclose(
                np.concatenate(
                    [np.ravel(x) for x in jax.tree_util.tree_leaves(last["batched"].beads)]
                ),
                np.concatenate(
                    [np.ravel(x) for x in jax.tree_util.tree_leaves(last["single"].beads)]
                ),
                rtol=1e-4,
                atol=1e-5,
            )
        )
        if last["batched"].num_beads == last["single"].num_beads
        else False
    )
    info = {
        v: dict(
            num_beads=r.num_beads,
            depth=r.depth,
            connected=r.connected,
            reason=r.reason,
            training_steps=r.training_steps,
            normalized_length=r.normalized_length,
        )
        for v, r in last.items()
    }
    return dict(
        case=name,
        describe=case["describe"],
        median=med,
        ratio=ratio,
        train_ratio=train_ratio,
        rounds=rounds,
        result=info,
        same_chain=same_chain,
        first_call_s={v: warm[v + "_first_s"] for v in samplers},
    )


HEADERS = [
    "case",
    "variant",
    "beads",
    "depth",
    "steps",
    "wall s (median)",
    "measure s",
    "train s",
    "other s",
    "train: batched / single",
    "wall: batched / single",
    "target",
    "verdict",
]
PRESETS = {
    "quick": dict(repeats=3),
    # Seconds, for tests/test_benchmarks.py: the same code as --quick on easier searches.
    "tiny": dict(repeats=1, ring_degrees=60.0, ring_threshold=1e-3, slow_lr=0.05, cubic_level=0.1),
}


def case_rows(r: dict[str, Any]) -> list[tuple]:
    """The two table rows (batched, single) of one `run_case` result."""
    rows = []
    for variant in ("batched", "single"):
        m, info = r["median"][variant], r["result"][variant]
        rows.append(
            (
                r["case"],
                variant,
                info["num_beads"],
                info["depth"],
                info["training_steps"],
                m["wall_s"],
                m["measure_s"],
                m["train_s"],
                m["total_s"] - m["measure_s"] - m["train_s"],
                r["train_ratio"] if variant == "batched" else "",
                r["ratio"] if variant == "batched" else "",
                TARGET if variant == "batched" else "",
                ("met" if r["ratio"] <= TARGET else "not met") if variant == "batched" else "",
            )
        )
    return rows


def describe(r: dict[str, Any]) -> str:
    """One line on a case: its setting, whether it connected, the first (compiling) calls."""
    return (
        f"{r['case']}: {r['describe']}; connected {r['result']['batched']['connected']} "
        f"({r['result']['batched']['reason']}); same chain both ways: {r['same_chain']}; "
        f"first (compiling) call: batched {r['first_call_s']['batched']:.2f} s, "
        f"single {r['first_call_s']['single']:.2f} s"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark on command-line `argv`: prints each case's rows as measured, the
    table at the end, and writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--ring-degrees", type=float, default=150.0)
    parser.add_argument("--ring-threshold", type=float, default=1e-4)
    parser.add_argument(
        "--slow-lr", type=float, default=0.002, help="bead sgd rate of ring_slow_lr"
    )
    parser.add_argument("--cubic-level", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=7, help="timed searches per variant")
    parser.add_argument("--quick", action="store_true", help="repeats=3")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="easy searches, a few seconds: the same code as --quick, for tests",
    )
    parser.add_argument("--out", default="runs/benchmarks/connect.json")
    args = common.parse_args(parser, argv, PRESETS)
    printer = common.RowPrinter("Searches, as measured:", HEADERS)
    results = []
    for name in args.cases:
        results.append(run_case(name, CASES[name](args), args.repeats))
        for row in case_rows(results[-1]):
            printer.add(row)
    print()
    for r in results:
        print(describe(r))
    print(printer.table())
    out = {
        "benchmark": "connect",
        "repeats": args.repeats,
        "target": TARGET,
        "cases": results,
        "table": {"headers": HEADERS, "rows": printer.rows},
        "machine": common.machine_info(),
    }
    print(f"wrote {common.write_results(args.out, out)}", flush=True)
    return out


if __name__ == "__main__":
    main()
