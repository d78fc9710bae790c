"""Wall time of path shortening against the string search that produced the chain, and batched shortening.

`Shortener.shorten` relaxes a certified chain toward the geodesic of its level set
(`geodesic_targets.shortening`); `StringSampler.connect` (without shortening) is
the search that produced that chain. Two questions, no aims set:

1. Per case: how long does shortening a chain take next to the search that found
   it (shorten / connect, median of per-round ratios), and how much shorter does
   the chain get (normalized length = path length / end distance, before and after)?
2. P chains shortened by one `Shortener.shorten_many` call (every path's relaxation
   in one vmapped, jitted call) against P separate `Shortener.shorten` calls: seconds
   per pair and their ratio.

Cases:
  disk_adam, disk_sgd: the 24-D disk obstacle of tests/test_shorten.py,
              exp(-|P theta|^2 / 2) with P the projection on a random plane, level
              0.1, ends at 1.2 x the disk's radius and --disk-degrees apart in the
              plane; beads trained by optax.adam(0.1) or optax.sgd(2.0), max_steps
              3000. The geodesic (tangent, arc, tangent) has a closed-form length.
  poly_cubic: two 1-4-4-1 ReLU cubic regressors trained to --cubic-level and joined
              at that level by Adam 1e-2 beads (`bench_connect.cubic_case`).
  batched:    --pairs disk_adam chains with ends 0 and 120 to 170 degrees apart.

Every sampler and shortener is called once before timing (its compilation: the
first calls' seconds are reported); then connect and shorten (or one-at-a-time
and batched) are timed in alternating rounds, `--repeats` of each. Shortening
always gets the chain connect returned (the same chain every round).

Rows are printed as each case is measured; both tables again, aligned, at the end.

Run: .venv/bin/python -m benchmarks.bench_shorten [--cases disk_adam disk_sgd poly_cubic] [--quick | --tiny]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import common
from benchmarks.bench_connect import cubic_case
from geodesic_targets.level_schedule import LevelSchedule
from geodesic_targets.options import ConnectOptions, ShortenOptions
from geodesic_targets.sampler import StringSampler
from geodesic_targets.shortening import Shortener

# The disk obstacle of tests/test_shorten.py.
DIM, WIDTH, LEVEL = 24, 1.0, 0.1
RADIUS = WIDTH * math.sqrt(2 * math.log(1 / LEVEL))  # loss <= LEVEL outside this disk
DISTANCE = 1.2 * RADIUS


def _rotation() -> jax.Array:
    return jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(7), (DIM, DIM)))[0]


def disk_loss(rotation: jax.Array) -> Callable[[Any, Any], jax.Array]:
    """exp(-|P theta|^2 / (2 s^2)) on the plane of the first two rotated axes, as `(params, context)`."""

    def loss(params, _):
        plane = (rotation.T @ params["w"])[:2]
        return jnp.exp(-jnp.sum(plane**2) / (2 * WIDTH**2))

    return loss


def in_plane(rotation: jax.Array, radius: float, degrees: float) -> dict[str, jax.Array]:
    angle = math.radians(degrees)
    return {
        "w": rotation
        @ jnp.zeros(DIM).at[0].set(radius * math.cos(angle)).at[1].set(radius * math.sin(angle))
    }


def around_the_disk(degrees: float, distance: float = DISTANCE, radius: float = RADIUS) -> float:
    """Normalized length of the shortest path (tangent, arc, tangent) between two points outside the disk."""
    angle = math.radians(degrees)
    tangent = math.sqrt(distance**2 - radius**2)
    arc = radius * (angle - 2 * math.acos(radius / distance))
    return (2 * tangent + arc) / (2 * distance * math.sin(angle / 2))


def disk_case(args, optimizer_name: str) -> dict[str, Any]:
    """The 24-D disk, ends `args.disk_degrees` apart, beads by adam(0.1) or sgd(2.0)."""
    rotation = _rotation()
    optimizer = optax.adam(0.1) if optimizer_name == "adam" else optax.sgd(2.0)
    return dict(
        loss=disk_loss(rotation),
        optimizer=optimizer,
        threshold=LEVEL,
        ends=(in_plane(rotation, DISTANCE, 0.0), in_plane(rotation, DISTANCE, args.disk_degrees)),
        options=dict(max_steps=3000),
        closed_form=around_the_disk(args.disk_degrees),
        describe=f"24-D disk, level {LEVEL:g}, ends at {DISTANCE:.3g} (1.2 x radius) "
        f"{args.disk_degrees:g} deg apart, {optimizer_name} beads "
        f"({'adam(0.1)' if optimizer_name == 'adam' else 'sgd(2.0)'}), max_steps 3000",
    )


def poly_cubic_case(args) -> dict[str, Any]:
    """`bench_connect.cubic_case`: two cubic regressors at `args.cubic_level`, adam(1e-2) beads."""
    return dict(cubic_case(args), closed_form=None)


CASES = {
    "disk_adam": lambda args: disk_case(args, "adam"),
    "disk_sgd": lambda args: disk_case(args, "sgd"),
    "poly_cubic": poly_cubic_case,
}


def alternate(
    calls: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Wall seconds of each call in `repeats` alternating rounds; also the last result of each.

    Every call returns host values (lengths, certification), so it has finished when it returns.
    """
    rounds: dict[str, list[float]] = {name: [] for name in calls}
    last = {}
    for _ in range(repeats):
        for name, call in calls.items():
            tick = time.perf_counter()
            last[name] = call()
            rounds[name].append(time.perf_counter() - tick)
    return rounds, last


def first_call(call: Callable[[], Any]) -> tuple[Any, float]:
    """The result and wall seconds of a first (compiling) call."""
    tick = time.perf_counter()
    result = call()
    return result, time.perf_counter() - tick


def shorten_options(args) -> ShortenOptions:
    return ShortenOptions(
        num_points=args.num_points, rounds=args.rounds, check_every=args.check_every
    )


def run_case(name: str, case: dict[str, Any], args) -> dict[str, Any]:
    """connect (no shortening) and shorten of its chain: first calls, then alternating timed rounds."""
    sampler = StringSampler(case["loss"], case["optimizer"], ConnectOptions(**case["options"]))
    shortener = Shortener(case["loss"], shorten_options(args))
    schedule = LevelSchedule.constant(case["threshold"])
    key = jax.random.PRNGKey(0)
    connect = lambda: sampler.connect(*case["ends"], case["threshold"], key=key)
    chain, connect_first = first_call(connect)  # not connected: shortening reports "not certified"
    shorten = lambda: shortener.shorten(chain.beads, schedule)
    _, shorten_first = first_call(shorten)
    rounds, last = alternate({"connect": connect, "shorten": shorten}, args.repeats)
    short = last["shorten"]
    return dict(
        case=name,
        describe=case["describe"],
        rounds=rounds,
        median={k: statistics.median(v) for k, v in rounds.items()},
        ratio=common.paired_ratio(rounds, "shorten", "connect"),
        first_call_s={"connect": connect_first, "shorten": shorten_first},
        beads=chain.num_beads,
        depth=chain.depth,
        training_steps=chain.training_steps,
        points=short.num_beads,
        connected=chain.connected,
        certified=short.connected,
        reason=f"{chain.reason}; {short.reason}",
        length_before=chain.normalized_length,
        length_after=short.normalized_length,
        closed_form=case["closed_form"],
        same_chain=bool(np.isclose(short.length_before, chain.path_length)),
    )


def run_batched(args) -> dict[str, Any]:
    """`--pairs` disk_adam chains: one `shorten_many` call against one `shorten` call per chain."""
    rotation = _rotation()
    loss = disk_loss(rotation)
    sampler = StringSampler(loss, optax.adam(0.1), ConnectOptions(max_steps=3000))
    degrees = [float(d) for d in np.linspace(120.0, 170.0, args.pairs)]
    chains = [
        sampler.connect(
            in_plane(rotation, DISTANCE, 0.0),
            in_plane(rotation, DISTANCE, d),
            LEVEL,
            key=jax.random.PRNGKey(0),
        )
        for d in degrees
    ]
    shortener = Shortener(loss, shorten_options(args))
    schedules = [LevelSchedule.constant(LEVEL)] * len(chains)
    batched = lambda: shortener.shorten_many([c.beads for c in chains], schedules)
    single = lambda: [shortener.shorten(c.beads, s) for c, s in zip(chains, schedules)]
    _, single_first = first_call(single)
    _, batched_first = first_call(batched)
    rounds, last = alternate({"single": single, "batched": batched}, args.repeats)
    per_pair = {k: [s / len(chains) for s in v] for k, v in rounds.items()}
    after = {k: [r.normalized_length for r in v] for k, v in last.items()}
    closed = [around_the_disk(d) for d in degrees]
    return dict(
        pairs=len(chains),
        degrees=degrees,
        rounds=rounds,
        per_pair_s={k: statistics.median(v) for k, v in per_pair.items()},
        ratio=common.paired_ratio(rounds, "batched", "single"),
        first_call_s={"single": single_first, "batched": batched_first},
        beads=[c.num_beads for c in chains],
        length_before=[c.normalized_length for c in chains],
        length_after=after,
        closed_form=closed,
        connected=all(c.connected for c in chains),
        certified={k: all(r.connected for r in v) for k, v in last.items()},
        max_abs_diff=max(abs(a - b) for a, b in zip(after["batched"], after["single"])),
        max_rel_error=max(abs(a - c) / c for a, c in zip(after["batched"], closed)),
    )


HEADERS = [
    "case",
    "beads",
    "points",
    "connect s",
    "shorten s",
    "shorten / connect",
    "connect 1st s",
    "shorten 1st s",
    "length before",
    "length after",
    "closed form",
    "connected",
    "certified",
]
BATCH_HEADERS = [
    "pairs",
    "points",
    "rounds",
    "one at a time s/pair",
    "batched s/pair",
    "batched / one at a time",
    "one at a time 1st s",
    "batched 1st s",
    "max length diff. batched vs one at a time",
    "max rel. error vs closed form",
    "connected",
    "certified",
]
PRESETS = {
    "quick": dict(repeats=3),
    # Seconds of work (compilation dominates), for tests/test_benchmarks.py: the --quick code, small budgets.
    "tiny": dict(repeats=1, num_points=17, rounds=20, check_every=10, pairs=2, cases=["disk_sgd"]),
}


def case_row(r: dict[str, Any]) -> tuple:
    return (
        r["case"],
        r["beads"],
        r["points"],
        r["median"]["connect"],
        r["median"]["shorten"],
        r["ratio"],
        r["first_call_s"]["connect"],
        r["first_call_s"]["shorten"],
        r["length_before"],
        r["length_after"],
        "" if r["closed_form"] is None else r["closed_form"],
        r["connected"],
        r["certified"],
    )


def batch_row(b: dict[str, Any], args) -> tuple:
    return (
        b["pairs"],
        args.num_points,
        args.rounds,
        b["per_pair_s"]["single"],
        b["per_pair_s"]["batched"],
        b["ratio"],
        b["first_call_s"]["single"],
        b["first_call_s"]["batched"],
        b["max_abs_diff"],
        b["max_rel_error"],
        b["connected"],
        b["certified"]["batched"] and b["certified"]["single"],
    )


def describe(r: dict[str, Any]) -> str:
    return (
        f"{r['case']}: {r['describe']}; search depth {r['depth']}, {r['training_steps']} training steps; "
        f"{r['reason']}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark on command-line `argv`: prints rows as measured, both tables at the end,
    and writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--disk-degrees", type=float, default=150.0)
    parser.add_argument("--cubic-level", type=float, default=0.01)
    parser.add_argument("--num-points", type=int, default=ShortenOptions.num_points)
    parser.add_argument(
        "--rounds", type=int, default=ShortenOptions.rounds, help="the most shortening rounds"
    )
    parser.add_argument("--check-every", type=int, default=ShortenOptions.check_every)
    parser.add_argument(
        "--pairs", type=int, default=8, help="chains of the batched comparison (0: skip it)"
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds of each call")
    parser.add_argument("--quick", action="store_true", help="repeats=3")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="small budgets, seconds of work: the same code as --quick, for tests",
    )
    parser.add_argument("--out", default="runs/benchmarks/shorten.json")
    args = common.parse_args(parser, argv, PRESETS)
    printer = common.RowPrinter(
        "Shortening against the search that produced the chain, as measured:", HEADERS
    )
    results = []
    for name in args.cases:
        results.append(run_case(name, CASES[name](args), args))
        printer.add(case_row(results[-1]))
    print()
    batch = None
    batch_printer = common.RowPrinter(
        "Batched shortening against one pair at a time, as measured:", BATCH_HEADERS
    )
    if args.pairs > 0:
        batch = run_batched(args)
        batch_printer.add(batch_row(batch, args))
    print()
    for r in results:
        print(describe(r))
    print(printer.table())
    print()
    print(batch_printer.table())
    out = {
        "benchmark": "shorten",
        "repeats": args.repeats,
        "options": dict(
            num_points=args.num_points, rounds=args.rounds, check_every=args.check_every
        ),
        "cases": results,
        "batched": batch,
        "table": {"headers": HEADERS, "rows": printer.rows},
        "batch_table": {"headers": BATCH_HEADERS, "rows": batch_printer.rows},
        "machine": common.machine_info(),
    }
    print(f"wrote {common.write_results(args.out, out)}", flush=True)
    return out


if __name__ == "__main__":
    main()
