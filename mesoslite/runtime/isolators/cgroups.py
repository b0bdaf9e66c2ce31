"""cgroups/cpu, cgroups/mem, cgroups/pids, cgroups/devices: limits enforced by the kernel.

Each container gets "<root name>/<container id>" in the hierarchies of its controllers
(v1, hybrid) or one directory of the unified hierarchy (v2). prepare() creates it and
hands the launcher the files to write to join it before exec; cleanup() removes it.

Making a cgroup and writing its limits are in-memory kernel operations of a few
microseconds: they run on the event loop, which saves a worker-thread round trip per
isolator per container. Removal tries once on the loop and only waits (in a worker
thread) for a cgroup that is still busy; usage samples run in worker threads. What
every container gets alike is written once into the agent's root cgroup, which new
cgroups inherit at creation (the devices whitelist, memory.swappiness).

A nested container that shares its parent's cgroups (LinuxInfo.share_cgroups, the
default) joins the parent's and gets none of its own: its usage is its parent's.

cgroups/devices enforces one whitelist on every layout. v1 and hybrid: devices.deny "a",
then devices.allow per rule. v2 has no devices files: the same rules become an eBPF
program (BPF_PROG_TYPE_CGROUP_DEVICE, assembled in cgroups/bpf_devices.py) that is
loaded once and attached once, to the agent's root cgroup. Effective programs are
inherited down a v2 tree, so every container cgroup below the root (and the cgroups
below those) runs it from its creation; the attachment is exclusive (no flags), so it
replaces a previous agent's program and a container cannot attach one of its own to
widen it. A recovered container keeps the program it already runs; removing the root
(or a container's cgroup) detaches it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.cgroups.bpf_devices import (
    DeviceRule,
    attach_device_program,
    device_programs_supported,
    load_device_program,
    parse_device_rule,
)
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
    """ "key value" lines (cpu.stat, memory.stat, memory.events) -> {key: value}."""
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
        self._root_prepared = False

    # The container joins these cgroups last, right before exec (LaunchInfo's
    # late_cgroup_join_files): a CPU quota must not throttle the launcher's set-up.
    joins_last = False

    @property
    def controllers(self) -> list[str]:
        raise NotImplementedError

    def _join(self, files: list[Path], shared: bool = False) -> LaunchInfo:
        if self.joins_last:
            return LaunchInfo(late_cgroup_join_files=files, shares_parent_cgroups=shared)
        return LaunchInfo(cgroup_join_files=files, shares_parent_cgroups=shared)

    def _cgroup(self, container_id: str) -> str:
        return container_cgroup(container_id, self._root_name)

    async def _run(self, function: Callable[[], _T]) -> _T:
        return await anyio.to_thread.run_sync(function)

    def _apply_limits(self, cgroup: str, limits: ResourceLimits, config: ContainerConfig) -> None:
        """Write the limits into the new cgroup."""

    def _prepare_root(self) -> None:
        """Once, before the first container's cgroup: settings children inherit."""

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
            return self._join(owner_files, shared=True)
        cgroup = self._cgroup(container_id)
        limits = ResourceLimits.from_resources(config.resources)
        if not self._root_prepared:
            self._cgroups.create(self._root_name, controllers)
            self._prepare_root()
            self._root_prepared = True
        self._cgroups.create(cgroup, controllers)
        self._known[container_id] = limits
        self._apply_limits(cgroup, limits, config)
        return self._join(self._cgroups.join_files(cgroup, controllers))

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
        # The launcher has killed every process of the container by now: the cgroup is
        # usually empty and goes at once.
        if not self._cgroups.try_remove(cgroup, controllers):
            await self._run(lambda: self._cgroups.remove(cgroup, controllers))

    def _count_in_subtree(self, cgroup: str, controller: str, filename: str) -> int:
        """Lines of `filename` in the cgroup and every cgroup below it: the launcher
        tracks nested containers that share this one's cgroups in child cgroups (v1
        lists only a cgroup's own members)."""
        directory = self._cgroups.directory(cgroup, controller)
        total = 0
        for current, _, _ in os.walk(directory):
            try:
                with open(os.path.join(current, filename), "rb") as listing:
                    total += len(listing.read().split())
            except FileNotFoundError:
                continue
        return total


class CgroupsCpuIsolator(_CgroupsIsolator):
    """cpu.shares + CFS quota (v1), cpu.weight + cpu.max (v2); cpu time and throttling."""

    name = "cgroups/cpu"
    joins_last = True

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
            # A new cgroup's period is the kernel's default, which is ours.
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
            statistics.threads = self._count_in_subtree(cgroup, "cpu", "cgroup.threads")
        else:
            accounting = parse_flat_keyed(read(cgroup, "cpuacct", "cpuacct.stat"))
            statistics.cpus_user_time_secs = accounting.get("user", 0) / _USER_HZ
            statistics.cpus_system_time_secs = accounting.get("system", 0) / _USER_HZ
            statistics.cpus_throttled_time_secs = cpu_stat.get("throttled_time", 0) / 1e9
            statistics.threads = self._count_in_subtree(cgroup, "cpu", "tasks")
        statistics.cpus_nr_periods = cpu_stat.get("nr_periods", 0)
        statistics.cpus_nr_throttled = cpu_stat.get("nr_throttled", 0)
        statistics.processes = self._count_in_subtree(cgroup, "cpu", "cgroup.procs")
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

    def __init__(self, cgroups: CgroupManager, root_name: str = DEFAULT_CGROUPS_ROOT_NAME):
        super().__init__(cgroups, root_name)
        self._has_memsw: bool | None = None
        self._swappiness_inherited = False

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
        self._cgroups.write(cgroup, "memory", "memory.soft_limit_in_bytes", str(limit))
        if self._has_memsw is None:
            directory = self._cgroups.directory(cgroup, "memory")
            self._has_memsw = (directory / "memory.memsw.limit_in_bytes").exists()
        if self._has_memsw:
            # memsw >= limit must hold at every step: raise whichever keeps it true first.
            current = int(self._cgroups.read(cgroup, "memory", "memory.limit_in_bytes"))
            order = ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
            if limit < current:
                order.reverse()
            for filename in order:
                self._cgroups.write(cgroup, "memory", filename, str(limit))
        else:
            self._cgroups.write(cgroup, "memory", "memory.limit_in_bytes", str(limit))
        if not self._swappiness_inherited:
            self._cgroups.write(cgroup, "memory", "memory.swappiness", "0")

    def _prepare_root(self) -> None:
        if self._cgroups.version == 2:
            return
        # Inherited by every container cgroup made after it.
        try:
            self._cgroups.write(self._root_name, "memory", "memory.swappiness", "0")
            self._swappiness_inherited = True
        except OSError:
            self._swappiness_inherited = False

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
        # One small read of an in-memory file, on the loop.
        if self._oom_kills(self._cgroup(container_id)) == 0:
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
            statistics.processes = self._count_in_subtree(cgroup, "pids", "cgroup.procs")
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
    """v1: devices.deny everything, then devices.allow the default set. v2: an eBPF
    device program of the same rules, attached to the agent's root cgroup."""

    name = "cgroups/devices"

    def __init__(
        self,
        cgroups: CgroupManager,
        root_name: str = DEFAULT_CGROUPS_ROOT_NAME,
        allowed: tuple[str, ...] = DEFAULT_DEVICE_RULES,
    ) -> None:
        super().__init__(cgroups, root_name)
        self._allowed = allowed
        # Parsed now, so that a bad rule fails at start, not at the first launch.
        self._rules: list[DeviceRule] = [parse_device_rule(rule) for rule in allowed]
        if cgroups.version == 2 and not device_programs_supported():
            # Refuse to start rather than fail every launch (or pretend).
            raise ValueError(
                "cgroups/devices on cgroup v2 needs eBPF device programs, which bpf(2) "
                "refused here (needs root and CONFIG_CGROUP_BPF)"
            )
        self._inherited = False

    @property
    def controllers(self) -> list[str]:
        # v2 has no "devices" controller: create() only makes the directory.
        return ["devices"]

    def _apply_limits(self, cgroup: str, limits: ResourceLimits, config: ContainerConfig) -> None:
        if not self._inherited:
            self._write_rules(cgroup)

    def _write_rules(self, cgroup: str) -> None:
        self._cgroups.write(cgroup, "devices", "devices.deny", "a")
        for rule in self._allowed:
            self._cgroups.write(cgroup, "devices", "devices.allow", rule)

    def _prepare_root(self) -> None:
        if self._cgroups.version == 2:
            # Once per agent. The program lives as long as it is attached: its fd is
            # not needed after the attach. A failure fails the launch (the isolator
            # retries at the next one) rather than run a container unrestricted.
            program = load_device_program(self._rules)
            try:
                attach_device_program(program, self._cgroups.directory(self._root_name, "devices"))
            finally:
                os.close(program)
            self._inherited = True
            return
        # A new devices cgroup starts with its parent's whitelist. The root cannot be
        # narrowed while it has children (a previous agent's): then each container
        # gets the rules written itself.
        try:
            self._write_rules(self._root_name)
            self._inherited = True
        except OSError:
            self._inherited = False

    def _update_limits(self, cgroup: str, limits: ResourceLimits) -> None:
        return None
