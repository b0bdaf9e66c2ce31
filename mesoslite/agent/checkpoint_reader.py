"""Reading the agent's checkpoints back after a restart (the meta dir `checkpoints`
writes, laid out by `sandbox.SandboxLayout`).

The messages come back as they were written; this module adds only the shape of the
tree (which framework holds which executor, run and task) and the replay of each
`task.updates` file into the updates still waiting for an acknowledgement. A file or
directory that a crash left half made (a framework without framework.info, a task
without task.info) is skipped, as Mesos does. Blocking: call from a worker thread.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from mesoslite.agent.sandbox import LATEST, SandboxLayout
from mesoslite.agent.update_log import read_update_log
from mesoslite.proto import internal_pb2, mesos_pb2

__all__ = [
    "AgentCheckpoint",
    "ExecutorCheckpoint",
    "FrameworkCheckpoint",
    "RunCheckpoint",
    "TaskCheckpoint",
    "read_agent_checkpoint",
    "read_boot_id",
]

_M = TypeVar("_M", bound=Message)


@dataclass(frozen=True)
class TaskCheckpoint:
    info: mesos_pb2.TaskInfo
    # Every update the agent took for the task, oldest first.
    updates: list[internal_pb2.StatusUpdate]
    # Those not acknowledged yet, oldest first: the stream a restart resumes.
    pending: list[internal_pb2.StatusUpdate]

    @property
    def task_id(self) -> str:
        return self.info.task_id.value

    @property
    def last_state(self) -> mesos_pb2.TaskState.ValueType:
        """The newest state the task reported (TASK_STAGING before its first update)."""
        return self.updates[-1].status.state if self.updates else mesos_pb2.TASK_STAGING


@dataclass(frozen=True)
class RunCheckpoint:
    """One run of an executor: its container and the tasks it was given."""

    container_id: str
    tasks: list[TaskCheckpoint]
    # Task id -> nested container id, for the tasks of a task group (read from the
    # sandbox's `tasks/<task id>` links, which name each task's container).
    task_containers: dict[str, str]


@dataclass(frozen=True)
class ExecutorCheckpoint:
    info: mesos_pb2.ExecutorInfo
    # The run `runs/latest` names (the one that may still be running), if any.
    latest_run: RunCheckpoint | None
    # Runs before it: over, though some of their updates may still wait for an ack.
    earlier_runs: list[RunCheckpoint]

    @property
    def executor_id(self) -> str:
        return self.info.executor_id.value


@dataclass(frozen=True)
class FrameworkCheckpoint:
    info: mesos_pb2.FrameworkInfo
    executors: list[ExecutorCheckpoint]

    @property
    def framework_id(self) -> str:
        return self.info.id.value


@dataclass(frozen=True)
class AgentCheckpoint:
    info: mesos_pb2.AgentInfo
    frameworks: list[FrameworkCheckpoint]

    @property
    def agent_id(self) -> str:
        return self.info.id.value


def read_boot_id(layout: SandboxLayout) -> str | None:
    """The boot id the previous agent wrote (None if it never did)."""
    try:
        return layout.boot_id_file.read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def _read_message(path: Path, message: _M) -> _M | None:
    try:
        message.ParseFromString(path.read_bytes())
    except (OSError, DecodeError):
        return None
    return message


def _subdirectories(path: Path) -> list[str]:
    """Names of the directories in `path` (not links, not hidden temporaries)."""
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        entry.name
        for entry in entries
        if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)
    )


def read_agent_checkpoint(layout: SandboxLayout) -> AgentCheckpoint | None:
    """What `meta/slaves/latest` leads to, or None when there is nothing to recover."""
    try:
        agent_id = os.readlink(layout.latest_agent_link)
    except OSError:
        return None
    info = _read_message(layout.agent_info_file(agent_id), mesos_pb2.AgentInfo())
    if info is None or info.id.value != agent_id:
        return None
    frameworks_dir = layout.agent_meta_dir(agent_id) / "frameworks"
    frameworks = []
    for framework_id in _subdirectories(frameworks_dir):
        framework = _read_framework(layout, agent_id, framework_id)
        if framework is not None:
            frameworks.append(framework)
    return AgentCheckpoint(info=info, frameworks=frameworks)


def _read_framework(
    layout: SandboxLayout, agent_id: str, framework_id: str
) -> FrameworkCheckpoint | None:
    info = _read_message(
        layout.framework_info_file(agent_id, framework_id), mesos_pb2.FrameworkInfo()
    )
    if info is None:
        return None
    executors_dir = layout.framework_meta_dir(agent_id, framework_id) / "executors"
    executors = []
    for executor_id in _subdirectories(executors_dir):
        executor = _read_executor(layout, agent_id, framework_id, executor_id)
        if executor is not None:
            executors.append(executor)
    return FrameworkCheckpoint(info=info, executors=executors)


def _latest_run_id(
    layout: SandboxLayout, agent_id: str, framework_id: str, executor_id: str
) -> str | None:
    # The sandbox's `runs/latest` link is moved to each new run as it is created.
    with contextlib.suppress(OSError):
        return os.readlink(layout.runs_dir(agent_id, framework_id, executor_id) / LATEST)
    return None


def _read_executor(
    layout: SandboxLayout, agent_id: str, framework_id: str, executor_id: str
) -> ExecutorCheckpoint | None:
    info = _read_message(
        layout.executor_info_file(agent_id, framework_id, executor_id), mesos_pb2.ExecutorInfo()
    )
    if info is None:
        return None
    runs_dir = layout.executor_meta_dir(agent_id, framework_id, executor_id) / "runs"
    runs = [
        _read_run(layout, agent_id, framework_id, executor_id, container_id)
        for container_id in _subdirectories(runs_dir)
    ]
    latest_id = _latest_run_id(layout, agent_id, framework_id, executor_id)
    latest = next((run for run in runs if run.container_id == latest_id), None)
    if latest is None and runs:
        # No link (a crash before it was made): the newest run is the best guess.
        latest = max(runs, key=lambda run: _mtime(runs_dir / run.container_id))
    earlier = [run for run in runs if run is not latest]
    return ExecutorCheckpoint(info=info, latest_run=latest, earlier_runs=earlier)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _read_run(
    layout: SandboxLayout, agent_id: str, framework_id: str, executor_id: str, container_id: str
) -> RunCheckpoint:
    tasks_dir = layout.run_meta_dir(agent_id, framework_id, executor_id, container_id) / "tasks"
    tasks = []
    for task_id in _subdirectories(tasks_dir):
        task = _read_task(tasks_dir / task_id)
        if task is not None:
            tasks.append(task)
    sandbox = layout.executor_run_dir(agent_id, framework_id, executor_id, container_id)
    return RunCheckpoint(
        container_id=container_id, tasks=tasks, task_containers=_task_containers(sandbox)
    )


def _read_task(directory: Path) -> TaskCheckpoint | None:
    info = _read_message(directory / "task.info", mesos_pb2.TaskInfo())
    if info is None:
        return None
    try:
        data = (directory / "task.updates").read_bytes()
    except FileNotFoundError:
        data = b""
    updates: list[internal_pb2.StatusUpdate] = []
    pending: deque[internal_pb2.StatusUpdate] = deque()
    seen: set[bytes] = set()
    # Replayed exactly as the status update manager took them: an acknowledgement
    # always answers the oldest update waiting for one.
    for entry in read_update_log(data):
        if entry.update is not None:
            uuid = entry.update.status.uuid
            if uuid in seen:
                continue
            seen.add(uuid)
            updates.append(entry.update)
            pending.append(entry.update)
        elif pending and pending[0].status.uuid == entry.acknowledged_uuid:
            pending.popleft()
    return TaskCheckpoint(info=info, updates=updates, pending=list(pending))


def _task_containers(sandbox: Path) -> dict[str, str]:
    mapping: dict[str, str] = {}
    tasks_dir = sandbox / "tasks"
    try:
        entries = list(os.scandir(tasks_dir))
    except (FileNotFoundError, NotADirectoryError):
        return mapping
    for entry in entries:
        with contextlib.suppress(OSError):
            mapping[entry.name] = Path(os.readlink(entry.path)).name
    return mapping
