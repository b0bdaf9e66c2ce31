"""Reconciliation answers (wire contract 2.11) from the pure function."""

from __future__ import annotations

import pytest

from mesoslite.master.reconciliation import reconcile_tasks
from mesoslite.master.state import Framework
from mesoslite.master.task_state import AgentStanding
from mesoslite.proto import mesos_pb2, scheduler_pb2

NOW = 1000.0
STANDINGS = {
    "registered": AgentStanding.REGISTERED,
    "unreachable": AgentStanding.UNREACHABLE,
    "gone": AgentStanding.GONE,
}


def framework(partition_aware: bool) -> Framework:
    info = mesos_pb2.FrameworkInfo(user="u", name="n")
    info.id.value = "f"
    if partition_aware:
        info.capabilities.add(type=mesos_pb2.FrameworkInfo.Capability.PARTITION_AWARE)
    return Framework(info, registered_time=0, max_completed_tasks=5, max_unreachable_tasks=5)


def known_task(fw: Framework, task_id: str, state: int, in_flight: int | None = None) -> None:
    task = mesos_pb2.Task(name=task_id, state=state)  # type: ignore[arg-type]
    task.task_id.value = task_id
    task.framework_id.value = fw.id
    task.agent_id.value = "registered"
    status = task.statuses.add(state=state, healthy=True)  # type: ignore[arg-type]
    status.task_id.value = task_id
    if in_flight is not None:
        task.status_update_state = in_flight  # type: ignore[assignment]
    fw.tasks[task_id] = task


def request(task_id: str, agent_id: str | None = None) -> scheduler_pb2.Call.Reconcile.Task:
    entry = scheduler_pb2.Call.Reconcile.Task()
    entry.task_id.value = task_id
    if agent_id is not None:
        entry.agent_id.value = agent_id
    return entry


def answer(
    fw: Framework, *requests: scheduler_pb2.Call.Reconcile.Task, recovered: bool = False
) -> list[mesos_pb2.TaskStatus]:
    return reconcile_tasks(
        fw,
        requests,
        agent_standing=lambda agent_id: STANDINGS.get(agent_id, AgentStanding.UNKNOWN),
        unreachable_time=lambda agent_id: 900.0 if agent_id == "unreachable" else None,
        any_recovered_agents=recovered,
        now=NOW,
    )


def test_implicit_answers_every_task_with_the_in_flight_state() -> None:
    fw = framework(partition_aware=False)
    known_task(fw, "a", mesos_pb2.TASK_FINISHED, in_flight=mesos_pb2.TASK_RUNNING)
    known_task(fw, "b", mesos_pb2.TASK_STAGING)
    statuses = {s.task_id.value: s for s in answer(fw)}
    assert statuses["a"].state == mesos_pb2.TASK_RUNNING
    assert statuses["b"].state == mesos_pb2.TASK_STAGING
    for status in statuses.values():
        assert status.reason == mesos_pb2.TaskStatus.REASON_RECONCILIATION
        assert status.source == mesos_pb2.TaskStatus.SOURCE_MASTER
        assert status.message == "Reconciliation: Latest task state"
        assert status.agent_id.value == "registered"
        assert status.healthy
        assert not status.HasField("uuid")


@pytest.mark.parametrize(
    ("agent_id", "aware", "unaware"),
    [
        ("registered", mesos_pb2.TASK_GONE, mesos_pb2.TASK_LOST),
        ("unreachable", mesos_pb2.TASK_UNREACHABLE, mesos_pb2.TASK_LOST),
        ("gone", mesos_pb2.TASK_GONE_BY_OPERATOR, mesos_pb2.TASK_LOST),
        ("who", mesos_pb2.TASK_UNKNOWN, mesos_pb2.TASK_LOST),
        (None, mesos_pb2.TASK_UNKNOWN, mesos_pb2.TASK_LOST),
    ],
)
def test_explicit_unknown_tasks(agent_id: str | None, aware: int, unaware: int) -> None:
    [status] = answer(framework(True), request("x", agent_id))
    assert status.state == aware
    [status] = answer(framework(False), request("x", agent_id))
    assert status.state == unaware
    if agent_id == "unreachable":
        assert status.unreachable_time.nanoseconds == 900 * 10**9


def test_explicit_known_task_gets_latest_state() -> None:
    fw = framework(True)
    known_task(fw, "a", mesos_pb2.TASK_RUNNING)
    [status] = answer(fw, request("a"))
    assert status.state == mesos_pb2.TASK_RUNNING


def test_no_answer_while_agents_may_still_reregister() -> None:
    assert answer(framework(True), request("x"), recovered=True) == []
