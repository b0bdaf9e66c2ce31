"""filesystem/linux: the image root, the sandbox inside it, /etc/hosts and resolv.conf.

With an image (config.rootfs set by the provisioner) the container pivots into it, the
sandbox is bind-mounted at /mnt/mesos/sandbox (its working directory), and /etc/hosts,
/etc/hostname and /etc/resolv.conf come from the agent. Without an image the container
still gets a private mount namespace, so volumes mounted into it stay its own. A nested
container without a root filesystem (its parent has none either) first enters its
parent's mount namespace, so that it sees the parent's mounts, and then makes its copy.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import anyio

from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.isolator import IsolatorBase, LaunchInfo, Mount
from mesoslite.runtime.linux_syscalls import CLONE_NEWNS
from mesoslite.runtime.nesting import is_nested

__all__ = ["CONTAINER_SANDBOX_PATH", "LinuxFilesystemIsolator"]

# Mesos' --sandbox_directory default.
CONTAINER_SANDBOX_PATH = "/mnt/mesos/sandbox"


class LinuxFilesystemIsolator(IsolatorBase):
    name = "filesystem/linux"

    def __init__(self, runtime_dir: Path, private_network: bool = False) -> None:
        """`runtime_dir` holds per-container generated files; `private_network`: the
        containers get their own network namespace (then /etc/hosts is generated)."""
        self._runtime_dir = runtime_dir
        self._private_network = private_network

    def _etc_files(self, container_id: str, config: ContainerConfig) -> list[Mount]:
        info = config.container_info
        hostname = info.hostname if info is not None and info.hostname else None
        directory = self._runtime_dir / container_id
        directory.mkdir(parents=True, exist_ok=True)
        mounts: list[Mount] = []
        if self._private_network or hostname is not None:
            name = hostname or socket.gethostname()
            hosts = directory / "hosts"
            hosts.write_text(f"127.0.0.1 localhost\n::1 localhost ip6-localhost\n"
                             f"127.0.1.1 {name}\n")
            (directory / "hostname").write_text(name + "\n")
            mounts.append(Mount("/etc/hosts", source=hosts, recursive=False))
            mounts.append(Mount("/etc/hostname", source=directory / "hostname",
                                recursive=False))
        else:
            mounts.append(Mount("/etc/hosts", source=Path("/etc/hosts"), recursive=False,
                                read_only=True))
        resolv = Path("/etc/resolv.conf")
        if resolv.exists():
            # A copy: the host's may be a symlink into a directory the image lacks.
            copied = directory / "resolv.conf"
            shutil.copyfile(resolv, copied)
            mounts.append(Mount("/etc/resolv.conf", source=copied, recursive=False))
        return mounts

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        if config.rootfs is None:
            entered = CLONE_NEWNS if is_nested(config) else 0
            return LaunchInfo(namespaces=CLONE_NEWNS, enter_namespaces=entered)
        etc_mounts = await anyio.to_thread.run_sync(self._etc_files, container_id, config)
        return LaunchInfo(
            rootfs=config.rootfs,
            namespaces=CLONE_NEWNS,
            mounts=[Mount(CONTAINER_SANDBOX_PATH, source=config.sandbox), *etc_mounts],
            working_directory=CONTAINER_SANDBOX_PATH,
        )

    async def cleanup(self, container_id: str) -> None:
        directory = self._runtime_dir / container_id
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(directory, ignore_errors=True))
