"""Task status updates the master generates itself.

They come from `SOURCE_MASTER`, carry no `uuid` (nobody acknowledges them; the master
does not retry them) and always name the agent when it is known.
"""

from __future__ import annotations

from typing import TypeAlias

from mesoslite.proto import mesos_pb2

__all__ = ["master_status", "task_snapshot_status"]

Reason: TypeAlias = mesos_pb2.TaskStatus.Reason.ValueType


def master_status(
    task_id: str,
    state: mesos_pb2.TaskState.ValueType,
    *,
    reason: Reason,
    message: str,
    timestamp: float,
    agent_id: str | None = None,
    executor_id: str | None = None,
) -> mesos_pb2.TaskStatus:
    status = mesos_pb2.TaskStatus(
        state=state,
        source=mesos_pb2.TaskStatus.SOURCE_MASTER,
        reason=reason,
        message=message,
        timestamp=timestamp,
    )
    status.task_id.value = task_id
    if agent_id:
        status.agent_id.value = agent_id
    if executor_id:
        status.executor_id.value = executor_id
    return status


def task_snapshot_status(
    task: mesos_pb2.Task,
    state: mesos_pb2.TaskState.ValueType,
    *,
    reason: Reason,
    message: str,
    timestamp: float,
) -> mesos_pb2.TaskStatus:
    """A master update about a known task, carrying what the task's latest status said
    about health, checks and its container (as Mesos' reconciliation answers do)."""
    status = master_status(
        task.task_id.value,
        state,
        reason=reason,
        message=message,
        timestamp=timestamp,
        agent_id=task.agent_id.value,
        executor_id=task.executor_id.value if task.HasField("executor_id") else None,
    )
    if task.statuses:
        latest = task.statuses[-1]
        if latest.HasField("healthy"):
            status.healthy = latest.healthy
        if latest.HasField("check_status"):
            status.check_status.CopyFrom(latest.check_status)
        if latest.HasField("container_status"):
            status.container_status.CopyFrom(latest.container_status)
    return status
