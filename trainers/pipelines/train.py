"""The outer meta-training loop: `meta-opt train`.

The loop is plain Python around one jitted meta-step (compiled once): it moves
metrics to the host for logging, shows a progress bar, and checkpoints the whole
`MetaState` (meta-params, outer optimizer, inner states in flight, key, step)
atomically, so a run killed at any moment resumes bit for bit.

Several processes (multi-host, `sharding.maybe_initialize_distributed`) run the same
loop in lockstep: each builds the same initial state from the seed (or reads the
same checkpoint) and holds its share of the instances; process 0 alone logs, shows
the progress bar and writes checkpoints and targets.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import meta_opt
from common.progress import progress_bar
from common.pytree import PyTree
from trainers.config import to_dict
from trainers.config.experiment import ExperimentConfig
from trainers.config.sections import MetaTrainConfig
from trainers.config.supervision import makes_on_policy_segments
from trainers.config.task_families import build_family, extra_families
from trainers.core import keys as run_keys
from trainers.core import sharding
from trainers.core.estimators import init_particles
from trainers.core.meta_step import MetaObjective, MetaState, Targets, make_meta_step
from trainers.core.on_policy import OnPolicy
from trainers.core.trajectories import make_run
from trainers.core.unroll import initial_states
from trainers.errors import RunError
from trainers.io.checkpoint import latest_checkpoint, restore_latest, save_checkpoint
from trainers.io.run_logger import RunLogger
from trainers.pipelines.imitation_targets import load_targets


def outer_optimizer(config: ExperimentConfig) -> optax.GradientTransformation:
    """Adam (by name through `meta_opt.get_optimizer`) after global-norm clipping."""
    outer = config.meta_train.outer
    return optax.chain(
        optax.clip_by_global_norm(outer.clip_norm),
        meta_opt.get_optimizer("adam", learning_rate=outer.learning_rate),
    )


def unroll_steps_per_meta_step(train: MetaTrainConfig) -> int:
    """Inner steps of the inner-loss unrolls in one meta-step: N instances x U steps, for every
    task (`extra_tasks` too), twice with ES/PES (one unroll per particle)."""
    particles = 2 if train.estimator.antithetic else 1
    return (
        train.num_instances * train.unroll.unroll_length * particles * (1 + len(train.extra_tasks))
    )


def initial_meta_state(config: ExperimentConfig, family) -> MetaState:
    """The state at meta-step 0, derived from `config.seed` alone."""
    train = config.meta_train
    key = run_keys.derive(config.seed, "meta_train")
    init_key, inner_key, step_key = jax.random.split(key, 3)
    meta_params = train.lstm.init(init_key)
    inner = initial_states(
        family, train.lstm, meta_params, inner_key, train.num_instances, train.unroll
    )
    if train.estimator.antithetic:  # ES/PES: both particles of every instance start alike
        inner = init_particles(inner, meta_params)
    if (
        train.extra_tasks
    ):  # a tuple of states, one per task family; the main family's as without extras
        extras = [
            initial_states(
                f,
                train.lstm,
                meta_params,
                jax.random.fold_in(inner_key, i + 1),
                train.num_instances,
                train.unroll,
            )
            for i, f in enumerate(extra_families(config))
        ]
        inner = (
            inner,
            *(init_particles(e, meta_params) if train.estimator.antithetic else e for e in extras),
        )
    zero = jnp.zeros([], jnp.int32)
    return MetaState(
        meta_params, outer_optimizer(config).init(meta_params), inner, step_key, zero, zero
    )


def validation_fn(config: ExperimentConfig, family) -> Callable[[PyTree], dict[str, jax.Array]]:
    """`validate(meta_params)`, pure (jit or vmap it): the learned optimizer on fixed held-out instances.

    Returns `{"validation_meta_loss": mean minibatch loss over H steps from fresh
    parameters, "validation_final_loss": mean training loss after H steps}`,
    averaged over `meta_train.validation_seeds` instances drawn from `config.seed`.
    """
    train_cfg = config.meta_train
    keys = jax.random.split(run_keys.derive(config.seed, "validation"), train_cfg.validation_seeds)
    run = make_run(family, train_cfg.lstm.transformation, train_cfg.unroll.horizon, record_points=1)

    def validate(meta_params):
        out = jax.vmap(run, in_axes=(None, 0))(meta_params, keys)
        return {
            "validation_meta_loss": jnp.mean(out["batch_losses"]),
            "validation_final_loss": jnp.mean(out["curve"][:, -1]),
        }

    return validate


def on_policy_for(config: ExperimentConfig) -> OnPolicy | None:
    """The on-policy segments of the "on_policy" arm: teacher `geodesics.baseline`, T =
    `geodesics.targets.horizon`, warm-ups up to H - T; None for every other arm.

    Raises:
      RunError: T longer than the horizon H.
    """
    if not makes_on_policy_segments(config):
        return None
    horizon, segment = config.meta_train.unroll.horizon, config.geodesics.targets.horizon
    if segment > horizon:
        raise RunError(
            f"on-policy segments of T = {segment} steps do not fit the horizon H = {horizon}"
        )
    return OnPolicy(config.geodesics.baseline.build(), segment, horizon - segment)


def build_meta_step(config: ExperimentConfig, family, targets: Targets | None):
    """The meta-step `config.meta_train` describes, on `family` with stored `targets`
    (`load_targets`; None where the arm stores none): objective, outer optimizer,
    on-policy segments, estimator and extra task families all come from the config, so
    `train`, the ablation and the benchmarks build (and time) one and the same step."""
    train_cfg = config.meta_train
    return make_meta_step(
        family,
        train_cfg.lstm,
        train_cfg.unroll,
        MetaObjective(train_cfg.loss_weight, train_cfg.imitation_weight, train_cfg.imitation_batch),
        outer_optimizer(config),
        targets,
        on_policy_for(config),
        train_cfg.estimator,
        extra_families(config),
    )


def make_validation(config: ExperimentConfig, family) -> Callable[[PyTree], dict[str, jax.Array]]:
    """`validation_fn`, jitted, with its values brought to the host."""
    validate = jax.jit(validation_fn(config, family))
    return lambda meta_params: sharding.to_host(validate(meta_params))


def place_state(state: MetaState, mesh) -> MetaState:
    """Instances split over the mesh, everything else replicated (so jit compiles once).

    With several processes `state` must be the same on every process; each keeps
    only the shards of its own devices.
    """
    placed = sharding.replicate(state._replace(inner=None), mesh)
    return placed._replace(inner=sharding.shard_tasks(state.inner, mesh))


def _finite(tree: PyTree) -> bool:
    return all(
        bool(np.all(np.isfinite(np.asarray(x))))
        for x in jax.tree_util.tree_leaves(tree)
        if np.issubdtype(np.asarray(x).dtype, np.floating)
    )


def train(
    config: ExperimentConfig,
    run_dir: str | pathlib.Path,
    *,
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[int, dict], None] | None = None,
) -> MetaState:
    """Meta-trains the LSTM optimizer as `config` says; returns the final state.

    Args:
      config: the experiment.
      run_dir: the run folder (checkpoints, metrics.jsonl, the W&B run, config.yaml).
      resume: continue from the newest checkpoint in `run_dir`.
      progress: show a progress bar (on process 0 only).
      on_step: called with (step, metrics) after every meta-step (tests, notebooks),
        on every process.

    Logged metrics are global: the jitted meta-step averages over all instances of
    all processes, and its metrics come back replicated, so every process sees the
    same cross-process means (`inner_steps_per_second` is timed by each process;
    the processes run in lockstep). In a multi-process job the returned state's
    instances are sharded over processes (`sharding.gather_to_host` collects them).
    """
    run_dir = pathlib.Path(run_dir)
    sharding.maybe_initialize_distributed(config.meta_train.distributed)
    mesh = sharding.task_mesh()
    sharding.check_divisible(config.meta_train.num_instances, mesh)
    family = build_family(config, training=True)
    state = initial_meta_state(config, family)
    if resume:
        state, _, _ = restore_latest(run_dir, state)
    elif latest_checkpoint(run_dir) is not None:
        raise RunError(
            f"{run_dir} already holds checkpoints: pass --resume to continue it, "
            "or choose another --out"
        )
    state = place_state(state, mesh)
    train_cfg = config.meta_train
    meta_step = build_meta_step(config, family, load_targets(config, family, run_dir))
    state_sharding = jax.tree_util.tree_map(lambda x: x.sharding, state)
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    step_fn = jax.jit(meta_step, out_shardings=(state_sharding, replicated))  # global metrics
    inner_steps = unroll_steps_per_meta_step(train_cfg)
    validate = make_validation(config, family) if train_cfg.validate_every else None
    first = int(sharding.to_host(state.step))
    primary = sharding.is_primary()
    logger = RunLogger(
        run_dir,
        to_dict(config),
        config.logging,
        primary=primary,
        resume_id=RunLogger.stored_run_id(run_dir) if resume else None,
    )
    with (
        logger,
        progress_bar(
            train_cfg.num_meta_steps,
            "meta-training",
            unit="step",
            initial=first,
            enabled=progress and primary,
        ) as bar,
    ):
        last: dict[str, float] = {}  # stays empty when a resumed run is already complete
        if validate is not None and first == 0:  # the untrained optimizer, for learning curves
            logger.log(0, {k: float(v) for k, v in validate(state.meta_params).items()})
        for step in range(first, train_cfg.num_meta_steps):
            tick = time.perf_counter()
            state, metrics = step_fn(state)
            metrics = {k: float(v) for k, v in sharding.to_host(metrics).items()}
            metrics["inner_steps_per_second"] = inner_steps / (time.perf_counter() - tick)
            if validate is not None and (step + 1) % train_cfg.validate_every == 0:
                metrics.update({k: float(v) for k, v in validate(state.meta_params).items()})
            logger.log(step + 1, metrics)
            last = metrics
            bar.update()
            bar.set_postfix(
                meta_loss=f"{metrics['meta_loss']:.4g}", skipped=int(metrics["skipped_steps"])
            )
            if on_step is not None:
                on_step(step + 1, metrics)
            if (step + 1) % train_cfg.checkpoint_every == 0 or step + 1 == train_cfg.num_meta_steps:
                whole = sharding.gather_to_host(state)  # a collective: every process gathers
                if not _finite(whole.meta_params):  # cannot happen: non-finite steps are skipped
                    raise FloatingPointError(f"non-finite meta-parameters at step {step + 1}")
                if primary:  # the other processes never touch the checkpoints
                    save_checkpoint(run_dir, step + 1, whole, {"config": to_dict(config)})
        logger.log_summary(
            {
                "final_meta_loss": last.get("meta_loss", float("nan")),
                "skipped_steps": int(sharding.to_host(state.skipped)),
            }
        )
    return state
