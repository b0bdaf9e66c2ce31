"""Marks of containers that are not checkpointed, so that a restarted agent can find
and destroy what its predecessor left running.

A checkpointed container has a full record (`checkpoint.py`) and a reaper that
outlives the agent. Any other container is a plain child of the agent: when the agent
dies it goes on running, and with the posix launcher nothing else (no cgroup) leads to
it. So each one leaves a mark while it runs:

    <runtime dir>/unsupervised/<container id> -> "<pid>:<start ticks>"

A symlink, because creating and removing one is a single syscall each (no data, no
fsync: only an agent crash must be survived, not a host crash, which ends the
containers anyway). The start time tells the container's process from a later one
that got its pid.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LaunchMark", "read_marks", "remove_mark", "write_mark"]

_DIRECTORY = "unsupervised"


@dataclass(frozen=True)
class LaunchMark:
    container_id: str
    pid: int
    start_ticks: int


def _mark_path(runtime_dir: Path, container_id: str) -> Path:
    return runtime_dir / _DIRECTORY / container_id


def write_mark(runtime_dir: Path, mark: LaunchMark) -> None:
    path = _mark_path(runtime_dir, mark.container_id)
    target = f"{mark.pid}:{mark.start_ticks}"
    try:
        os.symlink(target, path)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
    except FileExistsError:
        # A mark left by a predecessor under the same id (ids are uuids: stale).
        path.unlink()
        os.symlink(target, path)


def remove_mark(runtime_dir: Path, container_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _mark_path(runtime_dir, container_id).unlink()


def read_marks(runtime_dir: Path) -> list[LaunchMark]:
    """Every mark (unreadable ones are removed: they lead nowhere)."""
    marks: list[LaunchMark] = []
    try:
        entries = list(os.scandir(runtime_dir / _DIRECTORY))
    except FileNotFoundError:
        return marks
    for entry in entries:
        try:
            pid, start_ticks = os.readlink(entry.path).split(":")
            marks.append(LaunchMark(entry.name, int(pid), int(start_ticks)))
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
    return marks
