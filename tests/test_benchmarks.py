"""Every benchmark's `--tiny` mode (the `--quick` code at toy sizes), run in-process.

Each test parses the printed markdown tables back into cells and checks that
every expected column is there, that the rows printed as they were measured
are the rows of the final table, and that timings are finite and positive, so
a benchmark cannot silently stop working (it is not run by anything else).
The tiny runs compile several jitted functions each; those that take more than
about 10 s on a busy two-core machine are marked `slow` (deselect with `-m "not slow"`).
"""

from __future__ import annotations

import json
import math
import pathlib

import pytest

from benchmarks import (
    bench_compile_flags,
    bench_connect,
    bench_esgd,
    bench_hierarchical,
    bench_lstm_optimizer,
    bench_lstm_v2,
    bench_meta_seeds,
    bench_meta_train,
    bench_shorten,
    bench_shorten_convergence,
    common,
)
from tests.conftest import FAST_COMPILE_FLAGS
from tests.markdown import table_rows

REPO = pathlib.Path(__file__).resolve().parents[1]


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """(header, rows) of every markdown table in `text` (blocks of consecutive `|` lines)."""
    blocks, block = [], []
    for line in text.splitlines() + [""]:
        if line.strip().startswith("|"):
            block.append(line)
        elif block:
            rows = table_rows("\n".join(block))
            if rows:  # a block of separator lines alone is no table
                blocks.append((rows[0], rows[1:]))
            block = []
    return blocks


def number(cell: str) -> float:
    """A cell as a float ("12.5%" -> 12.5); fails the test on anything else."""
    try:
        return float(cell.removesuffix("%"))
    except ValueError:
        pytest.fail(f"not a number: {cell!r}")


def check_table(
    table: tuple[list[str], list[list[str]]],
    columns: list[str],
    num_rows: int,
    positive: tuple[str, ...] = (),
    nonnegative: tuple[str, ...] = (),
) -> list[dict[str, str]]:
    """Checks header, row count and values of a parsed table; returns its rows as dicts."""
    header, rows = table
    assert header == columns
    assert len(rows) == num_rows, rows
    records = [dict(zip(header, row, strict=True)) for row in rows]
    for record in records:
        for column in positive:
            value = number(record[column])
            assert math.isfinite(value) and value > 0, (column, record)
        for column in nonnegative:
            value = number(record[column])
            assert math.isfinite(value) and value >= 0, (column, record)
    return records


def check_json(path: pathlib.Path, benchmark: str) -> dict:
    """The JSON the benchmark wrote: its name and the machine it ran on."""
    results = json.loads(path.read_text(encoding="utf-8"))
    assert results["benchmark"] == benchmark
    assert results["machine"]["backend"]
    return results


def test_row_printer_prints_rows_as_added_and_the_same_table_at_the_end(capsys):
    printer = common.RowPrinter("title", ["a", "b"])
    printer.add((1, 0.123456))
    streamed = capsys.readouterr().out
    assert streamed.splitlines() == ["title", "| a | b |", "|---|---|", "| 1 | 0.1235 |"]
    printer.add(("x", 2.0))
    capsys.readouterr()
    assert tables(printer.table()) == [(["a", "b"], [["1", "0.1235"], ["x", "2"]])]
    with pytest.raises(ValueError, match="3 cells for 2 columns"):
        printer.add((1, 2, 3))


def test_meta_train_default_unroll_lengths_divide_the_horizon():
    config = str(REPO / "configs/digits_mlp.yaml")
    bench_meta_train.check_unrolls(
        config,
        bench_meta_train.unroll_lengths(bench_meta_train.UNROLL, bench_meta_train.MEM_UNROLLS),
        [],
    )
    # The sweep that used to crash after minutes of measuring now fails before any.
    with pytest.raises(
        ValueError, match=r"unroll lengths \[40\] are not divisors of the horizon 100"
    ):
        bench_meta_train.main(
            ["--config", config, "--mem-unrolls", "10", "40", "--out", "/nonexistent"]
        )


@pytest.mark.slow
def test_bench_meta_train_tiny(capsys, tmp_path):
    out = tmp_path / "meta_train.json"
    bench_meta_train.main(
        ["--tiny", "--config", str(REPO / "configs/digits_mlp.yaml"), "--out", str(out)]
    )
    text = capsys.readouterr().out
    found = tables(text)
    assert len(found) == 6, text  # three tables as measured, then the same three at the end
    flop_columns = ["N", "U", "rolled (scan bodies once) GFLOP", "fully unrolled GFLOP"]
    throughput_columns = [
        "N",
        "U",
        "ms/meta-step",
        "inner steps/s",
        "XLA GFLOP/meta-step",
        "MFLOP/inner step",
        "GFLOP/s",
        "of matmul",
        "compile+1st s",
    ]
    memory_columns = [
        "N",
        "U",
        "arguments",
        "outputs",
        "temporaries",
        "aliased",
        "total (args+out+temp-alias)",
    ]
    streamed_flops, streamed_throughput, streamed_memory, throughput, flops, memory = found
    # tiny: N = 1, U = 2 (and U // 2 = 1 for the U check); memory for U in (1, 2)
    check_table(flops, flop_columns, 2, positive=tuple(flop_columns))
    records = check_table(throughput, throughput_columns, 1, positive=tuple(throughput_columns))
    assert (records[0]["N"], records[0]["U"]) == ("1", "2")
    mem = check_table(
        memory,
        memory_columns,
        2,
        positive=("N", "U", "arguments", "outputs", "total (args+out+temp-alias)"),
        nonnegative=("temporaries", "aliased"),
    )
    assert [r["U"] for r in mem] == ["1", "2"]
    assert sorted(streamed_flops[1]) == sorted(flops[1])
    assert streamed_throughput == throughput
    assert streamed_memory == memory
    results = check_json(out, "meta_train")
    assert len(results["results"]) == 1 and len(results["memory"]) == 2


@pytest.mark.slow
def test_bench_connect_tiny(capsys, tmp_path):
    out = tmp_path / "connect.json"
    bench_connect.main(["--tiny", "--out", str(out)])
    text = capsys.readouterr().out
    found = tables(text)
    assert len(found) == 2, text
    records = check_table(
        found[1],
        bench_connect.HEADERS,
        2 * len(bench_connect.CASES),
        positive=("beads", "wall s (median)"),
        nonnegative=("depth", "steps", "measure s", "train s"),
    )
    assert found[0] == found[1]
    assert [(r["case"], r["variant"]) for r in records] == [
        (case, variant) for case in bench_connect.CASES for variant in ("batched", "single")
    ]
    for record in records[::2]:  # the batched rows carry the ratio and the verdict
        assert number(record["wall: batched / single"]) > 0
        assert record["verdict"] in ("met", "not met")
    for name in bench_connect.CASES:
        assert f"{name}: " in text  # the case's description line
    check_json(out, "connect")


@pytest.mark.slow
def test_bench_esgd_tiny(capsys, tmp_path):
    out = tmp_path / "esgd.json"
    bench_esgd.main(["--tiny", "--out", str(out)])
    text = capsys.readouterr().out
    found = tables(text)
    assert len(found) == 1, text
    records = check_table(
        found[0],
        ["optimizer", "measured as", "us/step", "x SGD", "target", "verdict"],
        12,
        positive=("us/step", "x SGD"),
    )
    assert [r["x SGD"] for r in records if r["optimizer"] == "SGD"] == ["1", "1"]
    assert {r["verdict"] for r in records if r["target"]} <= {"met", "not met"}
    assert "parameters; XLA flops/step" in text
    check_json(out, "esgd")


def test_bench_lstm_optimizer_tiny(capsys, tmp_path):
    out = tmp_path / "lstm_optimizer.json"
    bench_lstm_optimizer.main(["--tiny", "--out", str(out)])
    text = capsys.readouterr().out
    found = tables(text)
    assert len(found) == 2, text
    records = check_table(
        found[1],
        bench_lstm_optimizer.HEADERS,
        6,
        positive=(
            "n",
            "us/update",
            "Mcoord/s",
            "XLA MFLOP/update",
            "flop/byte",
            "GB/s (XLA bytes)",
            "GFLOP/s",
            "of matmul",
        ),
    )
    assert found[0] == found[1]
    assert [(r["n"], r["case"]) for r in records] == [
        (n, case) for n in ("64", "256") for case in ("update", "scan", "gate_matmuls")
    ]
    check_json(out, "lstm_optimizer")


@pytest.mark.slow
def test_bench_lstm_v2_tiny(capsys, tmp_path):
    out = tmp_path / "lstm_v2.json"
    bench_lstm_v2.main(["--tiny", "--out", str(out)])
    found = tables(capsys.readouterr().out)
    assert len(found) == 2 and found[0] == found[1]
    records = check_table(
        found[1], bench_lstm_v2.HEADERS, 6, positive=("params", "us/step", "x adam", "x lstm_v1")
    )
    assert [r["optimizer"] for r in records] == ["adam", "lstm_v1", "lstm_v2"] * 2
    assert [number(r["x adam"]) for r in records][0::3] == [1.0, 1.0]  # adam against itself
    check_json(out, "lstm_v2")


@pytest.mark.slow
def test_bench_hierarchical_tiny(capsys, tmp_path):
    out = tmp_path / "hierarchical.json"
    bench_hierarchical.main(["--tiny", "--out", str(out)])
    found = tables(capsys.readouterr().out)
    assert len(found) == 2 and found[0] == found[1]  # as measured, then the same table at the end
    records = check_table(found[1], bench_hierarchical.HEADERS, 4)
    assert [r["measure"] for r in records] == [
        "update / Adam",
        "whole step / Adam",
        "inner steps/s",
        "state floats / param",
    ]
    assert {r["verdict"] for r in records[:3]} <= {"met", "not met"}
    results = check_json(out, "hierarchical")
    for part, names in (
        ("update", ("adam", "lstm_v2", "hierarchical")),
        ("whole_step", ("adam", "v2_mixed", "v2_digits", "hierarchical")),
    ):
        assert sorted(results[part]) == sorted(names)
        for name in names:
            for value in results[part][name].values():
                assert math.isfinite(value) and value > 0, (part, name)
        assert results[part]["adam"]["ratio_to_adam"] == 1.0  # adam against itself
    meta = results["meta_train"]
    assert sorted(meta["inner_steps_per_second"]) == ["hierarchical", "lstm_v2"]
    assert all(v > 0 for v in meta["inner_steps_per_second"].values())
    assert meta["hierarchical_over_v2"] > 0
    floats = results["state_floats_per_parameter"]
    assert floats["adam"] == 2.0  # mu and nu; the integer count is no float
    # 4 momenta + the second moment; the per-tensor LSTM rows add 2 * 32 * 8 / 99,978
    expected = results["config_state_floats_per_parameter"]
    assert expected == 5 and expected <= floats["hierarchical"] < expected + 0.01
    assert floats["lstm_v2"] > floats["hierarchical"]


@pytest.mark.slow
def test_bench_shorten_tiny(capsys, tmp_path):
    out = tmp_path / "shorten.json"
    bench_shorten.main(["--tiny", "--out", str(out)])
    text = capsys.readouterr().out
    found = tables(text)
    assert len(found) == 4, text  # two tables as measured, then the same two at the end
    streamed_cases, streamed_batch, cases, batch = found
    cases_run = bench_shorten.PRESETS["tiny"]["cases"]
    records = check_table(
        cases,
        bench_shorten.HEADERS,
        len(cases_run),
        positive=(
            "beads",
            "points",
            "connect s",
            "shorten s",
            "shorten / connect",
            "connect 1st s",
            "shorten 1st s",
            "length before",
            "length after",
        ),
    )
    assert streamed_cases == cases
    assert [r["case"] for r in records] == cases_run
    for record in records:
        assert (record["connected"], record["certified"]) == ("True", "True"), record
        assert (
            number(record["length after"]) <= number(record["length before"]) + 1e-6
        )  # never longer
        assert number(record["length after"]) >= 1.0 - 1e-6
    disk = records[0]
    assert (
        disk["case"] == "disk_sgd"
        and number(disk["closed form"]) <= number(disk["length after"]) * 1.001
    )
    (row,) = check_table(
        batch,
        bench_shorten.BATCH_HEADERS,
        1,
        positive=(
            "pairs",
            "points",
            "rounds",
            "one at a time s/pair",
            "batched s/pair",
            "batched / one at a time",
            "one at a time 1st s",
            "batched 1st s",
        ),
        nonnegative=("max length diff. batched vs one at a time", "max rel. error vs closed form"),
    )
    assert streamed_batch == batch
    assert row["pairs"] == "2" and row["certified"] == "True"
    for name in cases_run:
        assert f"{name}: " in text  # the case's description line
    results = check_json(out, "shorten")
    assert len(results["cases"]) == len(cases_run) and results["batched"]["pairs"] == 2


@pytest.mark.slow
def test_bench_meta_seeds_tiny(capsys, tmp_path):
    out = tmp_path / "meta_seeds.json"
    bench_meta_seeds.main(
        ["--tiny", "--config", str(REPO / "configs/ablation_digits.yaml"), "--out", str(out)]
    )
    found = tables(capsys.readouterr().out)
    assert len(found) == 2 and found[0] == found[1]  # as measured, then the same table at the end
    records = check_table(
        found[1], bench_meta_seeds.HEADERS, 1, positive=tuple(bench_meta_seeds.HEADERS[1:])
    )
    # tiny: K = 2, N = 2, U = 5 (imitation arms add their pairs' steps: tests/test_ablation.py)
    assert [(r["arm"], r["inner steps / meta-step"]) for r in records] == [("none", "10")]
    results = check_json(out, "meta_seeds")
    assert [r["seeds"] for r in results["results"]] == [2]


def test_bench_shorten_convergence_tiny(capsys, tmp_path):
    out = tmp_path / "shorten_convergence.json"
    bench_shorten_convergence.main(["--tiny", "--out", str(out)])
    found = tables(capsys.readouterr().out)
    assert len(found) == 2 and found[0] == found[1]  # as measured, then the same table at the end
    (row,) = check_table(
        found[1],
        bench_shorten_convergence.HEADERS,
        1,
        positive=(
            "T",
            "new rounds",
            "new s",
            "new length",
            "former 200 rounds length",
            "former 200 rounds energy / new",
            "former s to match",
            "former length then",
        ),
    )
    assert (row["case"], row["T"], row["new converged"]) == ("bowl", "20", "True")
    assert (
        number(row["former 200 rounds energy / new"]) >= 1 - 1e-4
    )  # the new path has the least energy
    assert (
        check_json(out, "shorten_convergence")["table"]["headers"]
        == bench_shorten_convergence.HEADERS
    )


@pytest.mark.slow
def test_bench_compile_flags_tiny(capsys, tmp_path):
    out = tmp_path / "compile_flags.json"
    bench_compile_flags.main(["--tiny", "--out", str(out)])
    found = tables(capsys.readouterr().out)
    assert len(found) == 2 and found[0] == found[1]  # as measured, then the same table at the end
    rows = check_table(
        found[1],
        bench_compile_flags.HEADERS,
        2,
        positive=("compile s", "x faster than defaults"),
        nonnegative=("max abs Δ final loss vs defaults",),
    )
    assert [r["flags"] for r in rows] == ["XLA defaults", "tests (conftest.py)"]
    assert number(rows[0]["x faster than defaults"]) == 1  # the defaults against themselves
    assert number(rows[0]["max abs Δ final loss vs defaults"]) == 0
    for row in rows[1:]:  # float rounding only
        assert number(row["max abs Δ final loss vs defaults"]) < 1e-4, row
    results = check_json(out, "compile_flags")
    assert results["flag_sets"]["tests (conftest.py)"] == FAST_COMPILE_FLAGS  # what was run
    assert all(len(r) == 1 for r in results["rounds"].values())
