"""How the agent starts a container for a task or an executor: sandbox, environment,
user, resources (the ContainerConfig handed to the containerizer)."""

from __future__ import annotations

import functools
import os
import pwd
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from mesoslite.agent.config import AgentConfig
from mesoslite.agent.environment import (
    ExecutorEnvironment,
    command_environment,
    executor_environment,
)
from mesoslite.agent.sandbox import create_sandbox
from mesoslite.agent.state import Executor, Framework
from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig

if TYPE_CHECKING:
    from mesoslite.agent.agent import Agent

__all__ = [
    "executor_base_environment",
    "shutdown_grace_period_s",
    "task_container_config",
    "task_user",
]


def shutdown_grace_period_s(config: AgentConfig, info: mesos_pb2.ExecutorInfo) -> float:
    """ExecutorInfo.shutdown_grace_period, else the agent's flag."""
    if info.HasField("shutdown_grace_period"):
        return max(0.0, info.shutdown_grace_period.nanoseconds / 1e9)
    return config.executor_shutdown_grace_period_s


@functools.cache
def _agent_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return ""


def task_user(framework: mesos_pb2.FrameworkInfo, command: mesos_pb2.CommandInfo) -> str | None:
    """Mesos' --switch_user: only an agent running as root runs tasks as their user
    (None: as the agent's own user, also when that is the user asked for)."""
    if os.geteuid() != 0:
        return None
    user = command.user if command.HasField("user") else framework.user
    if not user or user == _agent_user():
        return None
    return user


def executor_base_environment(
    agent: Agent, framework: Framework, executor: Executor, sandbox: Path
) -> dict[str, str]:
    """Spec 3.3's environment for a process of this executor with this sandbox."""
    has_image = executor.info.container.mesos.HasField("image")
    spec = ExecutorEnvironment(
        framework_id=framework.id,
        executor_id=executor.id,
        agent_id=agent.agent_id or "",
        directory=str(sandbox),
        sandbox=agent.config.sandbox_directory if has_image else str(sandbox),
        endpoint=agent.endpoint,
        checkpoint=executor.checkpoint,
        shutdown_grace_period_s=shutdown_grace_period_s(agent.config, executor.info),
    )
    return executor_environment(agent.config, spec)


def _role_of(resources: Iterable[mesos_pb2.Resource]) -> str:
    for resource in resources:
        if resource.HasField("allocation_info") and resource.allocation_info.role:
            return resource.allocation_info.role
    return "*"


def _create_task_sandbox(sandbox: Path, executor_directory: Path, task_id: str) -> None:
    create_sandbox(sandbox, latest_link=False)
    # The default executor's `tasks/<task id>` link, as in Mesos.
    tasks_dir = executor_directory / "tasks"
    tasks_dir.mkdir(exist_ok=True)
    link = tasks_dir / task_id
    if not link.is_symlink():
        link.symlink_to(Path("..") / "containers" / sandbox.name)


async def task_container_config(
    agent: Agent,
    framework: Framework,
    executor: Executor,
    task: mesos_pb2.TaskInfo,
    container_id: str,
    parent_id: str | None,
) -> ContainerConfig:
    """A built-in executor's task: in the executor's own container (command tasks) or
    nested under it (task groups), with its sandbox created on the way."""
    if parent_id is None:
        sandbox = executor.directory
    else:
        sandbox = agent.layout.nested_dir(executor.directory, container_id)
        await anyio.to_thread.run_sync(
            _create_task_sandbox, sandbox, executor.directory, task.task_id.value
        )
    base = executor_base_environment(agent, framework, executor, sandbox)
    base["MESOS_ALLOCATION_ROLE"] = executor.role or _role_of(task.resources)
    known = agent.containerizer.containers()
    return ContainerConfig(
        command=task.command,
        sandbox=sandbox,
        environment=command_environment(base, task.command),
        resources=list(task.resources),
        container_info=task.container if task.HasField("container") else None,
        user=task_user(framework.info, task.command),
        parent_id=parent_id if parent_id in known else None,
        checkpoint=executor.checkpoint,
    )
