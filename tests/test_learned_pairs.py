"""Two learned optimizers compared task by task from results.json, Holm over the tasks."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from tests.markdown import table_rows
from trainers.reporting.learned_pairs import compare_learned, comparison_table

ROOT = pathlib.Path(__file__).resolve().parents[1]

RNG = np.random.default_rng(0)
SEEDS = 16


def _optimizer(label, values, ms):
    return {
        "optimizer": label,
        "per_seed_final_loss": [float(v) for v in values],
        "step_seconds": ms / 1000,
        "seconds_to_target": ms / 1000 * 20,
    }


def _results():
    tasks = []
    for name, shift in (("clear_win", -0.1), ("noise", 0.0), ("loss", 0.05)):
        b = 1.0 + 0.1 * RNG.normal(size=SEEDS)
        a = b + shift + 0.01 * RNG.normal(size=SEEDS)
        tasks.append(
            {"task": name, "optimizers": [_optimizer("hier", a, 1.0), _optimizer("v2", b, 9.0)]}
        )
    tasks.append({"task": "only_one", "optimizers": [_optimizer("hier", np.ones(SEEDS), 1.0)]})
    return tasks


def test_paired_p_values_are_holm_adjusted_over_tasks():
    results = _results()
    rows = compare_learned(results, "hier", "v2")
    assert [r["task"] for r in rows] == ["clear_win", "noise", "loss"]  # both optimizers only
    raw = np.array(
        [
            stats.ttest_rel(
                t["optimizers"][0]["per_seed_final_loss"], t["optimizers"][1]["per_seed_final_loss"]
            ).pvalue
            for t in results[:3]
        ]
    )
    order = np.argsort(raw)
    adjusted = np.empty(3)
    adjusted[order] = np.minimum(np.maximum.accumulate(raw[order] * np.array([3, 2, 1])), 1.0)
    np.testing.assert_allclose([r["p_adjusted"] for r in rows], adjusted, rtol=1e-9)
    assert [r["verdict"] for r in rows] == ["wins", "equivalent", "loses"]
    assert rows[0]["step_seconds"] == (0.001, 0.009)


def test_table_and_command_line(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_results()))
    script = [sys.executable, str(ROOT / "configs" / "compare_learned.py"), str(path)]
    printed = subprocess.run(
        [*script, "hier", "v2"], capture_output=True, text=True, check=True
    ).stdout
    rows = table_rows(printed)[1:]
    assert [r[0] for r in rows] == ["clear_win", "noise", "loss"]
    assert rows[0][6] == "1 / 9" and rows[0][7] == "0.02 s / 0.18 s"
    expected = comparison_table(compare_learned(json.loads(path.read_text()), "hier", "v2"))
    assert printed.strip() == expected.strip()
    refused = subprocess.run([*script, "hier", "nobody"], capture_output=True, text=True)
    assert refused.returncode == 2 and "holds both 'hier' and 'nobody'" in refused.stderr


def test_test_loss_compares_the_per_seed_test_losses_and_other_metrics_are_refused():
    results = _results()
    for task in results:
        for row in task["optimizers"]:
            row["per_seed_test_loss"] = [2 * v for v in row["per_seed_final_loss"]]
            row["test_loss"] = [1.0, 0.1]  # mean and standard error: not per seed
    final, test = (
        compare_learned(results, "hier", "v2"),
        compare_learned(results, "hier", "v2", "test_loss"),
    )
    np.testing.assert_allclose([r["mean_a"] for r in test], [2 * r["mean_a"] for r in final])
    np.testing.assert_allclose([r["p_adjusted"] for r in test], [r["p_adjusted"] for r in final])
    with pytest.raises(ValueError, match="metric: expected one of final_loss, test_loss"):
        compare_learned(results, "hier", "v2", "per_seed_test_loss")


def test_arms_of_meta_seeds_are_paired_by_meta_seed_one_mean_each(tmp_path):
    meta_seeds, rng = 5, np.random.default_rng(1)
    tasks = []
    for name in ("first", "second"):
        optimizers = []
        for k in range(meta_seeds):  # meta-seed k of both arms shares a run-level offset
            offset = rng.normal()
            for arm, shift, ms in (("teacher", -0.3, 2.0 + k), ("none", 0.0, 1.0)):
                values = 1.0 + offset + shift + 0.1 * rng.normal(size=SEEDS)
                optimizers.append(_optimizer(f"{arm}_{k}", values, ms))
        tasks.append({"task": name, "optimizers": optimizers})
    a = [f"teacher_{k}" for k in range(meta_seeds)]
    b = [f"none_{k}" for k in range(meta_seeds)]
    rows = compare_learned(tasks, a, b, margin=0)

    def mean_of(task, label):
        (row,) = [o for o in task["optimizers"] if o["optimizer"] == label]
        return np.mean(row["per_seed_final_loss"])

    raw = [
        stats.ttest_rel([mean_of(t, x) for x in a], [mean_of(t, x) for x in b]).pvalue
        for t in tasks
    ]
    smaller, larger = sorted(raw)
    expected = {smaller: min(1.0, 2 * smaller), larger: max(min(1.0, 2 * smaller), larger)}
    np.testing.assert_allclose([r["p_adjusted"] for r in rows], [expected[p] for p in raw])
    assert rows[0]["mean_a"] == pytest.approx(np.mean([mean_of(tasks[0], x) for x in a]))
    assert rows[0]["step_seconds"] == (0.004, 0.001)  # the group's median step cost
    with pytest.raises(ValueError, match="paired by meta-seed"):
        compare_learned(tasks, a, b[:3])
    path = tmp_path / "results.json"
    path.write_text(json.dumps(tasks))
    script = [sys.executable, str(ROOT / "configs" / "compare_learned.py"), str(path)]
    printed = subprocess.run(
        [*script, ",".join(a), ",".join(b), "--margin", "0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed.strip() == comparison_table(rows).strip()
