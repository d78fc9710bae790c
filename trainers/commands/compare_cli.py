"""`meta-opt geodesics compare`: how far two target sets of the same pairs are apart.

What a longer (or tighter) shortening run changes is read off this comparison: make the
targets twice (`meta-opt geodesics targets ... geodesics.connect.shortening.rounds=N`) and
compare the two `targets.npz` files (`trainers.evaluation.target_drift`). Parsing and
printing only.
"""

from __future__ import annotations

import argparse
import json
import pathlib


def _cmd_compare(args: argparse.Namespace) -> None:
    from common.atomic import write_text
    from geodesic_targets.target_set import TargetSet
    from trainers.errors import RunError
    from trainers.evaluation.target_drift import drift_markdown, target_drift

    sets = []
    for path in (args.reference, args.other):
        if not pathlib.Path(path).is_file():
            raise RunError(
                f"{path}: no such target set (a targets.npz of meta-opt geodesics targets)"
            )
        sets.append(TargetSet.load(path))
    rows = target_drift(*sets)
    title = f"{args.other} against {args.reference} ({len(rows)} shared pairs)"
    text = drift_markdown(rows, title)
    print(text, end="")
    if args.out:
        folder = pathlib.Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        write_text(folder / "drift.md", text)
        write_text(folder / "drift.json", json.dumps(rows, indent=2) + "\n")
        print(f"results in {folder}")


def add_compare_command(geodesic_commands) -> None:
    """Adds `compare REFERENCE OTHER [--out FOLDER]` to the `meta-opt geodesics` subcommands."""
    compare = geodesic_commands.add_parser(
        "compare",
        help="how far two target sets of the same pairs are apart (imitation-loss units), "
        "e.g. what a longer shortening run changes",
    )
    compare.add_argument("reference", help="a targets.npz (the reference set)")
    compare.add_argument("other", help="a targets.npz with the same pairs (e.g. a longer run)")
    compare.add_argument("--out", help="also write drift.md and drift.json into this folder")
    compare.set_defaults(run=_cmd_compare)
