"""The pure task state machine."""

from __future__ import annotations

import pytest

from mesoslite.master.task_state import (
    PARTITION_AWARE_STATES,
    TERMINAL_STATES,
    AgentStanding,
    is_terminal,
    next_state,
    state_for_framework,
    state_metric_name,
    unknown_task_answer,
)
from mesoslite.proto import mesos_pb2

ALL_STATES = list(mesos_pb2.TaskState.values())


def test_terminal_states_are_mesos_ones() -> None:
    names = {mesos_pb2.TaskState.Name(s) for s in TERMINAL_STATES}
    assert names == {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_LOST",
        "TASK_ERROR",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
    }
    for state in (
        mesos_pb2.TASK_STAGING,
        mesos_pb2.TASK_STARTING,
        mesos_pb2.TASK_RUNNING,
        mesos_pb2.TASK_KILLING,
        mesos_pb2.TASK_UNREACHABLE,
        mesos_pb2.TASK_UNKNOWN,
    ):
        assert not is_terminal(state)


@pytest.mark.parametrize("state", ALL_STATES)
def test_non_partition_aware_frameworks_see_lost(state: int) -> None:
    shown = state_for_framework(state, partition_aware=False)  # type: ignore[arg-type]
    if state in PARTITION_AWARE_STATES:
        assert shown == mesos_pb2.TASK_LOST
    else:
        assert shown == state
    assert state_for_framework(state, partition_aware=True) == state  # type: ignore[arg-type]


@pytest.mark.parametrize("current", ALL_STATES)
@pytest.mark.parametrize("reported", ALL_STATES)
def test_terminal_is_final(current: int, reported: int) -> None:
    result = next_state(current, reported)  # type: ignore[arg-type]
    assert result == (current if current in TERMINAL_STATES else reported)


@pytest.mark.parametrize(
    ("standing", "aware", "unaware"),
    [
        (AgentStanding.REGISTERED, mesos_pb2.TASK_GONE, mesos_pb2.TASK_LOST),
        (AgentStanding.UNREACHABLE, mesos_pb2.TASK_UNREACHABLE, mesos_pb2.TASK_LOST),
        (AgentStanding.GONE, mesos_pb2.TASK_GONE_BY_OPERATOR, mesos_pb2.TASK_LOST),
        (AgentStanding.UNKNOWN, mesos_pb2.TASK_UNKNOWN, mesos_pb2.TASK_LOST),
        (AgentStanding.RECOVERED, None, None),
    ],
)
def test_unknown_task_answers(
    standing: AgentStanding, aware: int | None, unaware: int | None
) -> None:
    assert unknown_task_answer(standing, partition_aware=True) == aware
    assert unknown_task_answer(standing, partition_aware=False) == unaware


def test_metric_names() -> None:
    assert state_metric_name(mesos_pb2.TASK_RUNNING) == "tasks_running"
    assert state_metric_name(mesos_pb2.TASK_GONE_BY_OPERATOR) == "tasks_gone_by_operator"
