"""volume/host_path and volume/sandbox_path: bind mounts declared in ContainerInfo.

A relative container_path is inside the sandbox (seen at /mnt/mesos/sandbox/<path> in
an image, at <sandbox>/<path> without one); an absolute one is a path of the container's
root filesystem. Mode RO makes the bind read-only.
"""

from __future__ import annotations

from pathlib import Path

import anyio

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.isolator import IsolatorBase, LaunchInfo, Mount, RecoveredContainer
from mesoslite.runtime.isolators.filesystem import CONTAINER_SANDBOX_PATH

__all__ = ["HostPathVolumeIsolator", "SandboxPathVolumeIsolator", "VolumeError"]


class VolumeError(ValueError):
    """A volume that cannot be mounted as declared."""


def _container_target(config: ContainerConfig, container_path: str) -> str:
    if container_path.startswith("/"):
        return container_path
    if ".." in Path(container_path).parts:
        raise VolumeError(f"volume path {container_path!r} leaves the sandbox")
    base = CONTAINER_SANDBOX_PATH if config.rootfs is not None else str(config.sandbox)
    return f"{base}/{container_path}"


def _volumes(config: ContainerConfig) -> list[mesos_pb2.Volume]:
    return list(config.container_info.volumes) if config.container_info is not None else []


def _make_directory(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


class HostPathVolumeIsolator(IsolatorBase):
    name = "volume/host_path"

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        mounts = []
        for volume in _volumes(config):
            if volume.source.type == mesos_pb2.Volume.Source.HOST_PATH:
                host_path = Path(volume.source.host_path.path)
            elif not volume.HasField("source") and volume.host_path:
                host_path = Path(volume.host_path)  # the pre-Source form
            else:
                continue
            if not await anyio.to_thread.run_sync(host_path.exists):
                raise VolumeError(f"host path {host_path} of a volume does not exist")
            mounts.append(
                Mount(
                    _container_target(config, volume.container_path),
                    source=host_path,
                    read_only=volume.mode == mesos_pb2.Volume.RO,
                )
            )
        return LaunchInfo(mounts=mounts) if mounts else None


class SandboxPathVolumeIsolator(IsolatorBase):
    name = "volume/sandbox_path"

    def __init__(self) -> None:
        # PARENT volumes name a path in the parent container's sandbox.
        self._sandboxes: dict[str, Path] = {}

    async def recover(self, containers: list[RecoveredContainer], orphans: set[str]) -> None:
        for container in containers:
            self._sandboxes[container.container_id] = container.config.sandbox

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        self._sandboxes[container_id] = config.sandbox
        mounts = []
        for volume in _volumes(config):
            if volume.source.type != mesos_pb2.Volume.Source.SANDBOX_PATH:
                continue
            source_info = volume.source.sandbox_path
            base = config.sandbox
            if source_info.type == mesos_pb2.Volume.Source.SandboxPath.PARENT:
                if config.parent_id is None or config.parent_id not in self._sandboxes:
                    raise VolumeError("a PARENT sandbox volume needs a known parent container")
                base = self._sandboxes[config.parent_id]
            relative = Path(source_info.path)
            if relative.is_absolute() or ".." in relative.parts:
                raise VolumeError(f"sandbox volume path {source_info.path!r} leaves the sandbox")
            source = base / relative
            await anyio.to_thread.run_sync(_make_directory, source)
            mounts.append(
                Mount(
                    _container_target(config, volume.container_path),
                    source=source,
                    read_only=volume.mode == mesos_pb2.Volume.RO,
                )
            )
        return LaunchInfo(mounts=mounts) if mounts else None

    async def cleanup(self, container_id: str) -> None:
        self._sandboxes.pop(container_id, None)
