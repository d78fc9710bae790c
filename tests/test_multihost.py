"""Several processes on JAX's own distributed runtime, for real: 2 local CPU processes.

A 2-process job (one device, one shard of the instances per process, gloo collectives
over localhost) meta-trains a tiny quadratic config and must match a 1-process run over
2 host devices; only process 0 writes checkpoints and logs; the job resumes from its own
checkpoint to the same state as an uninterrupted job. The launches share a persistent
compilation cache, so the resumed job does not compile again.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from trainers.config.experiment import build_family, load_experiment
from trainers.io.checkpoint import list_checkpoints, load_checkpoint
from trainers.pipelines import train as meta_train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 150  # seconds for one job, all its processes together
TINY = """\
name: tiny_multihost
task: {name: quadratic}
meta_train:
  num_meta_steps: 4
  num_instances: 4
  unroll: {horizon: 20, unroll_length: 5}
  lstm: {hidden_sizes: [8]}
  outer: {learning_rate: 0.003}
  checkpoint_every: 2
  validate_every: 2
  validation_seeds: 2
logging: {mode: disabled}
"""


def free_port() -> int:
    """A port the OS calls free now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(cache) -> dict[str, str]:
    """This environment minus device, platform and job settings a child must not inherit (the
    compile flags of the test run stay)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "XLA_FLAGS" and not k.startswith(("JAX_", "META_OPT_"))
    }
    compile_flags = [
        flag for flag in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in flag
    ]
    return {
        **env,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": ROOT,
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "XLA_FLAGS": " ".join(compile_flags),
    }


def start(cache, num_processes: int, devices: int, *args: str) -> list[subprocess.Popen]:
    """Starts `tests.multihost_worker` as a job of `num_processes` local processes."""
    env, port = child_env(cache), free_port()
    processes = []
    for i in range(num_processes):
        job = (
            {
                "META_OPT_COORDINATOR": f"127.0.0.1:{port}",
                "META_OPT_NUM_PROCESSES": str(num_processes),
                "META_OPT_PROCESS_ID": str(i),
            }
            if num_processes > 1
            else {}
        )
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.multihost_worker", *args, "--devices", str(devices)],
                cwd=ROOT,
                env={**env, **job},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        )
    return processes


def finish(processes: list[subprocess.Popen]) -> None:
    """Waits for a job; fails with every process's output when one fails or the job
    outlives TIMEOUT (then the process groups of its processes are killed)."""
    deadline, outputs = time.monotonic() + TIMEOUT, []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, 9)
        outputs += [p.communicate()[0] for p in processes[len(outputs) :]]
    codes = [p.returncode for p in processes]
    report = [
        f"--- process {i} (exit {code}) ---\n{out[-4000:]}"
        for i, (code, out) in enumerate(zip(codes, outputs))
    ]
    assert codes == [0] * len(processes), "\n".join(report)


def results(path, num_processes: int) -> list[dict]:
    return [json.loads(open(f"{path}.{i}", encoding="utf-8").read()) for i in range(num_processes)]


def states(run_dir, config_path) -> dict[int, object]:
    """The run's checkpoints, `{step: MetaState of numpy arrays}`."""
    config = load_experiment(config_path)
    like = meta_train.initial_meta_state(config, build_family(config))
    return {
        int(p.name.split("-")[1]): jax.device_get(load_checkpoint(p, like)[0])
        for p in list_checkpoints(run_dir)
    }


def assert_states_close(a, b, **tolerance) -> None:
    for (path, x), y in zip(
        jax.tree_util.tree_flatten_with_path(a)[0], jax.tree_util.tree_leaves(b)
    ):
        np.testing.assert_allclose(x, y, err_msg=jax.tree_util.keystr(path), **tolerance)


@pytest.mark.slow
def test_two_processes_match_two_devices_and_resume(tmp_path):
    config, cache = tmp_path / "tiny.yaml", tmp_path / "jax_cache"
    config.write_text(TINY)  # 4 instances: 2 per process
    single, job, resumed = tmp_path / "single", tmp_path / "job", tmp_path / "resumed"
    both = [
        start(cache, 1, 2, str(config), str(single), str(tmp_path / "single.json")),
        start(cache, 2, 1, str(config), str(job), str(tmp_path / "job.json")),
    ]
    for processes in both:
        finish(processes)

    one, (p0, p1) = results(tmp_path / "single.json", 1)[0], results(tmp_path / "job.json", 2)
    assert (one["process_count"], one["devices"]) == (1, 2)
    assert [
        (p["process_index"], p["process_count"], p["devices"], p["local_devices"]) for p in (p0, p1)
    ] == [(0, 2, 2, 1), (1, 2, 2, 1)]
    # Metrics are global (means over both processes' instances): equal on both processes
    # and to the 1-process run's; process 0 alone wrote metrics.jsonl, once per step.
    drop_timing = lambda rows: [
        {k: v for k, v in r.items() if k != "inner_steps_per_second"} for r in rows
    ]
    assert drop_timing(p0["metrics"]) == drop_timing(p1["metrics"])
    logged = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [0, 1, 2, 3, 4]  # 0: validation of the initial optimizer
    assert drop_timing(logged[1:]) == drop_timing(p0["metrics"])
    for key in ("meta_loss", "inner_loss", "meta_grad_norm", "validation_meta_loss"):
        np.testing.assert_allclose(
            [r.get(key, 0.0) for r in p0["metrics"]],
            [r.get(key, 0.0) for r in one["metrics"]],
            rtol=1e-5,
            err_msg=key,
        )
    # The whole state, gathered from both processes by process 0, equals the 2-device run's.
    single_states, job_states = states(single, config), states(job, config)
    assert sorted(job_states) == sorted(single_states) == [2, 4]
    for step in (2, 4):
        assert int(job_states[step].step) == step
        assert_states_close(job_states[step], single_states[step], rtol=1e-5, atol=1e-6)
    assert not any(p.name.startswith(".tmp") for p in (job / "checkpoints").iterdir())
    moved = [
        not np.allclose(x, y)
        for x, y in zip(
            jax.tree_util.tree_leaves(job_states[4].meta_params),
            jax.tree_util.tree_leaves(job_states[2].meta_params),
        )
    ]
    assert all(moved)  # the comparison is not between untouched initial parameters

    # Resume the job from its own step-2 checkpoint: it must reach the uninterrupted state.
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copytree(
        job / "checkpoints" / "ckpt-00000002", resumed / "checkpoints" / "ckpt-00000002"
    )
    finish(
        start(cache, 2, 1, str(config), str(resumed), str(tmp_path / "resumed.json"), "--resume")
    )
    r0, r1 = results(tmp_path / "resumed.json", 2)
    assert [r["step"] for r in r0["metrics"]] == [3, 4] and r0["step"] == r1["step"] == 4
    assert drop_timing(r0["metrics"]) == drop_timing(p0["metrics"][2:])
    assert_states_close(states(resumed, config)[4], job_states[4], rtol=0, atol=0)
