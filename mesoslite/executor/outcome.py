"""How a task container's end maps to a terminal task state (Mesos' executors)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import Termination
from mesoslite.runtime.exits import describe_wait_status

__all__ = ["TaskOutcome", "task_outcome"]

_TS = mesos_pb2.TaskState


@dataclass(frozen=True)
class TaskOutcome:
    state: mesos_pb2.TaskState.ValueType
    message: str
    reason: mesos_pb2.TaskStatus.Reason.ValueType | None = None


def task_outcome(termination: Termination, *, killed: bool) -> TaskOutcome:
    """Exit 0 is TASK_FINISHED (even after a kill, as in Mesos); otherwise a requested
    kill is TASK_KILLED and anything else TASK_FAILED. A containerizer verdict (memory
    limit, launch failure) wins over the exit status."""
    message = describe_wait_status(termination.wait_status)
    if termination.state is not None:
        return TaskOutcome(termination.state, termination.message or message, termination.reason)
    status = termination.wait_status
    if status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return TaskOutcome(_TS.TASK_FINISHED, message)
    if killed:
        return TaskOutcome(_TS.TASK_KILLED, message)
    return TaskOutcome(_TS.TASK_FAILED, message)
