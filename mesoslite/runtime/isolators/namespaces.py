"""namespaces/pid, namespaces/ipc, namespaces/uts, namespaces/net.

namespaces/pid makes the task PID 1 of its own pid namespace (and mounts a matching
/proc); namespaces/ipc gives it its own SysV IPC and /dev/shm; namespaces/uts its own
hostname (ContainerInfo.hostname); namespaces/net a network namespace with only `lo`
(mesoslite's: Mesos reaches the same through network/cni).

Nested containers follow `nesting.py`: they join their parent's network and UTS
namespaces (the containerizer enters those), its IPC namespace unless their ipc_mode is
PRIVATE, and get a pid namespace of their own unless they share the parent's.
"""

from __future__ import annotations

from pathlib import Path

from mesoslite.runtime import linux_syscalls as sys_
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.isolator import IsolatorBase, LaunchInfo, Mount
from mesoslite.runtime.nesting import (
    is_nested,
    shares_parent_ipc_namespace,
    shares_parent_pid_namespace,
)

__all__ = [
    "IpcNamespaceIsolator",
    "NetworkNamespaceIsolator",
    "PidNamespaceIsolator",
    "UtsNamespaceIsolator",
]


class PidNamespaceIsolator(IsolatorBase):
    name = "namespaces/pid"

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        if shares_parent_pid_namespace(config):
            # Its /proc is the parent's already (it enters the parent's mount namespace)
            # or the launcher's fresh one of its image root, made in the shared namespace.
            return LaunchInfo(enter_namespaces=sys_.CLONE_NEWPID)
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
        if shares_parent_ipc_namespace(config):
            shared: list[Mount] = []
            if config.rootfs is not None and config.parent_pid is not None:
                # Its image root has a /dev/shm of its own: POSIX shared memory must be
                # the parent's, reached through the parent's root.
                parent_shm = Path(f"/proc/{config.parent_pid}/root/dev/shm")
                shared.append(Mount("/dev/shm", source=parent_shm))
            return LaunchInfo(enter_namespaces=sys_.CLONE_NEWIPC, mounts=shared)
        mounts = []
        if config.rootfs is None:
            flags = sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC
            mounts.append(Mount("/dev/shm", fstype="tmpfs", options="mode=1777", flags=flags))
        return LaunchInfo(namespaces=sys_.CLONE_NEWIPC | sys_.CLONE_NEWNS, mounts=mounts)


class UtsNamespaceIsolator(IsolatorBase):
    name = "namespaces/uts"

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        if is_nested(config):
            return None  # the parent's hostname
        info = config.container_info
        hostname = info.hostname if info is not None and info.hostname else None
        return LaunchInfo(namespaces=sys_.CLONE_NEWUTS, hostname=hostname)


class NetworkNamespaceIsolator(IsolatorBase):
    name = "namespaces/net"

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        if is_nested(config):
            return None  # the parent's network
        return LaunchInfo(namespaces=sys_.CLONE_NEWNET)
