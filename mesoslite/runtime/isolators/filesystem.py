"""filesystem/linux: the image root, the sandbox inside it, /etc/hosts and resolv.conf.

With an image (config.rootfs set by the provisioner) the container pivots into it, the
sandbox is bind-mounted at /mnt/mesos/sandbox (its working directory, MESOS_SANDBOX),
and /etc/hosts, /etc/hostname and /etc/resolv.conf come from the agent: the host's
hosts file and one shared copy of its resolv.conf, read-only, unless the container has
a hostname (or network) of its own, which gets files of its own. Without an image the
container still gets a private mount namespace, so volumes mounted into it stay its own.
A nested container without a root filesystem (its parent has none either) first enters its
parent's mount namespace, so that it sees the parent's mounts, and then makes its copy.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import anyio

from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.isolator import IsolatorBase, LaunchInfo, Mount, MountPoint
from mesoslite.runtime.linux_syscalls import CLONE_NEWNS
from mesoslite.runtime.nesting import is_nested

__all__ = ["CONTAINER_SANDBOX_PATH", "LinuxFilesystemIsolator"]

# Mesos' --sandbox_directory default.
CONTAINER_SANDBOX_PATH = "/mnt/mesos/sandbox"


class LinuxFilesystemIsolator(IsolatorBase):
    name = "filesystem/linux"

    def __init__(self, runtime_dir: Path, private_network: bool = False) -> None:
        """`runtime_dir` holds generated files; `private_network`: the containers get
        their own network namespace (then /etc/hosts is generated)."""
        self._runtime_dir = runtime_dir
        self._private_network = private_network
        self._resolv_conf_key: tuple[int, int, int] | None = None
        # Containers with generated files of their own (removed by cleanup()).
        self._with_files: set[str] = set()

    def _resolv_conf(self) -> Path | None:
        """One copy of the host's /etc/resolv.conf for every container (mounted
        read-only), refreshed when the host's changes. A copy: the host's may be a
        symlink into a directory the image lacks."""
        host = Path("/etc/resolv.conf")
        try:
            stat = os.stat(host)
        except FileNotFoundError:
            return None
        copied = self._runtime_dir / "resolv.conf"
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if key != self._resolv_conf_key:
            self._runtime_dir.mkdir(parents=True, exist_ok=True)
            temporary = self._runtime_dir / f".resolv.conf.{os.getpid()}"
            shutil.copyfile(host, temporary)
            # Renamed over: running containers keep the file they have.
            os.replace(temporary, copied)
            self._resolv_conf_key = key
        return copied

    def _host_files(self, container_id: str, hostname: str) -> list[Mount]:
        """/etc/hosts and /etc/hostname of a container with a name of its own (worker
        thread)."""
        directory = self._runtime_dir / container_id
        directory.mkdir(parents=True, exist_ok=True)
        hosts = directory / "hosts"
        hosts.write_text(
            f"127.0.0.1 localhost\n::1 localhost ip6-localhost\n127.0.1.1 {hostname}\n"
        )
        (directory / "hostname").write_text(hostname + "\n")
        return [
            Mount("/etc/hosts", source=hosts, recursive=False),
            Mount("/etc/hostname", source=directory / "hostname", recursive=False),
        ]

    def image_mount_points(self) -> list[MountPoint]:
        """The targets of every image container: the launcher's kernel filesystems
        (linux_launcher.rootfs_scaffold), the sandbox, /etc/hosts and, when the host has
        one, /etc/resolv.conf (see prepare())."""
        from mesoslite.runtime.linux_launcher import rootfs_scaffold

        kernel = [mount.target for mount in rootfs_scaffold()]
        points = [
            MountPoint(target)
            for target in kernel
            if os.path.dirname(target) not in kernel  # /dev/pts is in the /dev tmpfs
        ]
        points += [MountPoint(CONTAINER_SANDBOX_PATH), MountPoint("/etc/hosts", directory=False)]
        if os.path.exists("/etc/resolv.conf"):
            points.append(MountPoint("/etc/resolv.conf", directory=False))
        return points

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        if config.rootfs is None:
            entered = CLONE_NEWNS if is_nested(config) else 0
            return LaunchInfo(namespaces=CLONE_NEWNS, enter_namespaces=entered)
        info = config.container_info
        hostname = info.hostname if info is not None and info.hostname else None
        mounts = [Mount(CONTAINER_SANDBOX_PATH, source=config.sandbox)]
        if self._private_network or hostname is not None:
            self._with_files.add(container_id)
            name = hostname or socket.gethostname()
            mounts += await anyio.to_thread.run_sync(self._host_files, container_id, name)
        else:
            mounts.append(
                Mount("/etc/hosts", source=Path("/etc/hosts"), recursive=False, read_only=True)
            )
        resolv_conf = self._resolv_conf()
        if resolv_conf is not None:
            mounts.append(
                Mount("/etc/resolv.conf", source=resolv_conf, recursive=False, read_only=True)
            )
        return LaunchInfo(
            rootfs=config.rootfs,
            namespaces=CLONE_NEWNS,
            mounts=mounts,
            working_directory=CONTAINER_SANDBOX_PATH,
            environment={"MESOS_SANDBOX": CONTAINER_SANDBOX_PATH},
        )

    async def cleanup(self, container_id: str) -> None:
        if container_id not in self._with_files:
            return
        self._with_files.discard(container_id)
        directory = self._runtime_dir / container_id
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(directory, ignore_errors=True))
