"""One logger for every command: a W&B run and a local `metrics.jsonl`.

Call it from the Python outer loop only, never inside jitted code (`log` calls `float`).
Follows wandb 0.31 sources: `wandb.init(mode=, dir=, id=, resume="allow")` (docs.wandb.ai, "wandb.init
modes"); key detection as `wandb/sdk/lib/wbauth/{authenticate,wbnetrc}.py`. Tests read the offline
run back with `tests/wandb_offline.py`.
"""

from __future__ import annotations

import json
import math
import netrc
import os
import pathlib
import secrets
import string
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import wandb

from common.atomic import write_text
from trainers.config.sections import LoggingConfig

_RUN_ID_FILE = "wandb_run_id.txt"


def _netrc_has_key() -> bool:
    """Whether a netrc file holds a password for the W&B API host; reads files only."""
    hosts = {
        "api.wandb.ai",
        "api.forge.coreweave.com",
        urlsplit(os.environ.get("WANDB_BASE_URL", "")).netloc,
    }
    paths = [os.environ["NETRC"]] if os.environ.get("NETRC") else ["~/.netrc", "~/_netrc"]
    for path in (pathlib.Path(p).expanduser() for p in paths):
        try:
            entries = netrc.netrc(path)
        except (OSError, netrc.NetrcParseError):
            continue
        return any((entries.authenticators(host) or ("", "", ""))[2] for host in hosts if host)
    return False


def resolve_mode(mode: str) -> str:
    """Resolves the configured mode to a W&B mode, without touching the network.

    Returns:
        `mode` itself unless "auto". "auto": env `WANDB_MODE` if set (it wins), else "online" when
        `WANDB_API_KEY` or a netrc entry for the W&B host holds a key, else "offline".
    """
    if mode != "auto":
        return mode
    if env_mode := os.environ.get("WANDB_MODE"):
        return "offline" if env_mode == "dryrun" else env_mode
    return "online" if os.environ.get("WANDB_API_KEY") or _netrc_has_key() else "offline"


class RunLogger:
    """Logs per-step scalars to W&B and `run_dir/metrics.jsonl`; a context manager.

    `metrics.jsonl` holds one `{"step": step, **metrics}` line per call; NaN and inf are
    written there as JSON `null` (strict JSON has neither) and sent to W&B unchanged.
    `run_path` is the local W&B run folder (`run_dir/wandb/offline-run-...`); None if disabled.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        config: Mapping[str, Any],
        logging: LoggingConfig,
        *,
        job_type: str = "train",
        resume_id: str | None = None,
        primary: bool = True,
    ):
        """Creates `run_dir`, opens `metrics.jsonl` for appending and starts the W&B run.

        Args:
            run_dir: the run folder; W&B writes under `run_dir/wandb`.
            config: the resolved config as a plain nested dict; the W&B run config.
            logging: project, entity, run name, tags and mode; job_type: "train", "eval", ....
            resume_id: a W&B run id to continue (`stored_run_id(run_dir)`); None starts a new run.
            primary: False on every process but process 0 of a multi-process job: it then
                writes nothing (no W&B run, no metrics.jsonl, not even `run_dir`) and every
                method is a no-op, so a job has one record. The caller logs values that are
                the same on every process (e.g. global means computed under jit).
        """
        self.run_dir, self.mode, self.run_path = (
            pathlib.Path(run_dir),
            resolve_mode(logging.mode),
            None,
        )
        self._run, self._jsonl, self.primary = None, None, primary
        if not primary:
            self.mode = "disabled"
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8")
        if self.mode == "disabled":  # wandb.init is never called, so no W&B files appear.
            return
        # Same alphabet and length as wandb/sdk/lib/runid.py:generate_id.
        run_id = resume_id or "".join(
            secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8)
        )
        # Mode always explicit (never a login prompt); no console capture, stats, git or code; bounded wait.
        self._run = wandb.init(
            project=logging.project,
            entity=logging.entity,
            name=logging.run_name,
            tags=list(logging.tags),
            config=dict(config),
            mode=self.mode,
            dir=str(self.run_dir),
            job_type=job_type,
            id=run_id,
            resume="allow",
            settings=wandb.Settings(
                console="off",
                quiet=True,
                init_timeout=120.0,
                x_disable_stats=True,
                disable_git=True,
                save_code=False,
                # Offline, tables are plain media files: with artifact references
                # wandb 0.19 asks the server for its version and retries forever.
                allow_offline_artifacts=self.mode != "offline",
            ),
        )
        self.run_path = pathlib.Path(self._run.settings.sync_dir)
        write_text(self.run_dir / _RUN_ID_FILE, run_id + "\n")

    @staticmethod
    def stored_run_id(run_dir: str | os.PathLike) -> str | None:
        """The W&B run id an earlier logger stored in `run_dir`, or None."""
        path = pathlib.Path(run_dir) / _RUN_ID_FILE
        return (path.read_text(encoding="utf-8").strip() or None) if path.exists() else None

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Logs scalars (Python, numpy or concrete jax scalars) for one step; never call under jit."""
        values = {key: float(value) for key, value in metrics.items()}
        row = {key: (v if math.isfinite(v) else None) for key, v in values.items()}
        if self._jsonl is not None:
            self._jsonl.write(json.dumps({"step": int(step), **row}) + "\n")
            self._jsonl.flush()
        if self._run is not None:
            self._run.log(values, step=int(step))

    def log_summary(self, values: Mapping[str, Any]) -> None:
        """Sets W&B summary values and merges them into `run_dir/summary.json`."""
        if not self.primary:
            return
        path = self.run_dir / "summary.json"
        summary = {
            **(json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}),
            **values,
        }
        write_text(path, json.dumps(summary, indent=2, default=float) + "\n")
        if self._run is not None:
            self._run.summary.update(dict(values))

    def log_image(self, key: str, png_path: str | os.PathLike, step: int | None = None) -> None:
        """Logs a PNG (e.g. an evaluation plot) to W&B as a `wandb.Image`."""
        if self._run is not None:
            self._run.log({key: wandb.Image(str(png_path))}, step=step)

    def log_table(
        self,
        key: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        step: int | None = None,
    ) -> None:
        """Logs a `wandb.Table` (e.g. final losses per optimizer) to W&B."""
        if self._run is not None:
            self._run.log(
                {key: wandb.Table(columns=list(columns), data=[list(r) for r in rows])}, step=step
            )

    def finish(self, exit_code: int = 0) -> None:
        """Finishes the W&B run (with `exit_code`) and closes the files; idempotent."""
        if self._run is not None:
            self._run, _ = None, self._run.finish(exit_code=exit_code)
            wandb.teardown()  # wandb 0.31: finish returns before the `.wandb` log is written; this waits.
        if self._jsonl is not None:
            self._jsonl, _ = None, self._jsonl.close()

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)
