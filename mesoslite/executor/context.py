"""What the agent gives its built-in executors (command and default).

Mesos runs these as separate processes that talk to the agent over the executor API;
mesoslite runs them inside the agent (a command task costs no executor process), so the
executor API shrinks to this context: the containerizer to start task containers with,
a way to build a task's ContainerConfig, and the channel for status updates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mesoslite.executor.ids import new_uuid_bytes
from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig, Containerizer

__all__ = ["ExecutorContext", "new_status"]

# (task, container id, parent container id or None) -> the config to launch the task
# with; creates the task's sandbox on the way.
PrepareTaskContainer = Callable[[mesos_pb2.TaskInfo, str, str | None], Awaitable[ContainerConfig]]


@dataclass(frozen=True)
class ExecutorContext:
    executor_info: mesos_pb2.ExecutorInfo
    # The executor's own container (the command task's container; the parent of a
    # default executor's task containers).
    container_id: str
    containerizer: Containerizer
    prepare_task_container: PrepareTaskContainer
    # Delivers an update as the executor API's UPDATE call does (the agent fills
    # agent_id, executor_id, timestamp and hands it to the status update manager).
    send_update: Callable[[mesos_pb2.TaskStatus], Awaitable[None]]
    # Whether the framework (now) has the TASK_KILLING_STATE capability.
    task_killing_state: Callable[[], bool]
    default_kill_grace_period_s: float
    shutdown_grace_period_s: float


def new_status(
    task_id: str,
    state: mesos_pb2.TaskState.ValueType,
    *,
    source: mesos_pb2.TaskStatus.Source.ValueType = mesos_pb2.TaskStatus.SOURCE_EXECUTOR,
    message: str = "",
    reason: mesos_pb2.TaskStatus.Reason.ValueType | None = None,
    container_status: mesos_pb2.ContainerStatus | None = None,
) -> mesos_pb2.TaskStatus:
    """A fresh update with a random 16-byte uuid (every update must be acknowledged)."""
    status = mesos_pb2.TaskStatus(state=state, source=source, uuid=new_uuid_bytes())
    status.task_id.value = task_id
    if message:
        status.message = message
    if reason is not None:
        status.reason = reason
    if container_status is not None:
        status.container_status.CopyFrom(container_status)
    return status
