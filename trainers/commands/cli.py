"""The `meta-opt` command line.

Argument parsing and printing only: the work is in `trainers.pipelines` (the
subcommands that run one are in `trainers.commands.pipeline_cli`). Every
subcommand reads a YAML config (`--config`) with `a.b=value` overrides, or needs
none. The project's own user errors (`common.errors.UserError`: a bad config, a
missing data file, an unusable checkpoint, a run folder in the wrong state, ...) are
printed as one line naming the problem, with exit status 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence

import yaml

from common.errors import UserError
from trainers.commands.pipeline_cli import add_pipeline_commands
from trainers.commands.pretrained_cli import add_pretrained_commands


def _cmd_tasks(args: argparse.Namespace) -> None:
    import tasks.registry as tasks
    from trainers.errors import RunError

    if args.options:
        if args.options not in tasks.FAMILIES:
            raise RunError(
                f"unknown task {args.options!r}; known tasks: {', '.join(tasks.list_tasks())}"
            )
        options = tasks.make_options(args.options, {})
        for field in dataclasses.fields(options):
            print(f"{field.name}: {getattr(options, field.name)!r}")
        return
    width = max(len(name) for name in tasks.list_tasks())
    for name in tasks.list_tasks():
        print(f"{name:<{width}}  {tasks.FAMILIES[name].summary}")


def _cmd_config(args: argparse.Namespace) -> None:
    from trainers.config import save_config, to_dict
    from trainers.config.experiment import load_experiment

    config = load_experiment(args.config, args.overrides)
    if args.out:
        save_config(config, args.out)
        print(f"wrote {args.out}")
    else:
        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")


def _cmd_data_download(args: argparse.Namespace) -> None:
    from tasks.data.download import download

    where = download(args.dataset, args.data_dir, base_url=args.base_url)
    print(f"{args.dataset} is in {where}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `meta-opt` with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="meta-opt", description="Learned optimizers supervised by level-set geodesics."
    )
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="show the full traceback of an error instead of one line",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("tasks", help="list the task families, or one family's options")
    listing.add_argument("--options", metavar="NAME", help="show the options of task NAME")
    listing.set_defaults(run=_cmd_tasks)

    config = commands.add_parser("config", help="check a config and print it resolved")
    config.add_argument("--config", required=True, help="YAML experiment config")
    config.add_argument("--out", help="write the resolved config here instead of printing it")
    config.add_argument(
        "overrides", nargs="*", help="dotted overrides, e.g. task.options.batch_size=64"
    )
    config.set_defaults(run=_cmd_config)

    add_pipeline_commands(commands)
    add_pretrained_commands(commands)

    data = commands.add_parser("data", help="data set utilities")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    fetch = data_commands.add_parser("download", help="download a data set and verify checksums")
    fetch.add_argument("dataset", choices=["mnist", "cifar10"])
    fetch.add_argument("--data-dir", help="target folder (default: $META_OPT_DATA or the cache)")
    fetch.add_argument("--base-url", help="mirror to download from instead of the official one")
    fetch.set_defaults(run=_cmd_data_download)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `meta-opt`; returns the exit status (0 ok, 2 for an error the user can fix).

    A `UserError` is printed as one line (the full
    traceback with `--traceback`); any other exception propagates with its traceback.
    """
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        run(args)
    except UserError as error:
        if args.traceback:
            raise
        print(f"meta-opt: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
