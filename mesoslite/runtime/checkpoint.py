"""The per-container checkpoint: what a restarted agent needs to re-attach.

    <runtime dir>/
      containers/<container id>/checkpoint.json   ContainerRecord, written atomically
      exits/<container id>                         "pid wait-status", by the reaper
      reaper.sock  reaper.log

Protobuf fields are stored as base64 of their binary encoding.
"""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.reaper_protocol import exit_record_path, write_atomically

__all__ = [
    "ContainerRecord",
    "container_directory",
    "read_records",
    "remove_record",
    "write_record",
]

_FILE = "checkpoint.json"


def container_directory(runtime_dir: Path, container_id: str) -> Path:
    return runtime_dir / "containers" / container_id


def _encode(message: Any) -> str:
    return base64.b64encode(message.SerializeToString()).decode()


def _decode(cls: Any, text: str) -> Any:
    message = cls()
    message.ParseFromString(base64.b64decode(text))
    return message


@dataclass(frozen=True)
class ContainerRecord:
    container_id: str
    config: ContainerConfig
    pid: int
    # /proc/<pid>/stat start time: tells our process from a later one with its pid.
    start_ticks: int
    state: str

    def to_json(self) -> dict[str, Any]:
        config = self.config
        return {
            "container_id": self.container_id,
            "pid": self.pid,
            "start_ticks": self.start_ticks,
            "state": self.state,
            "config": {
                "command": _encode(config.command),
                "sandbox": str(config.sandbox),
                "environment": config.environment,
                "resources": [_encode(r) for r in config.resources],
                "container_info": (
                    _encode(config.container_info) if config.container_info is not None else None
                ),
                "user": config.user,
                "parent_id": config.parent_id,
                "checkpoint": config.checkpoint,
                "rootfs": str(config.rootfs) if config.rootfs is not None else None,
            },
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> ContainerRecord:
        stored = document["config"]
        config = ContainerConfig(
            command=_decode(mesos_pb2.CommandInfo, stored["command"]),
            sandbox=Path(stored["sandbox"]),
            environment=dict(stored["environment"]),
            resources=[_decode(mesos_pb2.Resource, r) for r in stored["resources"]],
            container_info=(
                _decode(mesos_pb2.ContainerInfo, stored["container_info"])
                if stored["container_info"] is not None
                else None
            ),
            user=stored["user"],
            parent_id=stored["parent_id"],
            checkpoint=bool(stored["checkpoint"]),
            rootfs=Path(stored["rootfs"]) if stored["rootfs"] is not None else None,
        )
        return cls(
            container_id=document["container_id"],
            config=config,
            pid=int(document["pid"]),
            start_ticks=int(document["start_ticks"]),
            state=document["state"],
        )


def write_record(runtime_dir: Path, record: ContainerRecord) -> None:
    path = container_directory(runtime_dir, record.container_id) / _FILE
    write_atomically(path, json.dumps(record.to_json()).encode())


def read_records(runtime_dir: Path) -> tuple[list[ContainerRecord], list[str]]:
    """Every readable record, and the ids of container directories without one."""
    records: list[ContainerRecord] = []
    unreadable: list[str] = []
    root = runtime_dir / "containers"
    if not root.is_dir():
        return records, unreadable
    for directory in sorted(root.iterdir()):
        try:
            records.append(ContainerRecord.from_json(json.loads((directory / _FILE).read_text())))
        except (OSError, ValueError, KeyError):
            # A crash before the first write leaves a directory without a record.
            unreadable.append(directory.name)
    return records, unreadable


def remove_record(runtime_dir: Path, container_id: str) -> None:
    shutil.rmtree(container_directory(runtime_dir, container_id), ignore_errors=True)
    exit_record_path(runtime_dir, container_id).unlink(missing_ok=True)
