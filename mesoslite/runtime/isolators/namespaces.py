"""namespaces/pid, namespaces/ipc, namespaces/uts, namespaces/net.

namespaces/pid makes the task PID 1 of its own pid namespace (and mounts a matching
/proc); namespaces/ipc gives it its own SysV IPC and /dev/shm; namespaces/uts its own
hostname (ContainerInfo.hostname); namespaces/net a network namespace with only `lo`
(mesoslite's: Mesos reaches the same through network/cni).
"""

from __future__ import annotations

from mesoslite.runtime import linux_syscalls as sys_
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.isolator import IsolatorBase, LaunchInfo, Mount

__all__ = [
    "IpcNamespaceIsolator",
    "NetworkNamespaceIsolator",
    "PidNamespaceIsolator",
    "UtsNamespaceIsolator",
]


class PidNamespaceIsolator(IsolatorBase):
    name = "namespaces/pid"

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        mounts = []
        if config.rootfs is None:
            # The host's /proc would show the host's processes; the image root gets its
            # own /proc from the launcher anyway.
            flags = sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC
            mounts.append(Mount("/proc", fstype="proc", flags=flags))
        return LaunchInfo(namespaces=sys_.CLONE_NEWPID | sys_.CLONE_NEWNS, mounts=mounts)


class IpcNamespaceIsolator(IsolatorBase):
    name = "namespaces/ipc"

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        mounts = []
        if config.rootfs is None:
            flags = sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC
            mounts.append(Mount("/dev/shm", fstype="tmpfs", options="mode=1777",
                                flags=flags))
        return LaunchInfo(namespaces=sys_.CLONE_NEWIPC | sys_.CLONE_NEWNS, mounts=mounts)


class UtsNamespaceIsolator(IsolatorBase):
    name = "namespaces/uts"

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        info = config.container_info
        hostname = info.hostname if info is not None and info.hostname else None
        return LaunchInfo(namespaces=sys_.CLONE_NEWUTS, hostname=hostname)


class NetworkNamespaceIsolator(IsolatorBase):
    name = "namespaces/net"

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        return LaunchInfo(namespaces=sys_.CLONE_NEWNET)
