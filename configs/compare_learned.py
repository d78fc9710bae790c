"""Two learned optimizers of one evaluation, task by task (trainers.reporting.learned_pairs).

Usage: .venv/bin/python configs/compare_learned.py RESULTS_JSON A B [--metric test_loss]
       [--margin 0.05]
A and B are optimizer labels as the evaluation report shows them; the verdict is for A. Each
may be a comma-separated group, one label per meta-seed of an ablation arm (evaluated with
--checkpoint NAME_K=arm:<ablation>/arms/<arm>@K), e.g. teacher_0,...,teacher_4 none_0,...,none_4:
the two groups are then paired by meta-seed, one value (the mean over held-out seeds) each. Prints
one markdown row per task holding both: means, ratio, the paired t-test's p Holm-adjusted over
the tasks, the verdict, and both optimizers' ms per step and time to target.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from trainers.reporting.learned_pairs import (  # noqa: E402
    METRICS,
    compare_learned,
    comparison_table,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=pathlib.Path, help="an evaluation's results.json")
    parser.add_argument("a", help="optimizer label A, or labels L0,L1,... (the verdict is for A)")
    parser.add_argument("b", help="optimizer label B, or as many labels as A, paired in order")
    parser.add_argument("--metric", choices=METRICS, default="final_loss")
    parser.add_argument("--margin", type=float, default=0.05)
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    group_a, group_b = args.a.split(","), args.b.split(",")
    try:
        rows = compare_learned(results, group_a, group_b, args.metric, args.margin)
    except ValueError as err:
        parser.error(str(err))
    if not rows:
        parser.error(
            f"no task of {args.results} holds both {args.a!r} and {args.b!r} ({args.metric})"
        )
    print(comparison_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
