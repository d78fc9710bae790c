"""The `meta-opt` subcommands that run a pipeline: train, evaluate, demo, ablation, geodesics.

Each reads a YAML config (or a checkpoint) with `a.b=value` overrides, calls its
pipeline in `trainers.pipelines` and prints where the results are. `trainers.commands.cli`
keeps the light subcommands (tasks, config, data), the error handling and `main`, and adds
these with `add_pipeline_commands`. Parsing and printing only.
"""

from __future__ import annotations

import argparse

import yaml

from trainers.commands.compare_cli import add_compare_command


def _cmd_geodesics(args: argparse.Namespace) -> None:
    from trainers.config import replace_path
    from trainers.config.experiment import load_experiment
    from trainers.pipelines import geodesics as geodesics_cli

    config = load_experiment(args.config, args.overrides)
    if args.seed is not None:
        config = replace_path(config, "seed", args.seed)
    folder = geodesics_cli.run_folder(config, args.out, args.geodesics_command)
    command = getattr(geodesics_cli, f"{args.geodesics_command}_command")
    result = command(config, folder, progress=not args.no_progress)
    if args.geodesics_command in ("sweep", "targets", "spectrum"):
        print((folder / f"{args.geodesics_command}.md").read_text(), end="")
    else:
        print(yaml.safe_dump(result, sort_keys=False), end="")
    print(f"results in {folder}")


def _cmd_train(args: argparse.Namespace) -> None:
    import pathlib

    from trainers.config import replace_path, save_config
    from trainers.config.experiment import load_experiment
    from trainers.errors import RunError
    from trainers.pipelines.train import train

    if args.resume:
        run_dir = pathlib.Path(args.resume)
        if not (run_dir / "config.yaml").exists():
            raise RunError(f"{run_dir} is not a run folder: it has no config.yaml to resume from")
        config = load_experiment(args.config or run_dir / "config.yaml", args.overrides)
    elif args.config:
        config = load_experiment(args.config, args.overrides)
        run_dir = pathlib.Path(args.out or pathlib.Path(config.out_dir) / config.name / "train")
    else:
        raise RunError("meta-opt train needs --config (a new run) or --resume DIR")
    if args.seed is not None:
        config = replace_path(config, "seed", args.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    state = train(config, run_dir, resume=bool(args.resume), progress=not args.no_progress)
    print(
        f"meta-trained {int(state.step)} steps ({int(state.skipped)} skipped); results in {run_dir}"
    )


def _cmd_ablation(args: argparse.Namespace) -> None:
    import pathlib

    from trainers.config import replace_path
    from trainers.config.experiment import load_experiment
    from trainers.pipelines.ablation import ablation_command

    config = load_experiment(args.config, args.overrides)
    if args.seed is not None:
        config = replace_path(config, "seed", args.seed)
    folder = pathlib.Path(args.out or pathlib.Path(config.out_dir) / config.name / "ablation")
    only = _comma_list(args.arms) if args.arms else None
    data = ablation_command(config, folder, progress=not args.no_progress, only=only)
    if "waiting" in data:
        print(
            f"trained arms: {', '.join(data['trained']) or 'none yet'}; still to train: "
            f"{', '.join(data['waiting'])} (the report is written once every arm is trained)"
        )
    else:
        print((folder / "report.md").read_text(encoding="utf-8"), end="")
    print(f"results in {folder}")


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from trainers.pipelines.evaluate import evaluate_command, parse_checkpoint_arguments
    from trainers.reporting.evaluation_report import format_tables

    settings = {
        name: getattr(args, name)
        for name in ("steps", "seeds", "tuning_seeds")
        if getattr(args, name) is not None
    }
    if args.baselines is not None:
        settings["baselines"] = tuple(_comma_list(args.baselines))
    if args.generalization:
        settings["generalization"] = True
    results, written = evaluate_command(
        parse_checkpoint_arguments(args.checkpoint),
        settings,
        _comma_list(args.tasks or ""),
        args.out,
        overrides=args.overrides,
        add_baselines=("jacobi",) if args.jacobi else (),
        progress=not args.no_progress,
        suite=args.suite,
    )
    print(format_tables(results))
    plots = ", ".join(str(path) for path in written.values() if str(path).endswith(".png"))
    wandb_run = written["wandb"] or "disabled (metrics.jsonl only)"
    print(f"\nreport: {written['report']}\nplots: {plots}\nW&B run: {wandb_run}")


def _cmd_demo(args: argparse.Namespace) -> None:
    import pathlib
    import time

    from trainers.config import replace_path
    from trainers.config.experiment import load_experiment
    from trainers.pipelines.demo import DEFAULT_CONFIG, run_demo
    from trainers.reporting.evaluation_report import format_tables

    start = time.perf_counter()
    config = load_experiment(args.config or DEFAULT_CONFIG, args.overrides)
    if args.seed is not None:
        config = replace_path(config, "seed", args.seed)
    folder = pathlib.Path(args.out or pathlib.Path(config.out_dir) / config.name)
    out = run_demo(config, folder, progress=not args.no_progress)
    written = out["written"]
    print(format_tables(out["results"]))
    print()
    for line in out["best"]:
        if line:
            print(line)
    for key, comparison in (out["comparison"] or {}).items():
        name = key.replace("_", " ")
        reached = ", ".join(
            f"{label} at {row['steps_to_level']} (final {row['final']:.4g})"
            for label, row in comparison["runs"].items()
        )
        print(f"{name} {comparison['level']:.4g} first reached: {reached}")
    print(f"\nreport:  {written['report']}")
    print(f"plots:   {', '.join(str(p) for p in written.values() if str(p).endswith('.png'))}")
    runs = [str(p) for paths in written["train_wandb"].values() for p in paths]
    print(
        f"W&B:     {written['wandb'] or 'disabled'} (evaluation); {', '.join(runs) or 'disabled'} (training)"
    )
    print(f"demo finished in {time.perf_counter() - start:.0f} s; everything is in {folder}")


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML experiment config")
    parser.add_argument("--out", help="run folder (default: <out_dir>/<name>/<command>)")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. geodesics.level=0.3")


def add_pipeline_commands(commands) -> None:
    """Adds `train`, `evaluate`, `demo`, `ablation` and `geodesics` to the `meta-opt` subcommands."""
    training = commands.add_parser("train", help="meta-train the LSTM optimizer")
    training.add_argument(
        "--config", help="YAML experiment config (default with --resume: the run's own)"
    )
    training.add_argument("--out", help="run folder (default: <out_dir>/<name>/train)")
    training.add_argument("--seed", type=int, help="override the config's seed")
    training.add_argument(
        "--resume", metavar="DIR", help="continue the run in DIR from its newest checkpoint"
    )
    training.add_argument("--no-progress", action="store_true", help="no progress bar")
    training.add_argument(
        "overrides", nargs="*", help="dotted overrides, e.g. meta_train.num_meta_steps=50"
    )
    training.set_defaults(run=_cmd_train)

    evaluating = commands.add_parser(
        "evaluate", help="learned optimizers against tuned Adam, RMSProp, SGD+momentum, ESGD"
    )
    evaluating.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        metavar="[LABEL=]DIR",
        help="a train run folder (its newest checkpoint), a ckpt-<step> folder, "
        "arm:ABLATION/arms/ARM@K (meta-seed K of an ablation arm) or pretrained:NAME "
        "(`meta-opt pretrained`); repeat to compare several",
    )
    evaluating.add_argument(
        "--tasks", help="comma-separated task names (default: the training task)"
    )
    evaluating.add_argument(
        "--steps", type=int, help="inner steps per run (default: the training horizon)"
    )
    evaluating.add_argument("--seeds", type=int, help="held-out seeds per optimizer (default 16)")
    evaluating.add_argument(
        "--tuning-seeds", type=int, help="seeds of the baseline grid search (default 4)"
    )
    evaluating.add_argument(
        "--baselines", help="comma-separated baselines (default adam,rmsprop,momentum,esgd)"
    )
    evaluating.add_argument(
        "--jacobi", action="store_true", help="add the Jacobi-preconditioned baseline"
    )
    evaluating.add_argument(
        "--generalization",
        action="store_true",
        help="add 2x/10x steps, wider, deeper, ReLU and real MNIST (when present)",
    )
    evaluating.add_argument(
        "--suite",
        metavar="NAME",
        help="a named task list (configs/suites/NAME.yaml, or a YAML path) instead of the "
        "training task, with its aggregate over tasks (IQM of loss ratios and speed-ups over "
        "tuned Adam); a suite marked unseen refuses optimizers that met its task kinds",
    )
    evaluating.add_argument("--out", help="run folder (default: <run>/../evaluate)")
    evaluating.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluating.add_argument(
        "overrides", nargs="*", help="dotted overrides, e.g. evaluation.seeds=32"
    )
    evaluating.set_defaults(run=_cmd_evaluate)

    demo = commands.add_parser(
        "demo",
        help="targets, geodesic and loss-only meta-training, evaluation on digits (minutes, CPU)",
    )
    demo.add_argument("--config", help="YAML experiment config (default: configs/demo.yaml)")
    demo.add_argument("--out", help="demo folder (default: <out_dir>/<name>, i.e. runs/demo)")
    demo.add_argument("--seed", type=int, help="override the config's seed")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.add_argument(
        "overrides", nargs="*", help="dotted overrides, e.g. meta_train.num_meta_steps=50"
    )
    demo.set_defaults(run=_cmd_demo)

    ablation = commands.add_parser(
        "ablation",
        help="supervision arms x meta-seeds at a matched inner-step budget, against tuned baselines",
    )
    ablation.add_argument(
        "--arms",
        metavar="A,B",
        help="train only these arms now (an ablation longer than a session); the report is "
        "written by the run that finds every arm trained",
    )
    _add_run_arguments(ablation)
    ablation.set_defaults(run=_cmd_ablation)

    geodesics = commands.add_parser(
        "geodesics", help="string sampling, energy sweeps, targets, spectra"
    )
    geodesic_commands = geodesics.add_subparsers(dest="geodesics_command", required=True)
    for name, text in (
        ("connect", "train two models to geodesics.level and connect them"),
        ("sweep", "normalized geodesic length and beads against the level"),
        ("targets", "geodesic supervision targets from baseline trajectories"),
        ("spectrum", "Hessian spectra (index, extreme eigenvalues) along trajectories and paths"),
    ):
        sub = geodesic_commands.add_parser(name, help=text)
        _add_run_arguments(sub)
        sub.set_defaults(run=_cmd_geodesics)
    add_compare_command(geodesic_commands)
