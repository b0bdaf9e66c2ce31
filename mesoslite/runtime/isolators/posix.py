"""posix/cpu and posix/mem: accounting from /proc over the container's session.

They enforce nothing (that takes cgroups); they report usage and the limits the
resources name. A process that starts its own session escapes them.
"""

from __future__ import annotations

import time

import anyio

from mesoslite.proto import mesos_pb2
from mesoslite.runtime import procfs
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.isolator import IsolatorBase, LaunchInfo, RecoveredContainer
from mesoslite.runtime.limits import ResourceLimits

__all__ = ["PosixCpuIsolator", "PosixMemIsolator"]


class _SessionTracker(IsolatorBase):
    """Remembers each container's session leader pid and its resource limits."""

    def __init__(self) -> None:
        self._sessions: dict[str, int] = {}
        self._limits: dict[str, ResourceLimits] = {}

    async def recover(self, containers: list[RecoveredContainer], orphans: set[str]) -> None:
        for container in containers:
            self._limits[container.container_id] = ResourceLimits.from_resources(
                container.config.resources
            )
            if container.pid is not None:
                self._sessions[container.container_id] = container.pid

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        self._limits[container_id] = ResourceLimits.from_resources(config.resources)
        return None

    async def isolate(self, container_id: str, pid: int) -> None:
        self._sessions[container_id] = pid

    async def update(self, container_id: str, resources: list[mesos_pb2.Resource]) -> None:
        self._limits[container_id] = ResourceLimits.from_resources(resources)

    async def cleanup(self, container_id: str) -> None:
        self._sessions.pop(container_id, None)
        self._limits.pop(container_id, None)

    async def _members(self, container_id: str) -> list[procfs.ProcessSample]:
        session = self._sessions.get(container_id)
        if session is None:
            return []
        return await anyio.to_thread.run_sync(procfs.session_members, session)

    def limits(self, container_id: str) -> ResourceLimits:
        return self._limits.get(container_id, ResourceLimits(cpus=None, mem_bytes=None))


class PosixCpuIsolator(_SessionTracker):
    name = "posix/cpu"

    async def usage(self, container_id: str) -> mesos_pb2.ResourceStatistics:
        members = await self._members(container_id)
        ticks = procfs.clock_ticks_per_second()
        statistics = mesos_pb2.ResourceStatistics(timestamp=time.time())
        statistics.cpus_user_time_secs = sum(m.user_ticks for m in members) / ticks
        statistics.cpus_system_time_secs = sum(m.system_ticks for m in members) / ticks
        statistics.processes = len(members)
        statistics.threads = sum(m.threads for m in members)
        cpus = self.limits(container_id).cpus
        if cpus is not None:
            statistics.cpus_limit = cpus
        return statistics


class PosixMemIsolator(_SessionTracker):
    name = "posix/mem"

    async def usage(self, container_id: str) -> mesos_pb2.ResourceStatistics:
        members = await self._members(container_id)
        statistics = mesos_pb2.ResourceStatistics(timestamp=time.time())
        statistics.mem_rss_bytes = sum(m.rss_pages for m in members) * procfs.page_size_bytes()
        mem_bytes = self.limits(container_id).mem_bytes
        if mem_bytes is not None:
            statistics.mem_limit_bytes = mem_bytes
        return statistics
