"""The task state machine as the master sees it (wire contract 2.8, 2.11): pure functions.

The master never invents transitions beyond these: it takes agent and executor updates
as they come (ignoring state changes after a terminal state), generates a few updates of
its own, and shows non-partition-aware frameworks TASK_LOST wherever a partition-aware
one would see one of the newer states.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

from mesoslite.proto import mesos_pb2

__all__ = [
    "PARTITION_AWARE_STATES",
    "TERMINAL_STATES",
    "AgentStanding",
    "TaskStateValue",
    "is_terminal",
    "next_state",
    "state_for_framework",
    "state_metric_name",
    "unknown_task_answer",
]

TaskStateValue: TypeAlias = mesos_pb2.TaskState.ValueType

TERMINAL_STATES: frozenset[TaskStateValue] = frozenset(
    {
        mesos_pb2.TASK_FINISHED,
        mesos_pb2.TASK_FAILED,
        mesos_pb2.TASK_KILLED,
        mesos_pb2.TASK_LOST,
        mesos_pb2.TASK_ERROR,
        mesos_pb2.TASK_DROPPED,
        mesos_pb2.TASK_GONE,
        mesos_pb2.TASK_GONE_BY_OPERATOR,
    }
)

# States only PARTITION_AWARE frameworks may see; the others get TASK_LOST instead.
PARTITION_AWARE_STATES: frozenset[TaskStateValue] = frozenset(
    {
        mesos_pb2.TASK_UNREACHABLE,
        mesos_pb2.TASK_DROPPED,
        mesos_pb2.TASK_GONE,
        mesos_pb2.TASK_GONE_BY_OPERATOR,
        mesos_pb2.TASK_UNKNOWN,
    }
)


def is_terminal(state: TaskStateValue) -> bool:
    return state in TERMINAL_STATES


def state_for_framework(state: TaskStateValue, partition_aware: bool) -> TaskStateValue:
    """The state a framework is shown, given whether it is PARTITION_AWARE."""
    if not partition_aware and state in PARTITION_AWARE_STATES:
        return mesos_pb2.TASK_LOST
    return state


def next_state(current: TaskStateValue, reported: TaskStateValue) -> TaskStateValue:
    """The task's state after an update reporting `reported`: a terminal state is
    final (later updates are still forwarded and acknowledged, but change nothing)."""
    if is_terminal(current):
        return current
    return reported


class AgentStanding(enum.Enum):
    """What the master knows of the agent a reconciled task is said to be on."""

    REGISTERED = "registered"
    # Known from before a master failover, not yet re-registered: no answer possible.
    RECOVERED = "recovered"
    UNREACHABLE = "unreachable"
    GONE = "gone"
    UNKNOWN = "unknown"


_UNKNOWN_TASK_STATES: dict[AgentStanding, TaskStateValue] = {
    AgentStanding.REGISTERED: mesos_pb2.TASK_GONE,
    AgentStanding.UNREACHABLE: mesos_pb2.TASK_UNREACHABLE,
    AgentStanding.GONE: mesos_pb2.TASK_GONE_BY_OPERATOR,
    AgentStanding.UNKNOWN: mesos_pb2.TASK_UNKNOWN,
}


def unknown_task_answer(standing: AgentStanding, partition_aware: bool) -> TaskStateValue | None:
    """Explicit reconciliation of a task the master does not know: the state to
    answer with, or None when the master must stay silent (the agent may still
    re-register with it)."""
    if standing is AgentStanding.RECOVERED:
        return None
    return state_for_framework(_UNKNOWN_TASK_STATES[standing], partition_aware)


def state_metric_name(state: TaskStateValue) -> str:
    """`TASK_RUNNING` -> `tasks_running` (the master's metric names)."""
    return "tasks_" + mesos_pb2.TaskState.Name(state).removeprefix("TASK_").lower()
