"""The built-in command executor, run inside the agent (Mesos' `src/launcher/executor.cpp`).

For a task with `command`: TASK_STARTING, launch the container (`sh -c value`, or
`value` with `arguments` when `shell` is false), TASK_RUNNING with the container
status, then the terminal state from the exit status: 0 -> TASK_FINISHED, killed ->
TASK_KILLED, else TASK_FAILED ("Command exited with status N"). KILL sends
TASK_KILLING when the framework understands it, SIGTERMs the container and SIGKILLs it
after the grace period. The agent supervises the container directly: there is no
executor process and no thread; one coroutine per task. After an agent restart,
`resume` takes the task's recovered container over where the previous agent left it.
"""

from __future__ import annotations

import logging
import time

import anyio
from anyio.abc import TaskGroup

from mesoslite.executor.context import ExecutorContext, new_status
from mesoslite.executor.kill import GracefulKill, kill_grace_period_s
from mesoslite.executor.outcome import task_outcome
from mesoslite.locks import FastLock
from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import Termination

__all__ = ["REAP_ALLOWANCE_S", "CommandExecutor"]

log = logging.getLogger(__name__)

_TS = mesos_pb2.TaskState
_Reason = mesos_pb2.TaskStatus
# Module constants: `_TS.X` goes through the enum wrapper's __getattr__ every time.
_STARTING, _RUNNING, _KILLING = (
    mesos_pb2.TASK_STARTING,
    mesos_pb2.TASK_RUNNING,
    mesos_pb2.TASK_KILLING,
)
_NOT_TERMINAL = frozenset({_STARTING, _RUNNING, _KILLING})

# Mesos shortens the task's kill grace on SHUTDOWN by its reap interval plus a second,
# so that the executor itself still fits in the executor's shutdown grace period.
REAP_ALLOWANCE_S = 2.0


class CommandExecutor:
    def __init__(self, context: ExecutorContext, task: mesos_pb2.TaskInfo) -> None:
        self._context = context
        self._task = task
        self._task_id = task.task_id.value
        self._kill = GracefulKill(context.containerizer, context.container_id)
        self._group: TaskGroup | None = None
        # Whether anything was started in `_group` (which must then be cancelled).
        self._background = False
        # Uncontended (the usual case) it is taken without a trip through the loop.
        self._send_lock = FastLock()
        self._state: mesos_pb2.TaskState.ValueType = _TS.TASK_STAGING
        self._terminal_sent = False
        self._kill_requested = False
        self._pending_kill_grace_s: float | None = None
        self._killing_sent = False
        self._completion_time_reached = False

    @property
    def task_id(self) -> str:
        return self._task_id

    # ------------------------------------------------------------------ agent -> executor

    def kill_task(self, task_id: str, kill_policy: mesos_pb2.KillPolicy | None) -> None:
        task_policy = self._task.kill_policy if self._task.HasField("kill_policy") else None
        grace_s = kill_grace_period_s(
            kill_policy, task_policy, default_s=self._context.default_kill_grace_period_s
        )
        self._request_kill(grace_s)

    def shutdown(self) -> None:
        self._request_kill(max(0.0, self._context.shutdown_grace_period_s - REAP_ALLOWANCE_S))

    def _request_kill(self, grace_s: float) -> None:
        self._kill_requested = True
        if self._group is None:
            # Not launched yet: run() sees the request before it starts the container.
            if self._pending_kill_grace_s is None or grace_s < self._pending_kill_grace_s:
                self._pending_kill_grace_s = grace_s
            return
        self._background = True
        self._group.start_soon(self._kill_sequence, grace_s)

    async def _kill_sequence(self, grace_s: float) -> None:
        if (
            not self._killing_sent
            and self._context.task_killing_state()
            and self._state in (_STARTING, _RUNNING)
        ):
            self._killing_sent = True
            await self._send(new_status(self._task_id, _TS.TASK_KILLING))
        assert self._group is not None
        self._kill.request(grace_s, self._group)

    # ------------------------------------------------------------------ lifecycle

    async def _send(self, status: mesos_pb2.TaskStatus) -> None:
        async with self._send_lock:
            if self._terminal_sent:
                return  # nothing may follow the terminal update
            self._state = status.state
            if status.state not in _NOT_TERMINAL:
                self._terminal_sent = True
            await self._context.send_update(status)

    async def run(self) -> Termination | None:
        """Run the task to its end; returns how its container ended (None when it was
        never started)."""
        if self._kill_requested:
            await self._send(
                new_status(
                    self._task_id,
                    _TS.TASK_KILLED,
                    source=_Reason.SOURCE_AGENT,
                    message="Task killed before it was launched",
                    reason=_Reason.REASON_TASK_KILLED_DURING_LAUNCH,
                )
            )
            return None
        await self._send(new_status(self._task_id, _STARTING))
        containerizer = self._context.containerizer
        container_id = self._context.container_id
        try:
            config = await self._context.prepare_task_container(self._task, container_id, None)
            await containerizer.launch(container_id, config)
        except Exception as exc:
            log.warning("task %s: container launch failed: %s", self._task_id, exc)
            await self._send(
                new_status(
                    self._task_id,
                    _TS.TASK_FAILED,
                    source=_Reason.SOURCE_AGENT,
                    message=f"Failed to launch container: {exc}",
                    reason=_Reason.REASON_CONTAINER_LAUNCH_FAILED,
                )
            )
            return None
        completion_in_s = None
        if self._task.HasField("max_completion_time"):
            completion_in_s = self._task.max_completion_time.nanoseconds / 1e9
        return await self._supervise(announce_running=True, completion_in_s=completion_in_s)

    async def resume(
        self, last_state: mesos_pb2.TaskState.ValueType, started_at_s: float | None
    ) -> Termination:
        """After an agent restart: the task's container was recovered (still running, or
        ended while the agent was down). Supervise it to its end as run() would have.
        `last_state` is the newest state the task had reported; `started_at_s` when its
        first update was taken (wall clock), for max_completion_time."""
        self._state = last_state
        if last_state == _TS.TASK_KILLING:
            # The kill was under way when the agent stopped: finish it.
            self._killing_sent = True
            self._request_kill(self._context.default_kill_grace_period_s)
        completion_in_s = None
        if self._task.HasField("max_completion_time"):
            completion_in_s = self._task.max_completion_time.nanoseconds / 1e9
            if started_at_s is not None:
                completion_in_s -= time.time() - started_at_s
        return await self._supervise(
            announce_running=last_state in (_TS.TASK_STAGING, _TS.TASK_STARTING),
            completion_in_s=completion_in_s,
        )

    async def _supervise(
        self, *, announce_running: bool, completion_in_s: float | None
    ) -> Termination:
        """From a launched container to the task's terminal update."""
        containerizer = self._context.containerizer
        container_id = self._context.container_id
        async with anyio.create_task_group() as group:
            self._group = group
            container_status = await _container_status(self._context)
            if announce_running:
                await self._send(
                    new_status(self._task_id, _RUNNING, container_status=container_status)
                )
            if self._pending_kill_grace_s is not None:
                self._background = True
                group.start_soon(self._kill_sequence, self._pending_kill_grace_s)
            if completion_in_s is not None:
                self._background = True
                group.start_soon(self._enforce_completion_time, completion_in_s)
            termination = await containerizer.wait(container_id)
            if self._background:
                # (A cancel costs a task repr in anyio: only when there is something.)
                group.cancel_scope.cancel()
        outcome = task_outcome(termination, killed=self._kill_requested)
        state, reason = outcome.state, outcome.reason
        if self._completion_time_reached and state != _TS.TASK_FINISHED:
            state, reason = _TS.TASK_FAILED, _Reason.REASON_MAX_COMPLETION_TIME_REACHED
        await self._send(
            new_status(
                self._task_id,
                state,
                message=outcome.message,
                reason=reason,
                container_status=container_status,
            )
        )
        return termination

    async def _enforce_completion_time(self, remaining_s: float) -> None:
        await anyio.sleep(max(0.0, remaining_s))
        self._completion_time_reached = True
        task_policy = self._task.kill_policy if self._task.HasField("kill_policy") else None
        self._request_kill(
            kill_grace_period_s(task_policy, default_s=self._context.default_kill_grace_period_s)
        )


async def _container_status(context: ExecutorContext) -> mesos_pb2.ContainerStatus:
    try:
        status = await context.containerizer.status(context.container_id)
    except Exception as exc:
        log.debug("no container status for %s: %s", context.container_id, exc)
        status = mesos_pb2.ContainerStatus()
    if not status.HasField("container_id"):
        status.container_id.value = context.container_id
    return status
