"""One process of a local multi-process meta-training job (`tests/test_multihost.py`).

    python -m tests.multihost_worker CONFIG RUN_DIR RESULT_JSON [--resume] [--devices N]

Joins the job named by `META_OPT_COORDINATOR`, `META_OPT_NUM_PROCESSES` and
`META_OPT_PROCESS_ID` when they are set (else runs alone) on `--devices` CPU devices,
meta-trains with `trainers.pipelines.train.train` and writes RESULT_JSON.<process id>:
the process layout and the metrics this process saw at every step.
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("run_dir")
    parser.add_argument("result")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--devices", type=int, default=1, help="CPU devices of this process")
    args = parser.parse_args()

    import jax  # pylint: disable=g-import-not-at-top

    # Before anything touches a backend (train() then joins the job first thing).
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_num_cpu_devices", args.devices)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # the default in newer JAX

    from trainers.config.experiment import load_experiment  # pylint: disable=g-import-not-at-top
    from trainers.pipelines import train as meta_train  # pylint: disable=g-import-not-at-top

    seen = []
    config = load_experiment(args.config)
    state = meta_train.train(
        config,
        args.run_dir,
        resume=args.resume,
        progress=False,
        on_step=lambda step, metrics: seen.append({"step": step, **metrics}),
    )
    result = {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "devices": len(jax.devices()),
        "local_devices": len(jax.local_devices()),
        "step": int(state.step.addressable_data(0)),
        "metrics": seen,
    }
    with open(f"{args.result}.{jax.process_index()}", "w", encoding="utf-8") as f:
        json.dump(result, f)
    if jax.process_count() > 1:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
