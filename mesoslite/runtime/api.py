"""What the agent asks of the containerizer: the seam between `agent/` and `runtime/`.

The agent describes a container with `ContainerConfig`; the containerizer provisions,
isolates, launches and supervises it and reports a `Termination` when it ends. The
agent never forks task processes itself.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mesoslite.proto import mesos_pb2

if TYPE_CHECKING:
    from mesoslite.runtime.io_switchboard import IOSwitchboard

__all__ = [
    "ContainerClass",
    "ContainerConfig",
    "ContainerState",
    "Containerizer",
    "Termination",
]


class ContainerClass(enum.Enum):
    """Mesos' ContainerClass. A DEBUG container (LAUNCH_NESTED_CONTAINER_SESSION, what
    `task exec` starts) joins everything of its parent: namespaces, cgroups, root
    filesystem, environment and working directory; its I/O goes through a switchboard
    that waits for its first client."""

    DEFAULT = "DEFAULT"
    DEBUG = "DEBUG"


@dataclass(frozen=True)
class ContainerConfig:
    """Everything needed to start one container (an executor's, or a nested one)."""

    # The command to run: `shell` True runs `sh -c value`; else exec `value` with `arguments`
    # (argv[0] first, as CommandInfo says).
    command: mesos_pb2.CommandInfo
    # Host path of the sandbox; becomes the working directory, holds stdout/stderr.
    sandbox: Path
    # The full environment of the process (the agent computes it; section 3.3).
    environment: dict[str, str]
    # Resources allocated to the container (cpus, mem, ... as mesos.v1.Resource).
    resources: list[mesos_pb2.Resource] = field(default_factory=list)
    # Optional: image, volumes, networks, tty, linux_info.
    container_info: mesos_pb2.ContainerInfo | None = None
    # Run as this user (None: as the agent's user).
    user: str | None = None
    # For nested containers: the parent container id value (shares its namespaces).
    parent_id: str | None = None
    # Keep the container (its supervision) alive across agent restarts.
    checkpoint: bool = False
    # Set by the containerizer once the image is provisioned (agents leave it None):
    # the host directory that becomes the container's `/`. A nested container without
    # an image of its own gets its parent's.
    rootfs: Path | None = None
    container_class: ContainerClass = ContainerClass.DEFAULT
    # Run no command but a tiny program that only holds the container's namespaces and
    # cgroups for its nested containers (the in-agent default executor's container).
    pause: bool = False
    # Set by the containerizer for a nested container: the pid of its parent's main
    # process (whose namespaces it joins).
    parent_pid: int | None = None


class ContainerState:
    PROVISIONING = "PROVISIONING"
    PREPARING = "PREPARING"
    ISOLATING = "ISOLATING"
    FETCHING = "FETCHING"
    RUNNING = "RUNNING"
    DESTROYING = "DESTROYING"


@dataclass(frozen=True)
class Termination:
    """How a container ended."""

    # Raw wait status (as os.waitpid returns it), None if unknown (e.g. recovered orphan).
    wait_status: int | None
    # Set when the containerizer ended it for a reason (limitation, launch failure).
    state: mesos_pb2.TaskState.ValueType | None = None
    reason: mesos_pb2.TaskStatus.Reason.ValueType | None = None
    message: str = ""


class Containerizer(Protocol):
    async def recover(self, known_ids: set[str]) -> set[str]:
        """Re-attach to checkpointed containers whose id is in `known_ids`; destroy the
        rest as orphans. Returns the ids recovered (still running or with a recorded exit)."""
        ...

    async def launch(self, container_id: str, config: ContainerConfig) -> int:
        """Start the container; returns the pid of its main process."""
        ...

    async def wait(self, container_id: str) -> Termination:
        """Block until the container has ended (returns at once if it already has)."""
        ...

    async def kill(self, container_id: str, signal_number: int) -> None:
        """Signal every process of the container (its process group / cgroup)."""
        ...

    async def destroy(self, container_id: str) -> Termination:
        """Kill everything, clean up isolators (reverse order); returns the termination."""
        ...

    async def usage(self, container_id: str) -> mesos_pb2.ResourceStatistics:
        """Current usage figures for /monitor/statistics and GET_CONTAINERS."""
        ...

    async def status(self, container_id: str) -> mesos_pb2.ContainerStatus:
        """ContainerStatus for TaskStatus.container_status (executor_pid, network_infos)."""
        ...

    async def update(self, container_id: str, resources: list[mesos_pb2.Resource]) -> None:
        """Apply new resource limits."""
        ...

    async def prune_images(self, excluded_images: list[mesos_pb2.Image]) -> None:
        """Forget every image no container uses (but `excluded_images`) and delete the
        layers nothing needs any more (PRUNE_IMAGES)."""
        ...

    def switchboard(self, container_id: str) -> IOSwitchboard | None:
        """The container's I/O switchboard (sessions and containers with a TTY have
        one), or None."""
        ...

    def containers(self) -> list[str]:
        """Ids of the containers it currently knows."""
        ...
