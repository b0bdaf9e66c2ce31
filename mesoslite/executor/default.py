"""The built-in default executor for task groups, run inside the agent
(Mesos' `src/launcher/default_executor.cpp`).

Each task of a LAUNCH_GROUP runs in its own nested container (id: a fresh uuid whose
parent is the executor's container) with TASK_STARTING, TASK_RUNNING and a terminal
update. Group semantics: when a task ends TASK_FAILED or TASK_KILLED, or one task of a
group is killed, every other task of that group is killed too. More groups may arrive
while it runs. It ends when every task it was given is terminal.

The executor itself has no process, so its container runs the pause program: that
container holds the namespaces and cgroups its tasks join (as a Mesos default
executor's tasks join its own), with the executor's resources plus those of its live
tasks as limits. It is destroyed when the executor ends.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup

from mesoslite.executor.command import REAP_ALLOWANCE_S
from mesoslite.executor.context import ExecutorContext, new_status
from mesoslite.executor.ids import new_uuid
from mesoslite.executor.kill import GracefulKill, kill_grace_period_s
from mesoslite.executor.outcome import task_outcome
from mesoslite.proto import mesos_pb2
from mesoslite.runtime.pause import pause_program_bytes

__all__ = ["DefaultExecutor"]

log = logging.getLogger(__name__)

_TS = mesos_pb2.TaskState
_Status = mesos_pb2.TaskStatus


@dataclass(eq=False)
class _GroupTask:
    info: mesos_pb2.TaskInfo
    group: int
    container_id: str
    kill: GracefulKill
    state: mesos_pb2.TaskState.ValueType = _TS.TASK_STAGING
    launched: bool = False
    kill_requested: bool = False
    killing_sent: bool = False
    terminal_sent: bool = False
    send_lock: anyio.Lock = field(default_factory=anyio.Lock)

    @property
    def task_id(self) -> str:
        return self.info.task_id.value


class DefaultExecutor:
    def __init__(self, context: ExecutorContext) -> None:
        self._context = context
        self._tasks: dict[str, _GroupTask] = {}
        self._groups: list[list[_GroupTask]] = []
        self._pending_groups: list[mesos_pb2.TaskGroupInfo] = []
        self._group: TaskGroup | None = None
        self._shutting_down = False
        self._killed_early: set[str] = set()
        self._changed = anyio.Event()
        self._executor_container = False

    def task_container_ids(self) -> list[str]:
        """The nested containers of tasks that are (being) launched and not yet done."""
        return [
            task.container_id
            for task in self._tasks.values()
            if task.launched and not task.terminal_sent
        ]

    # ------------------------------------------------------------------ agent -> executor

    def launch_group(self, task_group: mesos_pb2.TaskGroupInfo) -> None:
        if self._group is None:
            self._pending_groups.append(task_group)
        else:
            self._start_group(task_group, self._group)
        self._changed.set()

    def kill_task(self, task_id: str, kill_policy: mesos_pb2.KillPolicy | None) -> None:
        task = self._tasks.get(task_id)
        if task is None:
            # A group not started yet: all of it is reported killed during launch.
            for pending in self._pending_groups:
                ids = [info.task_id.value for info in pending.tasks]
                if task_id in ids:
                    self._killed_early.update(ids)
            return
        # Killing one task of a group kills the whole group (its policy for that task).
        for member in self._groups[task.group]:
            policy = kill_policy if member is task else None
            self._kill_task(member, policy)

    def shutdown(self) -> None:
        self._shutting_down = True
        grace_s = max(0.0, self._context.shutdown_grace_period_s - REAP_ALLOWANCE_S)
        for task in self._tasks.values():
            self._kill_task(task, None, grace_override_s=grace_s)
        self._changed.set()

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Supervise every task given to it; returns when all of them are terminal."""
        try:
            await self._launch_executor_container()
            async with anyio.create_task_group() as group:
                self._group = group
                pending, self._pending_groups = self._pending_groups, []
                for task_group in pending:
                    self._start_group(task_group, group)
                while not self._all_terminal():
                    self._changed = anyio.Event()
                    await self._changed.wait()
                # Pending SIGKILL escalations are moot once every container has ended.
                group.cancel_scope.cancel()
        finally:
            self._group = None
            with anyio.CancelScope(shield=True):
                await self._destroy_executor_container()

    # ------------------------------------------------------------------ its container

    def _executor_container_task(self) -> mesos_pb2.TaskInfo:
        """The executor's container described as a task of its own, so that the agent
        builds its config as for a command task's container (the executor's sandbox,
        environment, user and checkpointing) with the executor's resources."""
        info = self._context.executor_info
        task = mesos_pb2.TaskInfo(name=info.name or info.executor_id.value)
        task.task_id.value = info.executor_id.value
        task.resources.extend(info.resources)
        if info.HasField("container"):
            task.container.CopyFrom(info.container)
        return task

    async def _launch_executor_container(self) -> None:
        if pause_program_bytes() is None:
            log.info("no pause program for this machine: tasks run without a shared container")
            return
        container_id = self._context.container_id
        config = await self._context.prepare_task_container(
            self._executor_container_task(), container_id, None
        )
        await self._context.containerizer.launch(
            container_id, dataclasses.replace(config, pause=True)
        )
        self._executor_container = True

    async def _destroy_executor_container(self) -> None:
        if not self._executor_container:
            return
        self._executor_container = False
        try:
            await self._context.containerizer.destroy(self._context.container_id)
        except Exception as exc:
            log.debug("destroying executor container %s: %s", self._context.container_id, exc)

    async def _update_executor_resources(self) -> None:
        """Its container's limits: the executor's resources and its live tasks'."""
        if not self._executor_container:
            return
        resources = list(self._context.executor_info.resources)
        for task in self._tasks.values():
            if not task.terminal_sent:
                resources.extend(task.info.resources)
        try:
            await self._context.containerizer.update(self._context.container_id, resources)
        except Exception as exc:
            log.warning("updating executor container %s: %s", self._context.container_id, exc)

    def _all_terminal(self) -> bool:
        return not self._pending_groups and all(task.terminal_sent for task in self._tasks.values())

    def _register_group(self, task_group: mesos_pb2.TaskGroupInfo) -> list[_GroupTask]:
        index = len(self._groups)
        members = []
        for info in task_group.tasks:
            container_id = new_uuid()
            task = _GroupTask(
                info=info,
                group=index,
                container_id=container_id,
                kill=GracefulKill(self._context.containerizer, container_id),
                kill_requested=self._shutting_down or info.task_id.value in self._killed_early,
            )
            self._tasks[task.task_id] = task
            members.append(task)
        self._groups.append(members)
        return members

    def _start_group(self, task_group: mesos_pb2.TaskGroupInfo, group: TaskGroup) -> None:
        members = self._register_group(task_group)
        group.start_soon(self._run_group, members)

    def _container_status(self, task: _GroupTask) -> mesos_pb2.ContainerStatus:
        status = mesos_pb2.ContainerStatus()
        status.container_id.value = task.container_id
        status.container_id.parent.value = self._context.container_id
        return status

    async def _run_group(self, members: list[_GroupTask]) -> None:
        for task in members:
            if task.kill_requested:
                await self._report_killed_during_launch(task)
            else:
                starting = new_status(
                    task.task_id, _TS.TASK_STARTING, container_status=self._container_status(task)
                )
                await self._send(task, starting)
        await self._update_executor_resources()
        # Launch all, then report RUNNING, as Mesos does; one failure fails the group.
        failure: str | None = None
        for task in members:
            if task.kill_requested or failure is not None:
                continue
            try:
                config = await self._context.prepare_task_container(
                    task.info, task.container_id, self._context.container_id
                )
                await self._context.containerizer.launch(task.container_id, config)
                task.launched = True
                if task.kill_requested:  # the kill arrived while it was starting
                    self._kill_task(task, None)
            except Exception as exc:
                log.warning("task %s: nested container launch failed: %s", task.task_id, exc)
                failure = f"Failed to launch container: {exc}"
        if failure is not None:
            for task in members:
                if task.launched:
                    self._kill_task(task, None, grace_override_s=0.0)
                else:
                    await self._send(
                        task,
                        new_status(
                            task.task_id,
                            _TS.TASK_FAILED,
                            source=_Status.SOURCE_AGENT,
                            message=failure,
                            reason=_Status.REASON_CONTAINER_LAUNCH_FAILED,
                        ),
                    )
        async with anyio.create_task_group() as supervisors:
            for task in members:
                if task.launched:
                    supervisors.start_soon(self._supervise, task)
                elif not task.terminal_sent:
                    await self._report_killed_during_launch(task)

    async def _supervise(self, task: _GroupTask) -> None:
        containerizer = self._context.containerizer
        try:
            container_status = await containerizer.status(task.container_id)
        except Exception:
            container_status = mesos_pb2.ContainerStatus()
        # Reported as nested under the executor's container, whether or not the
        # containerizer tracks that parent.
        container_status.container_id.CopyFrom(self._container_status(task).container_id)
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
        await self._update_executor_resources()
        if outcome.state in (_TS.TASK_FAILED, _TS.TASK_KILLED) and not self._shutting_down:
            for member in self._groups[task.group]:
                self._kill_task(member, None)

    async def _report_killed_during_launch(self, task: _GroupTask) -> None:
        await self._send(
            task,
            new_status(
                task.task_id,
                _TS.TASK_KILLED,
                source=_Status.SOURCE_AGENT,
                message="Task killed before it was launched",
                reason=_Status.REASON_TASK_KILLED_DURING_LAUNCH,
            ),
        )

    def _kill_task(
        self,
        task: _GroupTask,
        kill_policy: mesos_pb2.KillPolicy | None,
        *,
        grace_override_s: float | None = None,
    ) -> None:
        if task.terminal_sent:
            return
        task.kill_requested = True
        if not task.launched or self._group is None:
            return  # _run_group reports it killed during launch
        if grace_override_s is not None:
            grace_s = grace_override_s
        else:
            task_policy = task.info.kill_policy if task.info.HasField("kill_policy") else None
            grace_s = kill_grace_period_s(
                kill_policy, task_policy, default_s=self._context.default_kill_grace_period_s
            )
        self._group.start_soon(self._kill_sequence, task, grace_s)

    async def _kill_sequence(self, task: _GroupTask, grace_s: float) -> None:
        if (
            not task.killing_sent
            and self._context.task_killing_state()
            and task.state in (_TS.TASK_STARTING, _TS.TASK_RUNNING)
        ):
            task.killing_sent = True
            await self._send(task, new_status(task.task_id, _TS.TASK_KILLING))
        if self._group is not None and not task.terminal_sent:
            task.kill.request(grace_s, self._group)

    async def _send(self, task: _GroupTask, status: mesos_pb2.TaskStatus) -> None:
        async with task.send_lock:
            if task.terminal_sent:
                return
            task.state = status.state
            if status.state not in (_TS.TASK_STARTING, _TS.TASK_RUNNING, _TS.TASK_KILLING):
                task.terminal_sent = True
                self._changed.set()
            await self._context.send_update(status)
