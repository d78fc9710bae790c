"""An ablation arm's meta-seeds in blocks, so an arm too long for one session goes on block by block.

With `ablation.seed_block` an arm's K meta-seeds train as several vmapped runs of that many
seeds each, every block in its own folder and kept once trained; a block needs only its own
seeds' targets, which are made just before it trains. Vmapped seeds match separate runs up to
float rounding (rtol 1e-5 in the test, not bit for bit), so the blocks, joined in order, are the
arm's K runs.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Sequence

import jax
import numpy as np

from trainers.config.experiment import ExperimentConfig
from trainers.pipelines.arm_training import ArmRun, discard_checkpoints, train_arm


def concatenated(runs: Sequence[ArmRun]) -> ArmRun:
    """Blocks of one arm's meta-seeds as one run, in order (their wall times add up)."""
    join = lambda *leaves: np.concatenate([np.asarray(leaf) for leaf in leaves])
    return ArmRun(
        jax.tree_util.tree_map(join, *[run.meta_params for run in runs]),
        runs[0].steps,
        {name: join(*[run.validation[name] for run in runs]) for name in runs[0].validation},
        runs[0].step_cost,
        join(*[run.skipped for run in runs]),
        float(sum(run.seconds for run in runs)),
    )


def train_arm_in_blocks(
    config: ExperimentConfig,
    family,
    folder: pathlib.Path,
    prepare: Callable[[Sequence[int]], None],
    *,
    progress: bool = True,
    label: str | None = None,
) -> ArmRun:
    """The arm's K meta-seeds, block by block (`ablation.seed_blocks`), each kept once trained.

    Block b trains in `folder/block-<b>` (its own checkpoints, metrics and W&B run) and is
    saved there as result.npz, so a stopped arm goes on at its first unfinished block;
    `prepare(seeds)` makes the block's targets just before it trains. With one block this
    is `train_arm` in `folder` itself.
    """
    blocks = config.ablation.seed_blocks()
    if len(blocks) == 1:
        prepare(blocks[0])
        return train_arm(config, family, folder, progress=progress, label=label)
    runs = []
    for b, seeds in enumerate(blocks):
        where, name = (
            folder / f"block-{b}",
            f"{label or config.meta_train.supervision} seeds {seeds.start}-{seeds.stop - 1}",
        )
        if not (where / "result.npz").exists():
            prepare(seeds)
            run = train_arm(
                config,
                family,
                where,
                progress=progress,
                label=name,
                meta_seeds=seeds,
                targets_folder=folder,
            )
            run.save(where / "result.npz")
            discard_checkpoints(where)
        runs.append(ArmRun.load(where / "result.npz"))
    return concatenated(runs)
