"""The agent's bookkeeping: frameworks, their executors, and the executors' tasks.

Mesos' own messages (FrameworkInfo, ExecutorInfo, TaskInfo, Task) hold the data; these
records only add what the agent tracks about them (phase, queues, container).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import Termination
from mesoslite.wire.http import EventStream

__all__ = [
    "Executor",
    "ExecutorKind",
    "ExecutorPhase",
    "ExecutorRunner",
    "Framework",
    "new_task",
]


class ExecutorKind(enum.Enum):
    COMMAND = "command"  # built in, one per command task, inside the agent
    DEFAULT = "default"  # built in, for task groups, inside the agent
    CUSTOM = "custom"  # the framework's own program, a real process


class ExecutorPhase(enum.Enum):
    REGISTERING = "REGISTERING"  # launched; (custom) has not subscribed yet
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"  # shutdown requested
    TERMINATED = "TERMINATED"  # its container has ended


class ExecutorRunner(Protocol):
    """The agent's handle on one executor, whichever kind."""

    def kill_task(self, task_id: str, kill_policy: mesos_pb2.KillPolicy | None) -> None: ...

    def shutdown(self) -> None: ...


@dataclass(eq=False)
class Executor:
    info: mesos_pb2.ExecutorInfo
    kind: ExecutorKind
    container_id: str
    directory: Path
    checkpoint: bool
    role: str = ""
    phase: ExecutorPhase = ExecutorPhase.REGISTERING
    # Tasks (and groups) waiting for a custom executor to subscribe.
    queued_tasks: dict[str, mesos_pb2.TaskInfo] = field(default_factory=dict)
    queued_groups: list[mesos_pb2.TaskGroupInfo] = field(default_factory=list)
    # Delivered, not terminal.
    launched_tasks: dict[str, mesos_pb2.Task] = field(default_factory=dict)
    # Terminal, final update not yet acknowledged by the scheduler.
    terminated_tasks: dict[str, mesos_pb2.Task] = field(default_factory=dict)
    completed_tasks: deque[mesos_pb2.Task] = field(default_factory=lambda: deque(maxlen=200))
    # TaskInfos of every task still known (launched or terminated), for checkpoints and
    # the executor's re-subscription.
    task_infos: dict[str, mesos_pb2.TaskInfo] = field(default_factory=dict)
    runner: ExecutorRunner | None = None
    # A custom executor's SUBSCRIBE stream, while connected.
    events: EventStream | None = None
    pid: int | None = None
    termination: Termination | None = None
    # Recovered after an agent restart, and (custom executors) not subscribed again yet.
    resubscription_pending: bool = False

    @property
    def id(self) -> str:
        return self.info.executor_id.value

    @property
    def framework_id(self) -> str:
        return self.info.framework_id.value

    def find_task(self, task_id: str) -> mesos_pb2.Task | None:
        return self.launched_tasks.get(task_id) or self.terminated_tasks.get(task_id)

    def has_task(self, task_id: str) -> bool:
        return (
            task_id in self.queued_tasks
            or task_id in self.launched_tasks
            or task_id in self.terminated_tasks
            or any(task_id == t.task_id.value for g in self.queued_groups for t in g.tasks)
        )

    @property
    def is_idle(self) -> bool:
        """No task left that needs it."""
        return not (self.queued_tasks or self.queued_groups or self.launched_tasks)


@dataclass(eq=False)
class Framework:
    info: mesos_pb2.FrameworkInfo
    executors: dict[str, Executor] = field(default_factory=dict)
    completed_executors: deque[Executor] = field(default_factory=lambda: deque(maxlen=150))
    terminating: bool = False

    @property
    def id(self) -> str:
        return self.info.id.value

    @property
    def checkpoint(self) -> bool:
        return self.info.checkpoint

    def has_capability(self, capability: mesos_pb2.FrameworkInfo.Capability.Type.ValueType) -> bool:
        return any(item.type == capability for item in self.info.capabilities)

    def executor_of_task(self, task_id: str) -> Executor | None:
        # A command task's executor has the task's id: no scan for the common case.
        executor = self.executors.get(task_id)
        if executor is not None and executor.has_task(task_id):
            return executor
        for executor in self.executors.values():
            if executor.has_task(task_id):
                return executor
        return None


def new_task(
    info: mesos_pb2.TaskInfo,
    framework: mesos_pb2.FrameworkInfo,
    agent_id: str,
    executor_id: str | None,
) -> mesos_pb2.Task:
    """The Task record of a TaskInfo (Mesos' `protobuf::createTask`), in TASK_STAGING."""
    task = mesos_pb2.Task(
        name=info.name,
        state=mesos_pb2.TaskState.TASK_STAGING,
    )
    task.task_id.CopyFrom(info.task_id)
    task.framework_id.CopyFrom(framework.id)
    task.agent_id.value = agent_id
    if executor_id is not None:
        task.executor_id.value = executor_id
    task.resources.extend(info.resources)
    for name in ("labels", "discovery", "container", "health_check", "kill_policy"):
        if info.HasField(name):
            getattr(task, name).CopyFrom(getattr(info, name))
    if info.HasField("command") and info.command.HasField("user"):
        task.user = info.command.user
    elif framework.HasField("user"):
        task.user = framework.user
    for key, value in info.limits.items():
        task.limits[key].CopyFrom(value)
    return task
