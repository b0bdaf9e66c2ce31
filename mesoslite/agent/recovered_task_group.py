"""A default executor's tasks after an agent restart.

The default executor runs inside the agent, so it ends with it; its task containers
do not (for a checkpointing framework). A restarted agent supervises them with this
runner, by the default executor's rules: each task ends TASK_FINISHED, TASK_FAILED or
TASK_KILLED from its container's end; a task that fails or is killed takes the others
along, and so does a kill of any one of them. Which LAUNCH_GROUP a task came in is not
checkpointed, so every recovered task of the executor counts as one group. It takes
no new task groups (the agent refuses them); it ends when all its tasks are terminal,
and destroys the executor's own container (the pause its tasks nest in) then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup

from mesoslite.executor.command import REAP_ALLOWANCE_S
from mesoslite.executor.context import ExecutorContext, new_status
from mesoslite.executor.kill import GracefulKill, kill_grace_period_s
from mesoslite.executor.outcome import task_outcome
from mesoslite.proto import mesos_pb2

__all__ = ["RecoveredTask", "RecoveredTaskGroup"]

log = logging.getLogger(__name__)

_TS = mesos_pb2.TaskState
_Status = mesos_pb2.TaskStatus


@dataclass(eq=False)
class RecoveredTask:
    info: mesos_pb2.TaskInfo
    # Its container, if the restart found it (running, or ended while the agent was down).
    container_id: str | None
    # The newest state it had reported.
    state: mesos_pb2.TaskState.ValueType
    kill: GracefulKill | None = None
    kill_requested: bool = False
    terminal_sent: bool = False
    send_lock: anyio.Lock = field(default_factory=anyio.Lock)

    @property
    def task_id(self) -> str:
        return self.info.task_id.value


class RecoveredTaskGroup:
    def __init__(
        self, context: ExecutorContext, tasks: list[RecoveredTask], *, partition_aware: bool
    ) -> None:
        self._context = context
        self._partition_aware = partition_aware
        self._tasks = {task.task_id: task for task in tasks}
        self._group: TaskGroup | None = None
        self._shutting_down = False
        for task in tasks:
            if task.container_id is not None:
                task.kill = GracefulKill(context.containerizer, task.container_id)

    def task_container_ids(self) -> list[str]:
        return [
            task.container_id
            for task in self._tasks.values()
            if task.container_id is not None and not task.terminal_sent
        ]

    # ------------------------------------------------------------------ agent -> executor

    def kill_task(self, task_id: str, kill_policy: mesos_pb2.KillPolicy | None) -> None:
        if task_id not in self._tasks:
            return
        for task in self._tasks.values():
            self._kill(task, kill_policy if task.task_id == task_id else None)

    def shutdown(self) -> None:
        self._shutting_down = True
        grace_s = max(0.0, self._context.shutdown_grace_period_s - REAP_ALLOWANCE_S)
        for task in self._tasks.values():
            self._kill(task, None, grace_override_s=grace_s)

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Supervise every recovered task; returns when all of them are terminal."""
        async with anyio.create_task_group() as group:
            self._group = group
            async with anyio.create_task_group() as supervisors:
                for task in self._tasks.values():
                    supervisors.start_soon(self._supervise, task)
                for task in self._tasks.values():
                    if task.kill_requested or task.state == _TS.TASK_KILLING:
                        # Requested before run() started, or under way when the agent stopped.
                        self._kill(task, None)
            # Pending SIGKILL escalations are moot once every container has ended.
            group.cancel_scope.cancel()
        self._group = None
        try:
            await self._context.containerizer.destroy(self._context.container_id)
        except Exception as exc:  # there may be none (no pause program), or it ended
            log.debug("destroying executor container %s: %s", self._context.container_id, exc)

    async def _supervise(self, task: RecoveredTask) -> None:
        containerizer = self._context.containerizer
        if task.container_id is None:
            await self._send(task, _lost_status(task, partition_aware=self._partition_aware))
            return
        container_status = mesos_pb2.ContainerStatus()
        container_status.container_id.value = task.container_id
        container_status.container_id.parent.value = self._context.container_id
        if task.state in (_TS.TASK_STAGING, _TS.TASK_STARTING):
            await self._send(
                task, new_status(task.task_id, _TS.TASK_RUNNING, container_status=container_status)
            )
        termination = await containerizer.wait(task.container_id)
        outcome = task_outcome(termination, killed=task.kill_requested)
        await self._send(
            task,
            new_status(
                task.task_id,
                outcome.state,
                message=outcome.message,
                reason=outcome.reason,
                container_status=container_status,
            ),
        )
        try:
            await containerizer.destroy(task.container_id)
        except Exception as exc:
            log.debug("destroying nested container %s: %s", task.container_id, exc)
        if outcome.state in (_TS.TASK_FAILED, _TS.TASK_KILLED) and not self._shutting_down:
            for member in self._tasks.values():
                self._kill(member, None)

    def _kill(
        self,
        task: RecoveredTask,
        kill_policy: mesos_pb2.KillPolicy | None,
        *,
        grace_override_s: float | None = None,
    ) -> None:
        if task.terminal_sent:
            return
        task.kill_requested = True
        if task.kill is None or self._group is None:
            return  # run() starts the kill (or the task has no container to kill)
        if grace_override_s is not None:
            grace_s = grace_override_s
        else:
            task_policy = task.info.kill_policy if task.info.HasField("kill_policy") else None
            grace_s = kill_grace_period_s(
                kill_policy, task_policy, default_s=self._context.default_kill_grace_period_s
            )
        self._group.start_soon(self._kill_sequence, task, grace_s)

    async def _kill_sequence(self, task: RecoveredTask, grace_s: float) -> None:
        if self._context.task_killing_state() and task.state in (
            _TS.TASK_STARTING,
            _TS.TASK_RUNNING,
        ):
            await self._send(task, new_status(task.task_id, _TS.TASK_KILLING))
        if self._group is not None and task.kill is not None and not task.terminal_sent:
            task.kill.request(grace_s, self._group)

    async def _send(self, task: RecoveredTask, status: mesos_pb2.TaskStatus) -> None:
        async with task.send_lock:
            if task.terminal_sent:
                return
            task.state = status.state
            if status.state not in (_TS.TASK_STARTING, _TS.TASK_RUNNING, _TS.TASK_KILLING):
                task.terminal_sent = True
            await self._context.send_update(status)


def _lost_status(task: RecoveredTask, *, partition_aware: bool) -> mesos_pb2.TaskStatus:
    """A task whose container the restart did not find."""
    if task.state == _TS.TASK_STAGING:
        return new_status(
            task.task_id,
            _TS.TASK_DROPPED if partition_aware else _TS.TASK_LOST,
            source=_Status.SOURCE_AGENT,
            message="The agent restarted before the task was launched",
            reason=_Status.REASON_AGENT_RESTARTED,
        )
    return new_status(
        task.task_id,
        _TS.TASK_FAILED,
        source=_Status.SOURCE_AGENT,
        message="The task's container ended while the agent was down; its exit status is unknown",
        reason=_Status.REASON_EXECUTOR_TERMINATED,
    )
