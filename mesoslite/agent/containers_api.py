"""The agent API's container calls: LAUNCH_CONTAINER, WAIT_CONTAINER, KILL_CONTAINER,
REMOVE_CONTAINER and their deprecated *_NESTED_CONTAINER forms.

A container id with a parent is nested under that container (an executor's, a task's,
or one launched here before); the whole parent chain names its sandbox, as in Mesos:
`<root sandbox>/containers/<child>/containers/<grandchild>`. One without is a
standalone container with its sandbox under `<work_dir>/containers/`. The
containerizer refuses a nested container whose parent is not running (400).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from mesoslite.agent.environment import command_environment
from mesoslite.agent.sandbox import create_sandbox
from mesoslite.proto import agent_pb2, mesos_pb2
from mesoslite.runtime.api import ContainerClass, ContainerConfig, Termination
from mesoslite.runtime.errors import UnsupportedContainerError
from mesoslite.wire.errors import HttpError

if TYPE_CHECKING:
    from mesoslite.agent.agent import Agent

__all__ = ["ContainerCalls", "LaunchOutcome", "describe_container_id"]


@dataclass(frozen=True)
class _Launched:
    sandbox: Path
    parent: str | None


class LaunchOutcome:
    LAUNCHED = 200
    ALREADY_LAUNCHED = 202


def describe_container_id(container_id: mesos_pb2.ContainerID) -> str:
    """Mesos' `stringify(ContainerID)`: the chain from the root, joined by dots."""
    values = [container_id.value]
    link = container_id
    while link.HasField("parent"):
        link = link.parent
        values.append(link.value)
    return ".".join(reversed(values))


class ContainerCalls:
    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self._launched: dict[str, _Launched] = {}

    def _known(self, container_id: str) -> bool:
        return container_id in self._launched or container_id in self._executor_sandboxes()

    def _executor_sandboxes(self) -> dict[str, Path]:
        sandboxes = {}
        for framework in self._agent.frameworks.values():
            for executor in framework.executors.values():
                sandboxes[executor.container_id] = executor.directory
        return sandboxes

    def sandbox_of(self, container_id: mesos_pb2.ContainerID) -> Path | None:
        """Where a container's sandbox is (None: no such root container here)."""
        if container_id.HasField("parent"):
            parent_sandbox = self.sandbox_of(container_id.parent)
            if parent_sandbox is None:
                return None
            return self._agent.layout.nested_dir(parent_sandbox, container_id.value)
        launched = self._launched.get(container_id.value)
        if launched is not None:
            return launched.sandbox
        return self._executor_sandboxes().get(container_id.value)

    async def launch(
        self,
        container_id: mesos_pb2.ContainerID,
        command: mesos_pb2.CommandInfo | None,
        container: mesos_pb2.ContainerInfo | None,
        resources: list[mesos_pb2.Resource],
        *,
        container_class: ContainerClass = ContainerClass.DEFAULT,
    ) -> int:
        """Returns the HTTP status: 200 launched, 202 when it already exists."""
        agent = self._agent
        value = container_id.value
        if not value:
            raise HttpError(400, "Expecting 'container_id.value' to be present")
        if self._known(value) or value in agent.containerizer.containers():
            return LaunchOutcome.ALREADY_LAUNCHED
        if command is None and (container is None or not container.mesos.HasField("image")):
            raise HttpError(400, "Expecting 'command' to be present")
        parent = container_id.parent if container_id.HasField("parent") else None
        if parent is not None:
            parent_sandbox = self.sandbox_of(parent)
            if parent_sandbox is None:
                raise HttpError(400, f"Parent container {parent.value} does not exist")
            sandbox = agent.layout.nested_dir(parent_sandbox, value)
        else:
            sandbox = agent.config.work_dir / "containers" / value
        await anyio.to_thread.run_sync(lambda: create_sandbox(sandbox, latest_link=False))
        command = command if command is not None else mesos_pb2.CommandInfo()
        if container_class is ContainerClass.DEBUG:
            # A DEBUG container inherits its parent's environment (the containerizer
            # adds it); only the command's own variables come on top.
            base: dict[str, str] = {}
        else:
            if agent.config.executor_environment_variables is not None:
                base = dict(agent.config.executor_environment_variables)
            else:
                base = dict(os.environ)
            base["MESOS_SANDBOX"] = str(sandbox)
        config = ContainerConfig(
            command=command,
            sandbox=sandbox,
            environment=command_environment(base, command),
            resources=resources,
            container_info=container,
            user=command.user if command.HasField("user") and os.geteuid() == 0 else None,
            parent_id=parent.value if parent is not None else None,
            container_class=container_class,
        )
        self._launched[value] = _Launched(sandbox, parent.value if parent is not None else None)
        try:
            await agent.containerizer.launch(value, config)
        except UnsupportedContainerError:
            del self._launched[value]
            raise HttpError(400, "The provided ContainerInfo is not supported") from None
        except Exception as exc:
            del self._launched[value]
            raise HttpError(400, str(exc)) from None
        return LaunchOutcome.LAUNCHED

    async def wait(self, container_id: mesos_pb2.ContainerID) -> agent_pb2.Response.WaitContainer:
        termination = await self._wait(container_id)
        result = agent_pb2.Response.WaitContainer()
        if termination.wait_status is not None:
            result.exit_status = termination.wait_status
        if termination.state is not None:
            result.state = termination.state
        if termination.reason is not None:
            result.reason = termination.reason
        if termination.message:
            result.message = termination.message
        return result

    async def _wait(self, container_id: mesos_pb2.ContainerID) -> Termination:
        try:
            return await self._agent.containerizer.wait(container_id.value)
        except Exception:
            name = describe_container_id(container_id)
            raise HttpError(404, f"Container {name} cannot be found") from None

    async def kill(self, container_id: mesos_pb2.ContainerID, signal_number: int | None) -> None:
        value = container_id.value
        if value not in self._agent.containerizer.containers():
            name = describe_container_id(container_id)
            raise HttpError(404, f"Container '{name}' cannot be found (or is already killed)")
        try:
            await self._agent.containerizer.kill(value, signal_number or signal.SIGKILL)
        except Exception:
            name = describe_container_id(container_id)
            raise HttpError(
                404, f"Container '{name}' cannot be found (or is already killed)"
            ) from None

    async def remove(self, container_id: mesos_pb2.ContainerID) -> None:
        value = container_id.value
        if value in self._agent.containerizer.containers():
            name = describe_container_id(container_id)
            raise HttpError(400, f"Container {name} is still running")
        with contextlib.suppress(Exception):  # already forgotten: removing is idempotent
            await self._agent.containerizer.destroy(value)
        launched = self._launched.pop(value, None)
        if launched is not None:
            await anyio.to_thread.run_sync(
                lambda: shutil.rmtree(launched.sandbox, ignore_errors=True)
            )
