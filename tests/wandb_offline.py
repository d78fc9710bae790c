"""Reads back what W&B wrote offline, so tests can check the run a command logged.

Only tests need this; it parses wandb's private record format, so it lives here
rather than in the library. Follows wandb 0.31 sources: the `.wandb` transaction log in
`run.settings.sync_dir` uses the leveldb record layout of `wandb/sdk/internal/datastore.py`
(header `<4sHB` ":W&B",0xBEE1,0; 32 KiB blocks of `<IHB` crc32, length, type FULL=1..LAST=4)
with `wandb_internal_pb2.Record` payloads; typed history values as in
`wandb/sdk/interface/history_value.py`.
"""

from __future__ import annotations

import json
import os
import pathlib
import struct
from collections.abc import Iterator
from typing import Any

_BLOCK, _HEADER, _FULL, _LAST = 32768, 7, 1, 4


def _records(path: pathlib.Path) -> Iterator[Any]:
    """Yields the `Record` protos of a `.wandb` transaction log (format: module docstring)."""
    from wandb.proto import wandb_internal_pb2  # pylint: disable=import-outside-toplevel

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B transaction log")
    pos, chunks = _HEADER, []
    while pos + _HEADER <= len(data):
        if _BLOCK - pos % _BLOCK < _HEADER:  # Zero padding at the end of a block.
            pos += _BLOCK - pos % _BLOCK
            continue
        _, length, kind = struct.unpack_from("<IHB", data, pos)
        if kind == 0:  # Unwritten tail.
            break
        chunks.append(data[pos + _HEADER : pos + _HEADER + length])
        pos += _HEADER + length
        if kind in (_FULL, _LAST):
            yield wandb_internal_pb2.Record.FromString(b"".join(chunks))
            chunks = []


def _items(items, decode=lambda item: json.loads(item.value_json)) -> dict[str, Any]:
    """Key -> value of config/summary/history items, W&B-internal "_wandb" keys dropped."""
    keyed = ((item.key or "/".join(item.nested_key), item) for item in items)
    return {key: decode(item) for key, item in keyed if not key.startswith("_wandb")}


def _history_value(item) -> Any:
    """A history item's value: the typed oneof (wandb >= 0.31) or `value_json`."""
    kind = item.WhichOneof("value") if "value" in item.DESCRIPTOR.oneofs_by_name else None
    if kind in ("boolean", "integer", "number", "text"):
        return getattr(item, kind)
    return None if kind == "none" else json.loads(item.json if kind == "json" else item.value_json)


def read_offline_run(run_folder: str | os.PathLike) -> dict[str, Any]:
    """Reads back what W&B wrote to `run_folder/run-<id>.wandb` (e.g. `run_dir/wandb/offline-run-*`).

    Returns:
        `{"run_id": str, "history": [{"_step": 0, "meta_loss": ..., ...}, ...], "config": {...},
        "summary": {...}, "exit_code": int or None}`; "_wandb" internal keys dropped.
    """
    (log_path,) = pathlib.Path(run_folder).glob("run-*.wandb")
    out: dict[str, Any] = {
        "run_id": None,
        "history": [],
        "config": {},
        "summary": {},
        "exit_code": None,
    }
    for record in _records(log_path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run_id"] = record.run.run_id
            out["config"].update(_items(record.run.config.update))
        elif kind == "config":
            out["config"].update(_items(record.config.update))
        elif kind == "summary":
            out["summary"].update(_items(record.summary.update))
        elif kind == "history":
            out["history"].append(_items(record.history.item, _history_value))
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out
