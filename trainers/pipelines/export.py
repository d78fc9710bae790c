"""`meta-opt export`: a meta-training run's optimizer as a pretrained bundle with its card.

The bundle (`meta_opt.pretrained_bundles`) keeps the LSTM's weights, its configuration, the
whole training config (so `meta-opt evaluate --checkpoint pretrained:NAME` evaluates
it as its run would be) and, when given, the evaluation that vouches for it.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import re
from typing import Any

from meta_opt.pretrained_bundles import PRETRAINED_DIR, list_pretrained, save_pretrained
from trainers.config import replace_path, to_dict
from trainers.config.experiment import ExperimentConfig
from trainers.config.task_families import task_variation
from trainers.errors import RunError
from trainers.evaluation.seen_tasks import meta_training_saw
from trainers.pipelines.learned_checkpoints import load_learned

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def training_summary(config: ExperimentConfig, meta_steps: int) -> list[str]:
    """Markdown bullet lines saying what an optimizer was meta-trained on and how.

    Every task family of the meta-training distribution is listed (`task` and
    `meta_train.extra_tasks`), and the horizon says whether it was fixed or drawn.
    """
    train = config.meta_train
    variation = task_variation(config)
    families = (config.task, *train.extra_tasks)
    tasks = "; ".join(
        f"`{task.name}` with options `{json.dumps(dict(task.options), sort_keys=True)}`"
        for task in families
    )
    unroll = train.unroll
    horizon = (
        f"horizons drawn log-uniformly from [{unroll.min_horizon}, {unroll.horizon}]"
        if unroll.min_horizon is not None
        else f"horizon {unroll.horizon}"
    )
    instances = (
        f"{train.num_instances} instances of each of the {len(families)} task families"
        if train.extra_tasks
        else f"{train.num_instances} instances"
    )
    return [
        f"- task{'s' if train.extra_tasks else ''}: {tasks}",
        f"- meta-training instances vary by: `{json.dumps(variation, sort_keys=True)}`"
        + (" (each family takes the options it has)" if train.extra_tasks else "")
        if variation
        else "- meta-training instances vary by: nothing beyond their seeds",
        f"- {meta_steps} meta-steps of {instances}, unrolls of {unroll.unroll_length} steps, {horizon}, "
        f"meta-loss `{unroll.loss_kind}` scored on `{unroll.score_on}`",
        f"- supervision: `{train.supervision or ('imitation' if train.imitation_weight else 'none')}` "
        f"(imitation weight {train.imitation_weight})",
        f"- outer optimizer: Adam, learning rate {train.outer.learning_rate}; seed {config.seed}",
        f"- task kinds seen (an `unseen` suite refuses tasks of these): "
        f"{', '.join(meta_training_saw(config)['kinds'])}",
    ]


def card_markdown(
    name: str,
    config: ExperimentConfig,
    meta_steps: int,
    source: str,
    evaluation: str | None,
    notes: str,
) -> str:
    """The bundle's README.md: what it is, how to use it, how it was trained and evaluated."""
    lstm = config.meta_train.lstm
    lines = [
        f"# Pretrained optimizer `{name}`",
        "",
        f"A learned optimizer, {lstm.summary}, exported from `{source}` on "
        f"{datetime.date.today().isoformat()}.",
        "",
        "## Use",
        "",
        "```python",
        "import meta_opt, optax",
        f"tx = meta_opt.pretrained({name!r})  # an optax.GradientTransformation",
        "state = tx.init(params)",
        "updates, state = tx.update(grads, state, params)",
        "params = optax.apply_updates(params, updates)",
        "```",
        "",
        f"Evaluate it: `meta-opt evaluate --checkpoint pretrained:{name}`.",
        "",
        "## Meta-training",
        "",
        *training_summary(config, meta_steps),
        "",
    ]
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    lines += ["## Evaluation", ""]
    lines += [evaluation.strip(), ""] if evaluation else ["Not evaluated at export.", ""]
    return "\n".join(lines)


def _evaluation(folder: str | None) -> tuple[str | None, Any | None]:
    """The report.md text and results.json data of a `meta-opt evaluate` run folder."""
    if folder is None:
        return None, None
    report, results = pathlib.Path(folder) / "report.md", pathlib.Path(folder) / "results.json"
    if not report.is_file() or not results.is_file():
        raise RunError(
            f"--evaluation {folder}: not a `meta-opt evaluate` run folder "
            "(needs report.md and results.json)"
        )
    text = report.read_text(encoding="utf-8")
    text = "\n".join(
        line for line in text.splitlines() if not line.startswith("![")
    )  # plots stay in the run
    return text.split("\n", 1)[1] if text.startswith("# ") else text, json.loads(
        results.read_text(encoding="utf-8")
    )


def export_command(
    checkpoint: str,
    name: str,
    *,
    directory: str | None = None,
    evaluation: str | None = None,
    notes: str = "",
    force: bool = False,
) -> pathlib.Path:
    """Writes the optimizer of `checkpoint` (a run or ckpt folder) as bundle `name`; returns its folder.

    Raises:
      RunError: a name that is not lower-case letters, digits, '-', '_' or '.', a bundle of
        that name already there (unless `force`), or an `evaluation` folder without a report.
      CheckpointError: as `meta-opt evaluate` for an unusable checkpoint.
    """
    if not _NAME.fullmatch(name):
        raise RunError(
            f"pretrained name {name!r}: use lower-case letters, digits, '-', '_' or '.' (up to 64)"
        )
    if name in list_pretrained(directory) and not force:
        raise RunError(
            f"a pretrained optimizer {name!r} exists in {directory or PRETRAINED_DIR}: "
            "choose another name or pass --force"
        )
    learned = load_learned(checkpoint)
    report, results = _evaluation(evaluation)
    launched = learned.config.meta_train.num_meta_steps
    trained = learned.config  # the card's config says what was trained: the steps run
    if 0 < learned.step != launched:
        trained = replace_path(learned.config, "meta_train.num_meta_steps", learned.step)
    card = {
        "config": to_dict(trained),
        "meta_steps": learned.step,
        "launched_meta_steps": launched,
        "source": str(learned.path),
        "exported": datetime.date.today().isoformat(),
        "notes": notes,
        "evaluation": results,
        "meta_training_saw": meta_training_saw(trained),  # what `--suite unseen` checks
    }
    readme = card_markdown(name, learned.config, learned.step, str(learned.path), report, notes)
    lstm = learned.config.meta_train.lstm
    return save_pretrained(name, lstm, learned.meta_params, card, readme, directory)
