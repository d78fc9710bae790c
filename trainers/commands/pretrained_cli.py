"""`meta-opt pretrained` (list the shipped optimizers, or show one's card) and `meta-opt export`
(a meta-training run's optimizer as a pretrained bundle). Parsing and printing only."""

from __future__ import annotations

import argparse


def _cmd_pretrained(args: argparse.Namespace) -> None:
    from meta_opt.pretrained_bundles import (
        PRETRAINED_DIR,
        PretrainedError,
        list_pretrained,
        pretrained_card,
    )
    from trainers.errors import RunError

    if args.name is None:
        names = list_pretrained()
        print("\n".join(names) if names else f"no pretrained optimizers in {PRETRAINED_DIR}")
        return
    try:
        pretrained_card(args.name)  # an unknown name raises, listing the known ones
    except PretrainedError as err:
        raise RunError(str(err)) from None
    print((PRETRAINED_DIR / args.name / "README.md").read_text(encoding="utf-8"), end="")


def _cmd_export(args: argparse.Namespace) -> None:
    from trainers.pipelines.export import export_command

    bundle = export_command(
        args.checkpoint,
        args.name,
        directory=args.to,
        evaluation=args.evaluation,
        notes=args.notes or "",
        force=args.force,
    )
    print(f"wrote {bundle} (weights.npz, card.json, README.md)")


def add_pretrained_commands(commands) -> None:
    """Adds `pretrained` and `export` to the `meta-opt` subcommands."""
    listing = commands.add_parser(
        "pretrained", help="list the shipped pretrained optimizers, or show one's card"
    )
    listing.add_argument("name", nargs="?", help="show this optimizer's card")
    listing.set_defaults(run=_cmd_pretrained)

    export = commands.add_parser(
        "export", help="write a training run's optimizer as a pretrained bundle"
    )
    export.add_argument(
        "--checkpoint",
        required=True,
        metavar="DIR",
        help="a train run folder or ckpt-<step> folder",
    )
    export.add_argument(
        "--name", required=True, help="the bundle's name (lower-case letters, digits, - _ .)"
    )
    export.add_argument(
        "--to",
        metavar="DIR",
        help="bundle folder (default: meta_opt/pretrained_optimizers, the shipped ones)",
    )
    export.add_argument(
        "--evaluation", metavar="DIR", help="a `meta-opt evaluate` run folder to put on the card"
    )
    export.add_argument(
        "--notes", help="free text for the card (how long it trained, on what machine, ...)"
    )
    export.add_argument("--force", action="store_true", help="replace a bundle of the same name")
    export.set_defaults(run=_cmd_export)
