"""How far apart an ablation's arms' targets are, per meta-seed and pair, in imitation-loss units.

Usage: .venv/bin/python configs/target_distances.py RUN_FOLDER [--out JSON]
For every meta-seed whose geodesic_schedule and teacher target sets are both in RUN_FOLDER/arms
(`targets-<k>.npz`, the pairs an arm imitates, else `targets_generated-<k>.npz`, the draw's),
three distances (trainers.evaluation.target_drift; standing still scores 1): geodesic_schedule
from its evenly spaced chord (the chord arm's targets), the teacher's iterates from the
geodesic_schedule targets, and the teacher's iterates from their chord; then each summarized per
pair start step (median and range). Prints the summary; --out also writes every row.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from geodesic_targets.target_set import TargetSet  # noqa: E402
from trainers.evaluation.target_drift import summary_by_start, target_drift  # noqa: E402


def _target_set(arm: pathlib.Path, meta_seed: int) -> TargetSet | None:
    for name in (f"targets-{meta_seed}.npz", f"targets_generated-{meta_seed}.npz"):
        if (arm / name).is_file():
            return TargetSet.load(arm / name)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args(argv)
    rows = {"schedule_vs_chord": [], "teacher_vs_schedule": [], "teacher_vs_chord": []}
    seeds = []
    found = (args.run / "arms" / "geodesic_schedule").glob("targets*-*.npz")
    for meta_seed in sorted({int(path.stem.rsplit("-", 1)[1]) for path in found}):
        schedule = _target_set(args.run / "arms" / "geodesic_schedule", meta_seed)
        teacher = _target_set(args.run / "arms" / "teacher", meta_seed)
        if schedule is None or teacher is None:
            continue
        seeds.append(meta_seed)
        for row in target_drift(schedule, teacher):
            tagged = {"meta_seed": meta_seed, **row}
            rows["schedule_vs_chord"].append({**tagged, "distance": row["chord_mismatch"]})
            rows["teacher_vs_schedule"].append({**tagged, "distance": row["imitation_drift"]})
        for row in target_drift(teacher, schedule):
            rows["teacher_vs_chord"].append(
                {"meta_seed": meta_seed, **row, "distance": row["chord_mismatch"]}
            )
    if not seeds:
        print(f"{args.run}: no meta-seed with both geodesic_schedule and teacher targets")
        return 2
    summary = {name: summary_by_start(found, "distance") for name, found in rows.items()}
    print(f"meta-seeds {seeds}")
    for name, by_start in summary.items():
        for start, stats in by_start.items():
            print(
                f"{name}, pairs starting at step {start}: median {stats['median']:.4f} "
                f"({stats['min']:.4f}-{stats['max']:.4f}, {stats['pairs']} pairs)"
            )
    if args.out:
        args.out.write_text(
            json.dumps({"meta_seeds": seeds, "summary": summary, "rows": rows}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
