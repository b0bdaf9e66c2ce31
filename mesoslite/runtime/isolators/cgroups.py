"""cgroups/cpu, cgroups/mem, cgroups/pids, cgroups/devices: limits enforced by the kernel.

Each container gets "<root name>/<container id>" in the hierarchies of its controllers
(v1, hybrid) or one directory of the unified hierarchy (v2). prepare() creates it and
hands the launcher the files to write to join it before exec; cleanup() removes it.
All cgroupfs access runs in worker threads. A nested container that shares its parent's
cgroups (LinuxInfo.share_cgroups, the default) joins the parent's and gets none of its
own: its usage is its parent's.

cgroups/devices is v1 only (hybrid included): v2 controls devices with an eBPF program
attached to the cgroup (BPF_PROG_TYPE_CGROUP_DEVICE), which would need a hand-assembled
program loaded through bpf(2); on v2 the isolator refuses to start rather than pretend.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

import anyio

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.cgroups.manager import CgroupManager
from mesoslite.runtime.cgroups.naming import DEFAULT_CGROUPS_ROOT_NAME, container_cgroup
from mesoslite.runtime.isolator import IsolatorBase, LaunchInfo, Limitation, RecoveredContainer
from mesoslite.runtime.limits import ResourceLimits
from mesoslite.runtime.nesting import shares_parent_cgroups

__all__ = [
    "CFS_PERIOD_MICROSECONDS",
    "CgroupsCpuIsolator",
    "CgroupsDevicesIsolator",
    "CgroupsMemIsolator",
    "CgroupsPidsIsolator",
    "cpu_shares_for",
    "cpu_weight_for_shares",
    "parse_flat_keyed",
]

CFS_PERIOD_MICROSECONDS = 100_000
# Mesos' floors: a container always gets some cpu and 32 MB.
_MIN_CPU_SHARES = 2
_CPU_SHARES_PER_CPU = 1024
_MIN_QUOTA_MICROSECONDS = 1000
_MIN_MEMORY_BYTES = 32 * 1024 * 1024
_USER_HZ = 100  # cpuacct.stat's unit (USER_HZ is 100 on every Linux ABI)

_T = TypeVar("_T")


def cpu_shares_for(cpus: float) -> int:
    return max(_MIN_CPU_SHARES, int(cpus * _CPU_SHARES_PER_CPU))


def cpu_weight_for_shares(shares: int) -> int:
    """v1 shares [2, 262144] onto v2 weight [1, 10000], as the kernel docs and runc map."""
    return 1 + ((shares - 2) * 9999) // 262142


def parse_flat_keyed(text: str) -> dict[str, int]:
    """"key value" lines (cpu.stat, memory.stat, memory.events) -> {key: value}."""
    figures: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            figures[key] = int(value)
    return figures


class _CgroupsIsolator(IsolatorBase):
    """Creates, joins and removes the container's cgroup for `controllers`."""

    def __init__(self, cgroups: CgroupManager, root_name: str = DEFAULT_CGROUPS_ROOT_NAME):
        self._cgroups = cgroups
        self._root_name = root_name
        self._known: dict[str, ResourceLimits] = {}
        # Nested containers in an ancestor's cgroups -> that ancestor (nothing of theirs
        # to clean up).
        self._sharing: dict[str, str] = {}

    @property
    def controllers(self) -> list[str]:
        raise NotImplementedError

    def _cgroup(self, container_id: str) -> str:
        return container_cgroup(container_id, self._root_name)

    async def _run(self, function: Callable[[], _T]) -> _T:
        return await anyio.to_thread.run_sync(function)

    def _apply_limits(self, cgroup: str, limits: ResourceLimits, config: ContainerConfig) -> None:
        """Write the limits into the cgroup (worker thread)."""

    async def recover(self, containers: list[RecoveredContainer], orphans: set[str]) -> None:
        # The cgroups are still there; orphans' are removed by cleanup().
        for container in containers:
            self._known[container.container_id] = ResourceLimits.from_resources(
                container.config.resources
            )

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        controllers = self.controllers
        if shares_parent_cgroups(config):
            assert config.parent_id is not None
            owner = self._sharing.get(config.parent_id, config.parent_id)
            self._sharing[container_id] = owner
            owner_files = self._cgroups.join_files(self._cgroup(owner), controllers)
            return LaunchInfo(cgroup_join_files=owner_files, shares_parent_cgroups=True)
        cgroup = self._cgroup(container_id)
        limits = ResourceLimits.from_resources(config.resources)

        def create() -> None:
            self._cgroups.create(cgroup, controllers)
            self._apply_limits(cgroup, limits, config)

        await self._run(create)
        self._known[container_id] = limits
        return LaunchInfo(cgroup_join_files=self._cgroups.join_files(cgroup, controllers))

    async def update(self, container_id: str, resources: list[mesos_pb2.Resource]) -> None:
        if container_id not in self._known:
            return
        limits = ResourceLimits.from_resources(resources)
        cgroup = self._cgroup(container_id)
        self._known[container_id] = limits
        await self._run(lambda: self._update_limits(cgroup, limits))

    def _update_limits(self, cgroup: str, limits: ResourceLimits) -> None:
        raise NotImplementedError

    async def cleanup(self, container_id: str) -> None:
        self._known.pop(container_id, None)
        if self._sharing.pop(container_id, None) is not None:
            return
        cgroup = self._cgroup(container_id)
        controllers = self.controllers

        # The launcher has killed every process of the container by now.
        await self._run(lambda: self._cgroups.remove(cgroup, controllers))

    def _count_lines(self, cgroup: str, controller: str, filename: str) -> int:
        try:
            return len(self._cgroups.read(cgroup, controller, filename).split())
        except FileNotFoundError:
            return 0


class CgroupsCpuIsolator(_CgroupsIsolator):
    """cpu.shares + CFS quota (v1), cpu.weight + cpu.max (v2); cpu time and throttling."""

    name = "cgroups/cpu"

    def __init__(
        self,
        cgroups: CgroupManager,
        root_name: str = DEFAULT_CGROUPS_ROOT_NAME,
        enforce_quota: bool = True,
    ) -> None:
        super().__init__(cgroups, root_name)
        self._enforce_quota = enforce_quota

    @property
    def controllers(self) -> list[str]:
        if self._cgroups.version == 2:
            return ["cpu"]
        return ["cpu", "cpuacct"]

    def _apply_limits(self, cgroup: str, limits: ResourceLimits, config: ContainerConfig) -> None:
        self._update_limits(cgroup, limits)

    def _update_limits(self, cgroup: str, limits: ResourceLimits) -> None:
        if limits.cpus is None:
            return
        shares = cpu_shares_for(limits.cpus)
        quota = max(_MIN_QUOTA_MICROSECONDS, int(limits.cpus * CFS_PERIOD_MICROSECONDS))
        write = self._cgroups.write
        if self._cgroups.version == 2:
            write(cgroup, "cpu", "cpu.weight", str(cpu_weight_for_shares(shares)))
            if self._enforce_quota:
                write(cgroup, "cpu", "cpu.max", f"{quota} {CFS_PERIOD_MICROSECONDS}")
            return
        write(cgroup, "cpu", "cpu.shares", str(shares))
        if self._enforce_quota:
            write(cgroup, "cpu", "cpu.cfs_period_us", str(CFS_PERIOD_MICROSECONDS))
            write(cgroup, "cpu", "cpu.cfs_quota_us", str(quota))

    def _sample(self, container_id: str) -> mesos_pb2.ResourceStatistics:
        cgroup = self._cgroup(container_id)
        read = self._cgroups.read
        statistics = mesos_pb2.ResourceStatistics(timestamp=time.time())
        cpu_stat = parse_flat_keyed(read(cgroup, "cpu", "cpu.stat"))
        if self._cgroups.version == 2:
            statistics.cpus_user_time_secs = cpu_stat.get("user_usec", 0) / 1e6
            statistics.cpus_system_time_secs = cpu_stat.get("system_usec", 0) / 1e6
            statistics.cpus_throttled_time_secs = cpu_stat.get("throttled_usec", 0) / 1e6
            statistics.threads = self._count_lines(cgroup, "cpu", "cgroup.threads")
        else:
            accounting = parse_flat_keyed(read(cgroup, "cpuacct", "cpuacct.stat"))
            statistics.cpus_user_time_secs = accounting.get("user", 0) / _USER_HZ
            statistics.cpus_system_time_secs = accounting.get("system", 0) / _USER_HZ
            statistics.cpus_throttled_time_secs = cpu_stat.get("throttled_time", 0) / 1e9
            statistics.threads = self._count_lines(cgroup, "cpu", "tasks")
        statistics.cpus_nr_periods = cpu_stat.get("nr_periods", 0)
        statistics.cpus_nr_throttled = cpu_stat.get("nr_throttled", 0)
        statistics.processes = self._count_lines(cgroup, "cpu", "cgroup.procs")
        limits = self._known.get(container_id)
        if limits is not None and limits.cpus is not None:
            statistics.cpus_limit = limits.cpus
        return statistics

    async def usage(self, container_id: str) -> mesos_pb2.ResourceStatistics:
        if container_id not in self._known:
            return mesos_pb2.ResourceStatistics()
        return await self._run(lambda: self._sample(container_id))


class CgroupsMemIsolator(_CgroupsIsolator):
    """memory limit; an OOM kill ends the container with REASON_CONTAINER_LIMITATION_MEMORY."""

    name = "cgroups/mem"

    @property
    def controllers(self) -> list[str]:
        return ["memory"]

    def _apply_limits(self, cgroup: str, limits: ResourceLimits, config: ContainerConfig) -> None:
        self._update_limits(cgroup, limits)

    def _update_limits(self, cgroup: str, limits: ResourceLimits) -> None:
        if limits.mem_bytes is None:
            return
        limit = max(_MIN_MEMORY_BYTES, limits.mem_bytes)
        if self._cgroups.version == 2:
            self._cgroups.write(cgroup, "memory", "memory.max", str(limit))
            # Swap would let the task outgrow its limit instead of being OOM killed.
            with contextlib.suppress(FileNotFoundError):
                self._cgroups.write(cgroup, "memory", "memory.swap.max", "0")
            return
        directory = self._cgroups.directory(cgroup, "memory")
        self._cgroups.write(cgroup, "memory", "memory.soft_limit_in_bytes", str(limit))
        if (directory / "memory.memsw.limit_in_bytes").exists():
            # memsw >= limit must hold at every step: raise whichever keeps it true first.
            current = int(self._cgroups.read(cgroup, "memory", "memory.limit_in_bytes"))
            order = ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
            if limit < current:
                order.reverse()
            for filename in order:
                self._cgroups.write(cgroup, "memory", filename, str(limit))
        else:
            self._cgroups.write(cgroup, "memory", "memory.limit_in_bytes", str(limit))
        self._cgroups.write(cgroup, "memory", "memory.swappiness", "0")

    def _oom_kills(self, cgroup: str) -> int:
        filename = "memory.events" if self._cgroups.version == 2 else "memory.oom_control"
        try:
            return parse_flat_keyed(self._cgroups.read(cgroup, "memory", filename)).get(
                "oom_kill", 0
            )
        except FileNotFoundError:
            return 0

    async def limitation(self, container_id: str) -> Limitation | None:
        limits = self._known.get(container_id)
        if limits is None:
            return None
        cgroup = self._cgroup(container_id)
        if await self._run(lambda: self._oom_kills(cgroup)) == 0:
            return None
        limit = limits.mem_bytes
        described = f" of {limit // (1024 * 1024)} MB" if limit is not None else ""
        return Limitation(
            reason=mesos_pb2.TaskStatus.REASON_CONTAINER_LIMITATION_MEMORY,
            message=f"Memory limit exceeded: the kernel OOM-killed the task at its limit"
                    f"{described}",
        )

    def _sample(self, container_id: str) -> mesos_pb2.ResourceStatistics:
        cgroup = self._cgroup(container_id)
        read = self._cgroups.read
        statistics = mesos_pb2.ResourceStatistics(timestamp=time.time())
        memory_stat = parse_flat_keyed(read(cgroup, "memory", "memory.stat"))
        if self._cgroups.version == 2:
            statistics.mem_total_bytes = int(read(cgroup, "memory", "memory.current"))
            statistics.mem_anon_bytes = memory_stat.get("anon", 0)
            statistics.mem_rss_bytes = memory_stat.get("anon", 0)
            statistics.mem_file_bytes = memory_stat.get("file", 0)
            statistics.mem_cache_bytes = memory_stat.get("file", 0)
            statistics.mem_mapped_file_bytes = memory_stat.get("file_mapped", 0)
            statistics.mem_unevictable_bytes = memory_stat.get("unevictable", 0)
        else:
            statistics.mem_total_bytes = int(read(cgroup, "memory", "memory.usage_in_bytes"))
            statistics.mem_rss_bytes = memory_stat.get("total_rss", 0)
            statistics.mem_anon_bytes = memory_stat.get("total_rss", 0)
            statistics.mem_file_bytes = memory_stat.get("total_cache", 0)
            statistics.mem_cache_bytes = memory_stat.get("total_cache", 0)
            statistics.mem_mapped_file_bytes = memory_stat.get("total_mapped_file", 0)
            statistics.mem_swap_bytes = memory_stat.get("total_swap", 0)
            statistics.mem_unevictable_bytes = memory_stat.get("total_unevictable", 0)
        limits = self._known.get(container_id)
        if limits is not None and limits.mem_bytes is not None:
            statistics.mem_limit_bytes = max(_MIN_MEMORY_BYTES, limits.mem_bytes)
            statistics.mem_soft_limit_bytes = statistics.mem_limit_bytes
        return statistics

    async def usage(self, container_id: str) -> mesos_pb2.ResourceStatistics:
        if container_id not in self._known:
            return mesos_pb2.ResourceStatistics()
        return await self._run(lambda: self._sample(container_id))


class CgroupsPidsIsolator(_CgroupsIsolator):
    """pids.max: a fork bomb stops at the limit (fork fails with EAGAIN)."""

    name = "cgroups/pids"

    def __init__(
        self,
        cgroups: CgroupManager,
        root_name: str = DEFAULT_CGROUPS_ROOT_NAME,
        max_processes: int | None = None,
    ) -> None:
        super().__init__(cgroups, root_name)
        self._max_processes = max_processes

    @property
    def controllers(self) -> list[str]:
        return ["pids"]

    def _limit_for(self, resources: list[mesos_pb2.Resource]) -> int | None:
        # A "pids" scalar resource (not a Mesos one) overrides the agent-wide default.
        named = [int(r.scalar.value) for r in resources if r.name == "pids"]
        return sum(named) if named else self._max_processes

    def _apply_limits(self, cgroup: str, limits: ResourceLimits, config: ContainerConfig) -> None:
        limit = self._limit_for(list(config.resources))
        if limit is not None:
            self._cgroups.write(cgroup, "pids", "pids.max", str(limit))

    def _update_limits(self, cgroup: str, limits: ResourceLimits) -> None:
        return None

    async def update(self, container_id: str, resources: list[mesos_pb2.Resource]) -> None:
        if container_id not in self._known:
            return
        limit = self._limit_for(resources)
        cgroup = self._cgroup(container_id)
        value = "max" if limit is None else str(limit)
        await self._run(lambda: self._cgroups.write(cgroup, "pids", "pids.max", value))

    async def usage(self, container_id: str) -> mesos_pb2.ResourceStatistics:
        if container_id not in self._known:
            return mesos_pb2.ResourceStatistics()
        cgroup = self._cgroup(container_id)

        def sample() -> mesos_pb2.ResourceStatistics:
            statistics = mesos_pb2.ResourceStatistics(timestamp=time.time())
            statistics.processes = self._count_lines(cgroup, "pids", "cgroup.procs")
            statistics.threads = int(self._cgroups.read(cgroup, "pids", "pids.current"))
            return statistics

        return await self._run(sample)


# What a container may open or mknod: the nodes the launcher puts in /dev, plus ptys.
DEFAULT_DEVICE_RULES = (
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",  # null
    "c 1:5 rwm",  # zero
    "c 1:7 rwm",  # full
    "c 1:8 rwm",  # random
    "c 1:9 rwm",  # urandom
    "c 5:0 rwm",  # tty
    "c 5:1 rwm",  # console
    "c 5:2 rwm",  # ptmx
    "c 136:* rwm",  # pts
)


class CgroupsDevicesIsolator(_CgroupsIsolator):
    """v1 devices.deny everything, then devices.allow the default set."""

    name = "cgroups/devices"

    def __init__(
        self,
        cgroups: CgroupManager,
        root_name: str = DEFAULT_CGROUPS_ROOT_NAME,
        allowed: tuple[str, ...] = DEFAULT_DEVICE_RULES,
    ) -> None:
        if cgroups.version == 2:
            raise ValueError("cgroups/devices supports cgroup v1 and hybrid only (v2 needs eBPF)")
        super().__init__(cgroups, root_name)
        self._allowed = allowed

    @property
    def controllers(self) -> list[str]:
        return ["devices"]

    def _apply_limits(self, cgroup: str, limits: ResourceLimits, config: ContainerConfig) -> None:
        self._cgroups.write(cgroup, "devices", "devices.deny", "a")
        for rule in self._allowed:
            self._cgroups.write(cgroup, "devices", "devices.allow", rule)

    def _update_limits(self, cgroup: str, limits: ResourceLimits) -> None:
        return None
