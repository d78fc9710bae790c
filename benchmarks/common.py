"""Shared helpers of the hand-run benchmarks: timing, machine description, FLOP counts.

Benchmarks are scripts, not tests: they print each markdown table row as it is
measured (`RowPrinter`), the whole tables again at the end, and write their
numbers as JSON. Each has a `--tiny` mode (seconds, for tests/test_benchmarks.py)
running the same code as `--quick` at toy sizes. Ratios between two measurements are only quoted when both were
taken in the same process; absolute times always travel with `machine_info()`.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from trainers.reporting.tables import markdown_table


def time_fn(fn: Callable[..., Any], *args: Any, repeats: int = 7, number: int = 10) -> float:
    """Median wall-clock seconds per call of an already-jitted `fn(*args)`.

    One warm-up call (compilation, first dispatch) happens outside the timed
    region. Each of `repeats` rounds times `number` calls, waiting for every
    result with `jax.block_until_ready`, so asynchronous dispatch cannot hide work.

    Args:
      fn: the function to time, typically `jax.jit(f)`.
      *args: its arguments (the same ones every call).
      repeats: timed rounds; the median round is reported.
      number: calls per round.

    Returns:
      Median over rounds of (round time / number), in seconds.
    """
    if repeats < 1 or number < 1:
        raise ValueError(f"repeats and number must be >= 1, got {repeats}, {number}")
    jax.block_until_ready(fn(*args))
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            jax.block_until_ready(fn(*args))
        rounds.append((time.perf_counter() - start) / number)
    return statistics.median(rounds)


def time_interleaved(
    cases: Mapping[str, tuple[Callable[..., Any], tuple[Any, ...]]],
    repeats: int = 7,
    number: int | Mapping[str, int] = 10,
    return_rounds: bool = False,
) -> dict[str, Any]:
    """Median seconds per call of several jitted functions, timed in alternating rounds.

    Like `time_fn`, but round r of every case runs before round r + 1 of any, so
    a slow spell of a shared machine hits all cases alike and their ratios stay
    fair. All cases are warmed up (compiled) before the first timed round.

    Args:
      cases: name -> (jitted fn, args).
      repeats: timed rounds per case; the median is reported.
      number: calls per round, one count for all or name -> count.
      return_rounds: return every round's seconds per call instead of the median,
        so callers can take the median of per-round (paired) ratios.

    Returns:
      name -> median over rounds of (round time / number), in seconds (or the
      list of per-round values with `return_rounds`).
    """
    numbers = number if isinstance(number, Mapping) else {name: number for name in cases}
    if repeats < 1 or min(numbers.values()) < 1:
        raise ValueError(f"repeats and number must be >= 1, got {repeats}, {number}")
    for fn, args in cases.values():
        jax.block_until_ready(fn(*args))
    rounds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (fn, args) in cases.items():
            start = time.perf_counter()
            for _ in range(numbers[name]):
                jax.block_until_ready(fn(*args))
            rounds[name].append((time.perf_counter() - start) / numbers[name])
    if return_rounds:
        return rounds
    return {name: statistics.median(times) for name, times in rounds.items()}


def paired_ratio(rounds: Mapping[str, Sequence[float]], name: str, base: str) -> float:
    """Median over rounds of rounds[name][r] / rounds[base][r] (from `time_interleaved`)."""
    return statistics.median(a / b for a, b in zip(rounds[name], rounds[base]))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def machine_info() -> dict[str, Any]:
    """What the absolute numbers were measured on: CPU, core count, Python, jax and devices."""
    try:
        import jaxlib

        jaxlib_version = jaxlib.__version__
    except (ImportError, AttributeError):
        jaxlib_version = "unknown"
    return {
        "processor": platform.processor(),
        "cpu_model": _cpu_model(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "jaxlib": jaxlib_version,
        "devices": [str(d) for d in jax.devices()],
        "backend": jax.default_backend(),
    }


def xla_cost(jitted_fn: Callable[..., Any], *args: Any) -> dict[str, float]:
    """XLA's cost analysis of the compiled `jitted_fn(*args)`, as one flat dict (`cost_dict`)."""
    return cost_dict(jitted_fn.lower(*args).compile().cost_analysis())


def cost_dict(analysis: Any) -> dict[str, float]:
    """A compiled computation's `cost_analysis()` as one flat dict of numbers.

    Recent jax returns a dict, older versions a list of dicts (one per
    computation); the list is summed key by key.
    """
    if analysis is None:
        return {}
    if isinstance(analysis, dict):
        analysis = [analysis]
    total: dict[str, float] = {}
    for entry in analysis:
        for key, value in (entry or {}).items():
            if isinstance(value, (int, float)):
                total[key] = total.get(key, 0.0) + float(value)
    return total


def xla_flops(jitted_fn: Callable[..., Any], *args: Any) -> float:
    """Floating-point operations of one call of `jitted_fn(*args)` by XLA's own count.

    Note: XLA counts a while loop (`lax.scan`) body once, not once per trip,
    and a conditional (`lax.cond`) as its most expensive branch.

    Returns:
      The "flops" entry of the cost analysis (NaN where the backend gives none).
    """
    return xla_cost(jitted_fn, *args).get("flops", float("nan"))


def matmul_rate(
    n: int = 2048, dtype: Any = jnp.float32, repeats: int = 5, number: int = 3
) -> float:
    """FLOP/s of a jitted [n, n] x [n, n] matmul, measured now, in this process.

    Args:
      n: matrix size; 2 n^3 operations per call.
      dtype: element type of both operands.
      repeats: timed rounds (median).
      number: calls per round.

    Returns:
      Achieved operations per second.
    """
    fn, args = matmul_case(n, dtype)
    return 2.0 * n**3 / time_fn(fn, *args, repeats=repeats, number=number)


def matmul_case(n: int = 2048, dtype: Any = jnp.float32) -> tuple[Callable[..., Any], tuple]:
    """A jitted [n, n] x [n, n] matmul and random operands (2 n^3 operations per call)."""
    ka, kb = jax.random.split(jax.random.PRNGKey(0))
    return jax.jit(jnp.matmul), (
        jax.random.normal(ka, (n, n), dtype),
        jax.random.normal(kb, (n, n), dtype),
    )


def format_cell(value: Any) -> str:
    """One table cell: floats with 4 significant digits, anything else as `str`."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table (`trainers.reporting.tables.markdown_table`), cells by `format_cell`."""
    return markdown_table(headers, [[format_cell(v) for v in row] for row in rows])


class RowPrinter:
    """Prints a markdown table one row at a time, as each row is measured.

    The header goes out at construction, each `add`ed row at once (flushed), so a
    run that dies later still leaves the rows it measured. `table()` is the whole
    table again, aligned, for the summary printed at the end.
    """

    def __init__(self, title: str, headers: Sequence[str]):
        self.headers, self.rows = list(headers), []
        print(title)
        self._line(self.headers)
        print("|" + "---|" * len(self.headers), flush=True)

    def _line(self, cells: Sequence[Any]) -> None:
        print("| " + " | ".join(format_cell(v) for v in cells) + " |", flush=True)

    def add(self, row: Sequence[Any]) -> None:
        """Prints `row` now and keeps it for `table()`."""
        if len(row) != len(self.headers):
            raise ValueError(f"row of {len(row)} cells for {len(self.headers)} columns: {row}")
        self.rows.append(tuple(row))
        self._line(row)

    def table(self) -> str:
        """Every row added so far as one markdown table (`table`)."""
        return table(self.headers, self.rows)


def parse_args(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    presets: Mapping[str, Mapping[str, Any]],
) -> argparse.Namespace:
    """Parses `argv`; each preset flag given (in `presets` order) changes the defaults.

    `presets` maps a boolean option's dest (e.g. "quick", "tiny") to new defaults,
    so options written out on the command line still win over a preset.
    """
    args = parser.parse_args(argv)
    defaults: dict[str, Any] = {}
    for flag, values in presets.items():
        if getattr(args, flag):
            defaults.update(values)
    if defaults:
        parser.set_defaults(**defaults)
        args = parser.parse_args(argv)
    return args


def write_results(path: str | os.PathLike, results: dict[str, Any]) -> pathlib.Path:
    """Writes `results` as indented JSON to `path`, creating parent folders; returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(results, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
    )
    return path
