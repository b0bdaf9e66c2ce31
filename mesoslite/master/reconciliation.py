"""Task reconciliation answers (wire contract 2.11, `Master::reconcile`): pure.

Implicit reconciliation (no tasks named) answers with every task the master knows for
the framework; explicit reconciliation answers for each named task, also for tasks the
master does not know, from what it knows about the agent the task was said to be on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mesoslite.master.master_updates import master_status, task_snapshot_status
from mesoslite.master.state import Framework
from mesoslite.master.task_state import AgentStanding, unknown_task_answer
from mesoslite.proto import mesos_pb2, scheduler_pb2

__all__ = ["reconcile_tasks"]

REASON_RECONCILIATION = mesos_pb2.TaskStatus.REASON_RECONCILIATION

_UNKNOWN_TASK_MESSAGES = {
    AgentStanding.REGISTERED: "Reconciliation: Task is unknown to the agent",
    AgentStanding.UNREACHABLE: "Reconciliation: Task is unreachable",
    AgentStanding.GONE: "Reconciliation: Task is gone",
    AgentStanding.UNKNOWN: "Reconciliation: Task is unknown",
}


def reconcile_tasks(
    framework: Framework,
    requested: Iterable[scheduler_pb2.Call.Reconcile.Task],
    *,
    agent_standing: Callable[[str], AgentStanding],
    unreachable_time: Callable[[str], float | None],
    any_recovered_agents: bool,
    now: float,
) -> list[mesos_pb2.TaskStatus]:
    """The updates answering a RECONCILE call (none of them needs acknowledging).

    agent_standing(agent_id): what the master knows about that agent.
    unreachable_time(agent_id): when that agent was marked unreachable, if it is.
    any_recovered_agents: some agent from before a master failover has not re-registered
    yet (then a task named without an agent gets no answer).
    """
    requested = list(requested)
    if not requested:
        return [_latest_state(task, now) for task in framework.tasks.values()]

    answers: list[mesos_pb2.TaskStatus] = []
    for request in requested:
        task_id = request.task_id.value
        agent_id = request.agent_id.value if request.HasField("agent_id") else None
        task = framework.tasks.get(task_id)
        if task is not None:
            answers.append(_latest_state(task, now))
            continue
        unreachable_task = framework.unreachable_tasks.get(task_id)
        if agent_id is None and unreachable_task is not None:
            agent_id = unreachable_task.agent_id.value
        if agent_id is None:
            if any_recovered_agents:
                continue
            standing = AgentStanding.UNKNOWN
        else:
            standing = agent_standing(agent_id)
        state = unknown_task_answer(standing, framework.partition_aware)
        if state is None:
            continue
        status = master_status(
            task_id,
            state,
            reason=REASON_RECONCILIATION,
            message=_UNKNOWN_TASK_MESSAGES[standing],
            timestamp=now,
            agent_id=agent_id,
        )
        if standing is AgentStanding.UNREACHABLE and agent_id is not None:
            marked = unreachable_time(agent_id)
            if marked is not None:
                status.unreachable_time.nanoseconds = int(marked * 1e9)
        answers.append(status)
    return answers


def _latest_state(task: mesos_pb2.Task, now: float) -> mesos_pb2.TaskStatus:
    # The state of the update in flight, if any: the framework has not seen newer ones.
    state = task.status_update_state if task.HasField("status_update_state") else task.state
    return task_snapshot_status(
        task,
        state,
        reason=REASON_RECONCILIATION,
        message="Reconciliation: Latest task state",
        timestamp=now,
    )
