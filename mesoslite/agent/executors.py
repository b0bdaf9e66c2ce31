"""Executors that are real processes (ExecutorInfo type CUSTOM, or unset with a command).

The agent starts the executor's command in its own container (own session, so that
pymesos' `killpg(0)` on shutdown only hits the executor), with the environment of
spec 3.3, and waits for it to SUBSCRIBE through the executor API within the
registration timeout. SHUTDOWN is sent as an event; the container is destroyed once the
shutdown grace period has passed. After an agent restart a recovered executor is
supervised again (`resume`) and must SUBSCRIBE within the re-registration timeout.
Also here: the ExecutorInfo Mesos synthesises for a command task, and how to tell it
from the others.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from mesoslite.agent import checkpoints
from mesoslite.agent.durations import format_duration
from mesoslite.agent.environment import command_environment
from mesoslite.agent.launch_config import (
    executor_base_environment,
    shutdown_grace_period_s,
    task_user,
)
from mesoslite.agent.state import Executor, Framework
from mesoslite.proto import executor_pb2, mesos_pb2
from mesoslite.runtime.api import ContainerConfig, Termination

if TYPE_CHECKING:
    from mesoslite.agent.agent import Agent

__all__ = ["CustomExecutorRunner", "command_executor_info", "is_command_executor"]

log = logging.getLogger(__name__)

_Event = executor_pb2.Event

# Mesos adds its reap interval and a second to a command task's kill grace period to
# get the command executor's shutdown grace period.
_COMMAND_EXECUTOR_EXTRA_GRACE_NS = 2_000_000_000
_COMMAND_EXECUTOR_BINARY = "mesos-executor"
_COMMAND_EXECUTOR_NAME = "Command Executor (Task: "


def _command_label(command: mesos_pb2.CommandInfo) -> str:
    if command.shell:
        if not command.HasField("value"):
            return "(Command: NO COMMAND)"
        value = command.value
        shown = value[:12] + "..." if len(value) > 15 else value
        return f"(Command: sh -c '{shown}')"
    if not command.HasField("value"):
        return "(Command: NO EXECUTABLE)"
    args = ", ".join([command.value, *command.arguments])
    shown = args[:12] + "..." if len(args) > 15 else args
    return f"(Command: [{shown}])"


def command_executor_info(
    framework: mesos_pb2.FrameworkInfo, task: mesos_pb2.TaskInfo
) -> mesos_pb2.ExecutorInfo:
    """The ExecutorInfo of a command task's executor (Mesos' `getExecutorInfo`)."""
    info = mesos_pb2.ExecutorInfo(
        name=f"{_COMMAND_EXECUTOR_NAME}{task.task_id.value}) {_command_label(task.command)}",
        source=task.task_id.value,
    )
    info.executor_id.value = task.task_id.value
    info.framework_id.CopyFrom(framework.id)
    if task.HasField("container"):
        info.container.CopyFrom(task.container)
    command = info.command
    command.shell = False
    command.value = _COMMAND_EXECUTOR_BINARY
    command.arguments.append(_COMMAND_EXECUTOR_BINARY)
    command.uris.extend(task.command.uris)
    if task.command.HasField("environment"):
        command.environment.CopyFrom(task.command.environment)
    if task.command.HasField("user"):
        command.user = task.command.user
    if task.HasField("kill_policy") and task.kill_policy.HasField("grace_period"):
        info.shutdown_grace_period.nanoseconds = (
            task.kill_policy.grace_period.nanoseconds + _COMMAND_EXECUTOR_EXTRA_GRACE_NS
        )
    return info


def is_command_executor(info: mesos_pb2.ExecutorInfo) -> bool:
    """Whether `info` is one `command_executor_info` made (checkpoints keep only the
    ExecutorInfo: this is how a restart tells a command task's executor again)."""
    return (
        info.command.value == _COMMAND_EXECUTOR_BINARY
        and info.executor_id.value == info.source
        and info.name.startswith(_COMMAND_EXECUTOR_NAME)
    )


class CustomExecutorRunner:
    def __init__(self, agent: Agent, framework: Framework, executor: Executor) -> None:
        self._agent = agent
        self._framework = framework
        self._executor = executor
        self.subscribed = anyio.Event()
        self._group: TaskGroup | None = None
        self._shutdown_requested = False
        self._subscription_timed_out = False

    # ------------------------------------------------------------------ agent -> executor

    def kill_task(self, task_id: str, kill_policy: mesos_pb2.KillPolicy | None) -> None:
        events = self._executor.events
        if events is None:
            return
        kill = _Event.Kill(kill_policy=kill_policy)
        kill.task_id.value = task_id
        events.send(_Event(type=_Event.KILL, kill=kill))

    def shutdown(self) -> None:
        if self._shutdown_requested:
            return
        self._shutdown_requested = True
        if self._executor.events is not None:
            self._executor.events.send(_Event(type=_Event.SHUTDOWN))
        if self._group is not None:
            self._group.start_soon(self._destroy_after_grace)

    # ------------------------------------------------------------------ lifecycle

    def _container_config(self) -> ContainerConfig:
        info = self._executor.info
        base = executor_base_environment(
            self._agent, self._framework, self._executor, self._executor.directory
        )
        return ContainerConfig(
            command=info.command,
            sandbox=self._executor.directory,
            environment=command_environment(base, info.command),
            resources=list(info.resources),
            container_info=info.container if info.HasField("container") else None,
            user=task_user(self._framework.info, info.command),
            checkpoint=self._executor.checkpoint,
        )

    async def run(self) -> Termination:
        """Start the executor and supervise it until its container ends."""
        if self._shutdown_requested:
            return Termination(wait_status=None, message="Executor shut down before launch")
        executor = self._executor
        containerizer = self._agent.containerizer
        executor.pid = await containerizer.launch(executor.container_id, self._container_config())
        if executor.checkpoint and self._agent.agent_id is not None:
            await anyio.to_thread.run_sync(self._checkpoint_pid, self._agent.agent_id, executor.pid)
        timeout_s = self._agent.config.executor_registration_timeout_s
        return await self._supervise(
            timeout_s,
            mesos_pb2.TaskStatus.REASON_EXECUTOR_REGISTRATION_TIMEOUT,
            f"Executor did not register within {format_duration(timeout_s)}",
        )

    async def resume(self) -> Termination:
        """After an agent restart: the executor's container was recovered. It has
        `executor_reregistration_timeout` to SUBSCRIBE again, or it is destroyed."""
        executor = self._executor
        try:
            status = await self._agent.containerizer.status(executor.container_id)
            executor.pid = status.executor_pid
        except Exception as exc:  # it may have ended while the agent was down
            log.debug("no status for executor container %s: %s", executor.container_id, exc)
        timeout_s = self._agent.config.executor_reregistration_timeout_s
        return await self._supervise(
            timeout_s,
            mesos_pb2.TaskStatus.REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
            f"Executor did not re-register within {format_duration(timeout_s)}",
        )

    async def _supervise(
        self,
        subscription_timeout_s: float,
        timeout_reason: mesos_pb2.TaskStatus.Reason.ValueType,
        timeout_message: str,
    ) -> Termination:
        """Until the container ends; destroyed if the executor does not SUBSCRIBE in time."""
        container_id = self._executor.container_id
        async with anyio.create_task_group() as group:
            self._group = group
            group.start_soon(self._subscription_deadline, subscription_timeout_s)
            group.start_soon(self._heartbeats)
            if self._shutdown_requested:
                group.start_soon(self._destroy_after_grace)
            termination = await self._agent.containerizer.wait(container_id)
            group.cancel_scope.cancel()
        self._group = None
        if self._subscription_timed_out and termination.state is None:
            return Termination(
                wait_status=termination.wait_status,
                state=mesos_pb2.TASK_FAILED,
                reason=timeout_reason,
                message=timeout_message,
            )
        return termination

    def _checkpoint_pid(self, agent_id: str, pid: int) -> None:
        executor = self._executor
        layout = self._agent.layout
        args = (layout, agent_id, self._framework.id, executor.id, executor.container_id)
        checkpoints.write_forked_pid(*args, pid)
        checkpoints.write_http_marker(*args)

    async def _subscription_deadline(self, timeout_s: float) -> None:
        with anyio.move_on_after(timeout_s):
            await self.subscribed.wait()
            return
        log.warning(
            "executor %s did not subscribe in time; destroying its container", self._executor.id
        )
        self._subscription_timed_out = True
        await self._destroy()

    async def _heartbeats(self) -> None:
        interval_s = self._agent.config.executor_heartbeat_interval_s
        while True:
            await anyio.sleep(interval_s)
            if self._executor.events is not None:
                self._executor.events.send(_Event(type=_Event.HEARTBEAT))

    async def _destroy_after_grace(self) -> None:
        await anyio.sleep(shutdown_grace_period_s(self._agent.config, self._executor.info))
        await self._destroy()

    async def _destroy(self) -> None:
        try:
            await self._agent.containerizer.destroy(self._executor.container_id)
        except Exception as exc:
            log.debug("destroying executor container %s: %s", self._executor.container_id, exc)
