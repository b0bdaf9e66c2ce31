"""Tasks and executors: their bookkeeping, status updates, acknowledgements, kills and
reconciliation (wire contract 2.8-2.12).

Status updates are the hot path (every task produces several, each acknowledged): an
update costs a dict lookup, an append to the task's statuses and one event encoding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mesoslite.master.events import update_event
from mesoslite.master.master_updates import task_snapshot_status
from mesoslite.master.reconciliation import reconcile_tasks
from mesoslite.master.state import LAUNCHING_STATES, Agent, Framework
from mesoslite.master.task_state import (
    AgentStanding,
    is_terminal,
    next_state,
    state_for_framework,
)
from mesoslite.proto import internal_pb2, master_pb2, mesos_pb2, scheduler_pb2

if TYPE_CHECKING:
    from mesoslite.master.master import Master

__all__ = ["TaskTracker"]

log = logging.getLogger(__name__)

TaskStatus = mesos_pb2.TaskStatus
_CHECK_REASONS = frozenset(
    {
        TaskStatus.REASON_TASK_CHECK_STATUS_UPDATED,
        TaskStatus.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED,
    }
)

_OPERATION_STATES = {
    AgentStanding.UNREACHABLE: mesos_pb2.OPERATION_UNREACHABLE,
    AgentStanding.GONE: mesos_pb2.OPERATION_GONE_BY_OPERATOR,
    AgentStanding.RECOVERED: mesos_pb2.OPERATION_RECOVERING,
}


class TaskTracker:
    def __init__(self, master: Master) -> None:
        self._master = master

    # ------------------------------------------------------------------ tasks

    def add_task(
        self, framework: Framework, agent: Agent, task_info: mesos_pb2.TaskInfo
    ) -> mesos_pb2.Task:
        """A launched task enters TASK_STAGING (`protobuf::createTask`)."""
        task = mesos_pb2.Task(
            name=task_info.name,
            state=mesos_pb2.TASK_STAGING,
        )
        task.task_id.CopyFrom(task_info.task_id)
        task.framework_id.value = framework.id
        task.agent_id.value = agent.id
        task.resources.extend(task_info.resources)
        if task_info.HasField("executor"):
            task.executor_id.CopyFrom(task_info.executor.executor_id)
        for name in ("labels", "discovery", "container", "health_check", "kill_policy"):
            if task_info.HasField(name):
                getattr(task, name).CopyFrom(getattr(task_info, name))
        if task_info.command.HasField("user"):
            task.user = task_info.command.user
        elif task_info.executor.command.HasField("user"):
            task.user = task_info.executor.command.user
        for name, limit in task_info.limits.items():
            task.limits[name].CopyFrom(limit)
        framework.tasks[task.task_id.value] = task
        agent.add_task(task)
        self._master.offers.launched_on(agent)
        self._master.metrics.bump("tasks_launched")
        subscribers = self._master.operator_subscribers
        if subscribers:
            event = master_pb2.Event(type=master_pb2.Event.TASK_ADDED)
            event.task_added.task.CopyFrom(task)
            subscribers.broadcast(event)
        return task

    def update_task(
        self,
        task: mesos_pb2.Task,
        status: mesos_pb2.TaskStatus,
        latest_state: mesos_pb2.TaskState.ValueType | None = None,
    ) -> None:
        """Apply an update to the master's task (`Master::updateTask`); releases the
        task's resources when it first reaches a terminal state."""
        previous = task.state
        current = next_state(previous, latest_state if latest_state is not None else status.state)
        task.state = current
        if previous in LAUNCHING_STATES and current != previous:
            agent = self._master.state.agents.get(task.agent_id.value)
            if agent is not None:
                key = (task.framework_id.value, task.task_id.value)
                agent.staging.discard(key)
                if current not in LAUNCHING_STATES:
                    agent.launching.discard(key)
                self._master.offers.caught_up(agent)
        # Keep one status per state run (health checks repeat TASK_RUNNING), without
        # the framework's opaque data, which may be large.
        if task.statuses and task.statuses[-1].state == status.state:
            del task.statuses[-1]
        stored = task.statuses.add()
        stored.CopyFrom(status)
        stored.ClearField("data")
        if status.HasField("uuid"):
            task.status_update_state = status.state
            task.status_update_uuid = status.uuid
        subscribers = self._master.operator_subscribers
        if subscribers and (current != previous or status.reason in _CHECK_REASONS):
            event = master_pb2.Event(type=master_pb2.Event.TASK_UPDATED)
            event.task_updated.framework_id.CopyFrom(task.framework_id)
            event.task_updated.status.CopyFrom(stored)
            event.task_updated.state = current
            subscribers.broadcast(event)
        if not is_terminal(previous) and is_terminal(current):
            self._master.metrics.task_terminated(current)
            self._release(task.framework_id.value, task.agent_id.value, task.resources)

    def remove_task(self, task: mesos_pb2.Task, *, unreachable: bool = False) -> None:
        """Forget a task: into the framework's completed (or unreachable) tasks."""
        framework_id = task.framework_id.value
        task_id = task.task_id.value
        framework = self._master.state.frameworks.get(framework_id)
        if framework is not None and framework.tasks.pop(task_id, None) is not None:
            if unreachable:
                framework.add_unreachable_task(task)
            else:
                framework.completed_tasks.append(task)
        agent = self._master.state.agents.get(task.agent_id.value)
        if agent is not None:
            agent.remove_task(task)
            agent.killed_tasks.discard((framework_id, task_id))
            self._master.offers.caught_up(agent)

    def end_task(
        self,
        framework: Framework | None,
        task: mesos_pb2.Task,
        state: mesos_pb2.TaskState.ValueType,
        *,
        reason: TaskStatus.Reason.ValueType,
        message: str,
        forward: bool = True,
        unreachable: bool = False,
        unreachable_time: float | None = None,
    ) -> None:
        """The master decides a task's fate (agent lost, framework removed, ...): update
        it, forget it and tell the framework, with the state it understands."""
        partition_aware = framework.partition_aware if framework is not None else True
        status = task_snapshot_status(
            task,
            state_for_framework(state, partition_aware),
            reason=reason,
            message=message,
            timestamp=self._master.clock(),
        )
        if unreachable_time is not None:
            status.unreachable_time.nanoseconds = int(unreachable_time * 1e9)
        self.update_task(task, status)
        self.remove_task(task, unreachable=unreachable)
        if forward and framework is not None:
            self.forward(framework, status)

    # ------------------------------------------------------------------ executors

    def add_executor(
        self, framework: Framework, agent: Agent, executor: mesos_pb2.ExecutorInfo
    ) -> None:
        agent.add_executor(framework.id, executor)
        framework.add_executor(agent.id, executor)

    def remove_executor(self, framework_id: str, agent: Agent, executor_id: str) -> bool:
        """Forget an executor and give its resources back; False if it was unknown."""
        executor = agent.remove_executor(framework_id, executor_id)
        if executor is None:
            return False
        framework = self._master.state.frameworks.get(framework_id)
        if framework is not None:
            framework.remove_executor(agent.id, executor_id)
        self._release(framework_id, agent.id, executor.resources)
        return True

    def _release(
        self, framework_id: str, agent_id: str, resources: Sequence[mesos_pb2.Resource]
    ) -> None:
        master = self._master
        if not resources:
            return
        if agent_id not in master.state.agents:
            return  # the allocator already dropped the agent with everything on it
        if framework_id not in master.state.frameworks:
            return  # a removed framework's allocations went with it
        master.allocator.recover(
            framework_id, agent_id, resources, refuse_seconds=None, now=master.clock()
        )
        master.offers.request_allocation()

    # ------------------------------------------------------------------ status updates

    def handle_status_update(self, agent: Agent, update: internal_pb2.StatusUpdate) -> None:
        """An agent forwards an update (with a uuid to acknowledge)."""
        master = self._master
        status = update.status
        framework = master.state.frameworks.get(update.framework_id.value)
        if framework is None:
            # The agent retries; it stops once told the framework is gone.
            master.metrics.bump("invalid_status_updates")
            log.info(
                "ignoring update %s of task %s of unknown framework %s",
                mesos_pb2.TaskState.Name(status.state),
                status.task_id.value,
                update.framework_id.value,
            )
            return
        if not status.HasField("agent_id"):
            status.agent_id.value = agent.id
        if not status.HasField("timestamp"):
            status.timestamp = master.clock()
        task = agent.get_task(framework.id, status.task_id.value)
        if task is not None:
            if not status.HasField("executor_id") and task.HasField("executor_id"):
                status.executor_id.CopyFrom(task.executor_id)
            latest = update.latest_state if update.HasField("latest_state") else None
            self.update_task(task, status, latest)
            master.metrics.bump("valid_status_updates")
        else:
            # Still forwarded: the scheduler's acknowledgement lets the agent move on.
            master.metrics.bump("invalid_status_updates")
        self.forward(framework, status)

    def forward(self, framework: Framework, status: mesos_pb2.TaskStatus) -> None:
        """Send an UPDATE to the framework; dropped if it is not connected."""
        if framework.stream is None:
            self._master.metrics.bump("dropped_messages")
            return
        framework.stream.events.send(update_event(status))

    def acknowledge(self, framework: Framework, ack: scheduler_pb2.Call.Acknowledge) -> None:
        """ACKNOWLEDGE: completes the task on a terminal ack; always routed to the agent."""
        master = self._master
        agent = master.state.agents.get(ack.agent_id.value)
        if agent is None or agent.link is None:
            master.metrics.bump("invalid_status_update_acknowledgements")
            return
        task = agent.get_task(framework.id, ack.task_id.value)
        if task is not None:
            if not task.HasField("status_update_state"):
                # Not an update this master forwarded: the agent retries it.
                master.metrics.bump("invalid_status_update_acknowledgements")
                return
            if ack.uuid == task.status_update_uuid and is_terminal(task.status_update_state):
                self.remove_task(task)
        message = internal_pb2.MasterToAgent()
        body = message.status_update_acknowledgement
        body.agent_id.value = agent.id
        body.framework_id.value = framework.id
        body.task_id.CopyFrom(ack.task_id)
        body.uuid = ack.uuid
        agent.link.send(message)
        master.metrics.bump("valid_status_update_acknowledgements")

    # ------------------------------------------------------------------ kill, reconcile

    def kill(self, framework: Framework, kill: scheduler_pb2.Call.Kill) -> None:
        master = self._master
        task = framework.tasks.get(kill.task_id.value)
        if task is None:
            # Unknown task: answer as explicit reconciliation would.
            request = scheduler_pb2.Call.Reconcile.Task()
            request.task_id.CopyFrom(kill.task_id)
            if kill.HasField("agent_id"):
                request.agent_id.CopyFrom(kill.agent_id)
            self._answer_reconciliation(framework, [request])
            return
        if kill.HasField("agent_id") and kill.agent_id.value != task.agent_id.value:
            log.warning(
                "not killing task %s of framework %s: it runs on agent %s, not %s",
                task.task_id.value,
                framework.id,
                task.agent_id.value,
                kill.agent_id.value,
            )
            return
        agent = master.state.agents.get(task.agent_id.value)
        if agent is None:
            return
        # Remembered: the agent may not get it (disconnected); re-sent on re-registration.
        agent.killed_tasks.add((framework.id, task.task_id.value))
        self.send_kill(
            agent,
            framework.id,
            task.task_id,
            kill.kill_policy if kill.HasField("kill_policy") else None,
        )

    def send_kill(
        self,
        agent: Agent,
        framework_id: str,
        task_id: mesos_pb2.TaskID,
        kill_policy: mesos_pb2.KillPolicy | None = None,
    ) -> None:
        if agent.link is None:
            return
        message = internal_pb2.MasterToAgent()
        message.kill_task.framework_id.value = framework_id
        message.kill_task.task_id.CopyFrom(task_id)
        if kill_policy is not None:
            message.kill_task.kill_policy.CopyFrom(kill_policy)
        agent.link.send(message)

    def reconcile(self, framework: Framework, reconcile: scheduler_pb2.Call.Reconcile) -> None:
        self._answer_reconciliation(framework, list(reconcile.tasks))

    def _answer_reconciliation(
        self, framework: Framework, requested: list[scheduler_pb2.Call.Reconcile.Task]
    ) -> None:
        state = self._master.state
        answers = reconcile_tasks(
            framework,
            requested,
            agent_standing=self.agent_standing,
            unreachable_time=lambda agent_id: (
                state.unreachable_agents[agent_id].unreachable_time
                if agent_id in state.unreachable_agents
                else None
            ),
            any_recovered_agents=bool(state.recovered_agents),
            now=self._master.clock(),
        )
        for status in answers:
            self.forward(framework, status)

    def reconcile_operations(
        self, framework: Framework, reconcile: scheduler_pb2.Call.ReconcileOperations
    ) -> None:
        """No operation with feedback is ever pending here (none are supported yet):
        every named operation is unknown, unreachable or gone with its agent."""
        if framework.stream is None:
            return
        for requested in reconcile.operations:
            agent_id = requested.agent_id.value if requested.HasField("agent_id") else None
            standing = (
                self.agent_standing(agent_id) if agent_id is not None else AgentStanding.UNKNOWN
            )
            event = scheduler_pb2.Event(type=scheduler_pb2.Event.UPDATE_OPERATION_STATUS)
            status = event.update_operation_status.status
            status.operation_id.CopyFrom(requested.operation_id)
            status.state = _OPERATION_STATES.get(standing, mesos_pb2.OPERATION_UNKNOWN)
            status.message = "Reconciliation: operation is unknown"
            if agent_id is not None:
                status.agent_id.value = agent_id
            framework.stream.events.send(event)

    def agent_standing(self, agent_id: str) -> AgentStanding:
        state = self._master.state
        if agent_id in state.agents:
            return AgentStanding.REGISTERED
        if agent_id in state.recovered_agents:
            return AgentStanding.RECOVERED
        if agent_id in state.unreachable_agents:
            return AgentStanding.UNREACHABLE
        if agent_id in state.gone_agents:
            return AgentStanding.GONE
        return AgentStanding.UNKNOWN
