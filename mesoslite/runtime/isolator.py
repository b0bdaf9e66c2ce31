"""The Isolator seam and the ordered table of isolators a containerizer runs.

An isolator owns one aspect of a container (cpu accounting, a cgroup controller, a
namespace, volumes). The containerizer calls, per container:

    prepare (table order) -> [launcher starts the process] -> isolate(pid) (table order)
    -> watch for limitations / update / usage / status -> cleanup (reverse order)

`prepare` returns what the launched process needs (`LaunchInfo`): cgroups to join,
mounts, namespaces, environment additions. `cleanup` must tolerate containers it does
not know (a failed prepare, a recovered orphan).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.launch_types import Mount

__all__ = [
    "Isolator",
    "IsolatorBase",
    "IsolatorTable",
    "LaunchInfo",
    "Limitation",
    "Mount",
    "RecoveredContainer",
]


@dataclass(frozen=True)
class MountPoint:
    """A mount target every container with an image gets: `path` absolute in the
    container; a directory, or a file (a bind of a file). The provisioner may have it in
    place already (see provisioner/mount_points.py)."""

    path: str
    directory: bool = True


@dataclass
class LaunchInfo:
    """What the isolators ask of the launched process (merged in table order)."""

    environment: dict[str, str] = field(default_factory=dict)
    # Files the process writes its pid into before exec (cgroup.procs / tasks).
    cgroup_join_files: list[Path] = field(default_factory=list)
    # The same, joined last, right before the user switch and exec: the CPU quota's
    # cgroups, so that the container's own set-up (namespaces, mounts, pivot_root) is not
    # throttled by a small `cpus` (0.01 cpus is a 1 ms quota per 100 ms period).
    late_cgroup_join_files: list[Path] = field(default_factory=list)
    # Root filesystem to pivot into (None: the host's).
    rootfs: Path | None = None
    mounts: list[Mount] = field(default_factory=list)
    # CLONE_NEW* flags for namespaces the container gets of its own.
    namespaces: int = 0
    # CLONE_NEW* flags for namespaces of its parent a nested container joins (entered
    # before its own are made).
    enter_namespaces: int = 0
    # A nested container inside its parent's cgroups: `cgroup_join_files` are the
    # parent's, and the launcher tracks it in a cgroup below the parent's.
    shares_parent_cgroups: bool = False
    hostname: str | None = None
    # Working directory inside the container (None: the sandbox's host path).
    working_directory: str | None = None
    # Set the no_new_privs bit before exec (setuid binaries stop elevating).
    no_new_privileges: bool = False

    def merge(self, other: LaunchInfo) -> None:
        self.environment.update(other.environment)
        self.cgroup_join_files.extend(other.cgroup_join_files)
        self.late_cgroup_join_files.extend(other.late_cgroup_join_files)
        self.rootfs = other.rootfs if other.rootfs is not None else self.rootfs
        self.mounts.extend(other.mounts)
        self.namespaces |= other.namespaces
        self.enter_namespaces |= other.enter_namespaces
        self.shares_parent_cgroups |= other.shares_parent_cgroups
        self.hostname = other.hostname if other.hostname is not None else self.hostname
        if other.working_directory is not None:
            self.working_directory = other.working_directory
        self.no_new_privileges |= other.no_new_privileges


@dataclass(frozen=True)
class Limitation:
    """A limit the container hit; it ends the container with this reason."""

    reason: mesos_pb2.TaskStatus.Reason.ValueType
    message: str
    resources: tuple[mesos_pb2.Resource, ...] = ()


@dataclass(frozen=True)
class RecoveredContainer:
    """A checkpointed container found again after a restart."""

    container_id: str
    config: ContainerConfig
    pid: int | None


@runtime_checkable
class Isolator(Protocol):
    @property
    def name(self) -> str:
        """ "family/name", as in --isolation."""
        ...

    async def recover(self, containers: list[RecoveredContainer], orphans: set[str]) -> None: ...

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None: ...

    async def isolate(self, container_id: str, pid: int) -> None: ...

    async def limitation(self, container_id: str) -> Limitation | None:
        """Checked when the container's process has exited: did a limit end it?"""
        ...

    async def update(self, container_id: str, resources: list[mesos_pb2.Resource]) -> None: ...

    async def usage(self, container_id: str) -> mesos_pb2.ResourceStatistics:
        """A partial ResourceStatistics; the containerizer merges them (timestamp its own)."""
        ...

    async def status(self, container_id: str) -> mesos_pb2.ContainerStatus: ...

    async def cleanup(self, container_id: str) -> None: ...

    def image_mount_points(self) -> list[MountPoint]:
        """What it mounts on in every container with an image, for the provisioner to
        have in place (a shared layer with the overlay backend)."""
        ...


class IsolatorBase:
    """No-op defaults for every Isolator method; subclasses override what they own."""

    name = "base/none"

    async def recover(self, containers: list[RecoveredContainer], orphans: set[str]) -> None:
        return None

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        return None

    async def isolate(self, container_id: str, pid: int) -> None:
        return None

    async def limitation(self, container_id: str) -> Limitation | None:
        return None

    async def update(self, container_id: str, resources: list[mesos_pb2.Resource]) -> None:
        return None

    async def usage(self, container_id: str) -> mesos_pb2.ResourceStatistics:
        return mesos_pb2.ResourceStatistics()

    async def status(self, container_id: str) -> mesos_pb2.ContainerStatus:
        return mesos_pb2.ContainerStatus()

    async def cleanup(self, container_id: str) -> None:
        return None

    def image_mount_points(self) -> list[MountPoint]:
        return []


class IsolatorTable(Mapping[str, Isolator]):
    """Isolators by "family/name", in the order they run (cleanup runs reversed)."""

    def __init__(self, isolators: Iterable[Isolator] = ()) -> None:
        self._by_name: dict[str, Isolator] = {}
        for isolator in isolators:
            if isolator.name in self._by_name:
                raise ValueError(f"isolator {isolator.name!r} listed twice")
            self._by_name[isolator.name] = isolator

    def __getitem__(self, name: str) -> Isolator:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def in_order(self) -> list[Isolator]:
        return list(self._by_name.values())

    def in_reverse(self) -> list[Isolator]:
        return list(reversed(self._by_name.values()))
