"""Root + kernel fixtures for the linux containerizer: every test gets its own cgroup
root name, rootfs and runtime dir, and everything is destroyed even when it fails."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.cgroups.layout import detect_cgroup_layout
from mesoslite.runtime.containerizer import MesosContainerizer
from mesoslite.runtime.isolation import (
    LINUX_ISOLATION,
    IsolationContext,
    isolation_from_flag,
    launcher_for,
)
from mesoslite.runtime.linux_launcher import LinuxLauncher
from mesoslite.runtime.provisioner.image_config import ImageConfig
from tests.conftest import require, require_root

from .rootfs import build_busybox_rootfs, find_static_busybox

MAX_PROCESSES = 24


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def busybox_rootfs(tmp_path: Path) -> Path:
    require_root()
    busybox = find_static_busybox()
    require(busybox is not None, "needs a static busybox (busybox-static)")
    assert busybox is not None
    return build_busybox_rootfs(tmp_path / "rootfs", busybox)


@dataclass
class _Provisioned:
    rootfs: Path
    config: ImageConfig = field(default_factory=ImageConfig)


class DirectoryProvisioner:
    """Every image is the one directory (stands in for the image provisioner)."""

    def __init__(self, rootfs: Path) -> None:
        self.rootfs = rootfs
        self.destroyed: list[str] = []

    async def provision(
        self, container_id: str, image: mesos_pb2.Image, *, mount_points: object = ()
    ) -> _Provisioned:
        return _Provisioned(self.rootfs)

    async def destroy(self, container_id: str) -> None:
        self.destroyed.append(container_id)

    async def recover(self, known_ids: object) -> set[str]:
        return set()

    async def prune_images(self, excluded_images: list[mesos_pb2.Image]) -> None:
        return None


@pytest.fixture
def cgroups_root_name() -> Iterator[str]:
    require_root()
    layout = detect_cgroup_layout()
    require(layout is not None, "needs a cgroup hierarchy")
    assert layout is not None
    name = f"mesoslite-test-{uuid.uuid4().hex[:8]}"
    yield name
    roots = list(layout.v1_hierarchies.values()) or [layout.root]
    for hierarchy in set(roots):
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(hierarchy / name)


@pytest.fixture
async def linux_containerizer(
    tmp_path: Path, busybox_rootfs: Path, cgroups_root_name: str
) -> AsyncIterator[MesosContainerizer]:
    context = IsolationContext(
        runtime_dir=tmp_path / "runtime",
        cgroups_root_name=cgroups_root_name,
        max_processes=MAX_PROCESSES,
    )
    isolators = isolation_from_flag(LINUX_ISOLATION + ",namespaces/uts,namespaces/net", context)
    launcher = launcher_for(isolators, context)
    try:
        async with MesosContainerizer(
            launcher=launcher,
            isolators=isolators,
            provisioner=DirectoryProvisioner(busybox_rootfs),
        ) as containerizer:
            try:
                yield containerizer
            finally:
                for container_id in containerizer.containers():
                    await containerizer.destroy(container_id)
    finally:
        if isinstance(launcher, LinuxLauncher):
            launcher.close()


def image_info(**fields: object) -> mesos_pb2.ContainerInfo:
    info = mesos_pb2.ContainerInfo(type=mesos_pb2.ContainerInfo.MESOS, **fields)  # type: ignore[arg-type]
    info.mesos.image.type = mesos_pb2.Image.DOCKER
    info.mesos.image.docker.name = "library/busybox"
    return info


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., ContainerConfig]:
    counter = iter(range(1_000_000))

    def build(script: str, **overrides: object) -> ContainerConfig:
        sandbox = tmp_path / f"sandbox-{next(counter)}"
        sandbox.mkdir()
        fields: dict[str, object] = {
            "command": mesos_pb2.CommandInfo(shell=True, value=script),
            "sandbox": sandbox,
            "environment": {"PATH": "/bin"},
            "container_info": image_info(),
        }
        fields.update(overrides)
        return ContainerConfig(**fields)  # type: ignore[arg-type]

    return build
