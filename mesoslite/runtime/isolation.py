"""From an --isolation flag ("cgroups/cpu,cgroups/mem,...") to isolators and a launcher.

The default is the linux set when running as root on Linux with cgroups, the posix set
otherwise (Mesos' default is "posix/cpu,posix/mem"). On a cgroup v2 host the linux set's
cgroups/devices needs a kernel that loads eBPF device programs (CONFIG_CGROUP_BPF);
where it cannot, the default leaves cgroups/devices out, says so in the log, and
devices are not restricted. Whatever the flag's order, the
isolators run filesystem first, then namespaces, cgroups, volumes, the rest: volumes
mount into the root filesystem the filesystem isolator sets up.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mesoslite.runtime.cgroups.bpf_devices import device_programs_supported
from mesoslite.runtime.cgroups.layout import DEFAULT_CGROUP_ROOT, CgroupMode, detect_cgroup_layout
from mesoslite.runtime.cgroups.manager import CgroupManager, manager_for_layout
from mesoslite.runtime.cgroups.naming import DEFAULT_CGROUPS_ROOT_NAME
from mesoslite.runtime.isolator import Isolator
from mesoslite.runtime.isolators.cgroups import (
    CgroupsCpuIsolator,
    CgroupsDevicesIsolator,
    CgroupsMemIsolator,
    CgroupsPidsIsolator,
)
from mesoslite.runtime.isolators.filesystem import LinuxFilesystemIsolator
from mesoslite.runtime.isolators.namespaces import (
    IpcNamespaceIsolator,
    NetworkNamespaceIsolator,
    PidNamespaceIsolator,
    UtsNamespaceIsolator,
)
from mesoslite.runtime.isolators.posix import PosixCpuIsolator, PosixMemIsolator
from mesoslite.runtime.isolators.volumes import HostPathVolumeIsolator, SandboxPathVolumeIsolator
from mesoslite.runtime.launcher import Launcher, PosixLauncher
from mesoslite.runtime.linux_launcher import LinuxLauncher

__all__ = [
    "DEFAULT_MAX_PROCESSES",
    "KNOWN_ISOLATORS",
    "LINUX_ISOLATION",
    "POSIX_ISOLATION",
    "IsolationContext",
    "IsolationError",
    "default_isolation_flag",
    "isolation_from_flag",
    "launcher_for",
]

POSIX_ISOLATION = "posix/cpu,posix/mem"
LINUX_ISOLATION = (
    "filesystem/linux,namespaces/pid,namespaces/ipc,cgroups/cpu,cgroups/mem,cgroups/pids,"
    "cgroups/devices,volume/host_path,volume/sandbox_path"
)
# Processes per container when the flag does not say (pids.max); a fork bomb stops here.
DEFAULT_MAX_PROCESSES = 32768

_log = logging.getLogger(__name__)

_FAMILY_RANK = {"filesystem": 0, "namespaces": 1, "cgroups": 2, "volume": 3, "posix": 4}


class IsolationError(ValueError):
    """The flag names an isolator that does not exist or cannot run here."""


@dataclass(frozen=True)
class IsolationContext:
    """What isolators need from the agent."""

    # Per-container generated files (hosts, resolv.conf).
    runtime_dir: Path
    cgroup_root: Path = DEFAULT_CGROUP_ROOT
    cgroups_root_name: str = DEFAULT_CGROUPS_ROOT_NAME
    max_processes: int = DEFAULT_MAX_PROCESSES

    def cgroup_manager(self) -> CgroupManager | None:
        layout = detect_cgroup_layout(self.cgroup_root)
        return manager_for_layout(layout) if layout is not None else None


def _needs_cgroups(
    build: Callable[[CgroupManager, IsolationContext], Isolator],
) -> Callable[[IsolationContext, CgroupManager | None, set[str]], Isolator]:
    def create(
        context: IsolationContext, cgroups: CgroupManager | None, names: set[str]
    ) -> Isolator:
        if cgroups is None:
            raise IsolationError(f"no cgroup hierarchy under {context.cgroup_root}")
        return build(cgroups, context)

    return create


KNOWN_ISOLATORS: dict[
    str, Callable[[IsolationContext, CgroupManager | None, set[str]], Isolator]
] = {
    "posix/cpu": lambda context, cgroups, names: PosixCpuIsolator(),
    "posix/mem": lambda context, cgroups, names: PosixMemIsolator(),
    "filesystem/linux": lambda context, cgroups, names: LinuxFilesystemIsolator(
        context.runtime_dir, private_network="namespaces/net" in names
    ),
    "namespaces/pid": lambda context, cgroups, names: PidNamespaceIsolator(),
    "namespaces/ipc": lambda context, cgroups, names: IpcNamespaceIsolator(),
    "namespaces/uts": lambda context, cgroups, names: UtsNamespaceIsolator(),
    "namespaces/net": lambda context, cgroups, names: NetworkNamespaceIsolator(),
    "cgroups/cpu": _needs_cgroups(
        lambda cgroups, context: CgroupsCpuIsolator(cgroups, context.cgroups_root_name)
    ),
    "cgroups/mem": _needs_cgroups(
        lambda cgroups, context: CgroupsMemIsolator(cgroups, context.cgroups_root_name)
    ),
    "cgroups/pids": _needs_cgroups(
        lambda cgroups, context: CgroupsPidsIsolator(
            cgroups, context.cgroups_root_name, max_processes=context.max_processes
        )
    ),
    "cgroups/devices": _needs_cgroups(
        lambda cgroups, context: CgroupsDevicesIsolator(cgroups, context.cgroups_root_name)
    ),
    "volume/host_path": lambda context, cgroups, names: HostPathVolumeIsolator(),
    "volume/sandbox_path": lambda context, cgroups, names: SandboxPathVolumeIsolator(),
}


def default_isolation_flag(
    cgroup_root: Path = DEFAULT_CGROUP_ROOT,
    device_programs: Callable[[], bool] = device_programs_supported,
) -> str:
    """The linux set as root on Linux with cgroups, the posix set otherwise.

    `device_programs` says whether eBPF device programs load here (v2 only; a
    parameter so that tests can stand in a kernel without them)."""
    layout = detect_cgroup_layout(cgroup_root)
    linux_capable = sys.platform == "linux" and os.geteuid() == 0 and layout is not None
    if not linux_capable or layout is None:
        return POSIX_ISOLATION
    if layout.mode is CgroupMode.V2 and not device_programs():
        _log.warning(
            "cgroup v2 without eBPF device programs (bpf(2) refused one): cgroups/devices "
            "left out of the default isolation, devices are not restricted"
        )
        names = [name for name in LINUX_ISOLATION.split(",") if name != "cgroups/devices"]
        return ",".join(names)
    return LINUX_ISOLATION


def _ordered_names(flag: str) -> list[str]:
    names: list[str] = []
    for raw in flag.split(","):
        name = raw.strip()
        if name and name not in names:
            names.append(name)
    unknown = [name for name in names if name not in KNOWN_ISOLATORS]
    if unknown:
        raise IsolationError(
            f"unknown isolator(s): {', '.join(unknown)}; known: "
            f"{', '.join(sorted(KNOWN_ISOLATORS))}"
        )
    return sorted(names, key=lambda name: _FAMILY_RANK.get(name.split("/")[0], 5))


def isolation_from_flag(
    flag: str, context: IsolationContext, cgroups: CgroupManager | None = None
) -> list[Isolator]:
    """The isolators the flag names, in the order they run."""
    names = _ordered_names(flag)
    if cgroups is None and any(name.startswith("cgroups/") for name in names):
        cgroups = context.cgroup_manager()
    try:
        return [KNOWN_ISOLATORS[name](context, cgroups, set(names)) for name in names]
    except ValueError as error:
        raise IsolationError(str(error)) from error


def launcher_for(
    isolators: list[Isolator], context: IsolationContext, cgroups: CgroupManager | None = None
) -> Launcher:
    """The posix launcher for posix-only isolation; the linux launcher otherwise."""
    if all(isolator.name.startswith("posix/") for isolator in isolators):
        return PosixLauncher()
    return LinuxLauncher(
        cgroups if cgroups is not None else context.cgroup_manager(),
        context.cgroups_root_name,
    )
