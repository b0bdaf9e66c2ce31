"""Root filesystems on the real kernel: overlay mounts (root, overlayfs) and copies."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.isolator import MountPoint
from mesoslite.runtime.provisioner import (
    BackendName,
    Provisioner,
    ProvisionerError,
    UnsupportedImageError,
    apply_image_config,
)
from mesoslite.runtime.provisioner.backend_choice import overlay_works
from mesoslite.runtime.provisioner.mounts import is_mount_point, mount_points_under
from tests.conftest import require, require_binary, require_root
from tests.support.registry import RegistryServer
from tests.support.trees import describe_tree

from .conftest import WHITEOUT_REPOSITORY
from .expectations import WHITEOUT_IMAGE_PATHS, assert_whiteout_image_tree

pytestmark = pytest.mark.anyio


def _docker_image(name: str, *, cached: bool = True) -> mesos_pb2.Image:
    return mesos_pb2.Image(
        type=mesos_pb2.Image.DOCKER, docker=mesos_pb2.Image.Docker(name=name), cached=cached
    )


def _require_overlay(scratch: Path) -> None:
    require_root()
    scratch.mkdir(parents=True, exist_ok=True)
    require(overlay_works(scratch), "needs overlayfs mounts (root, overlay module, a lower fs)")


@pytest.fixture
async def overlay_provisioner(tmp_path: Path) -> AsyncIterator[Provisioner]:
    _require_overlay(tmp_path / "probe")
    provisioner = Provisioner(tmp_path / "root", backend=BackendName.OVERLAY)
    try:
        yield provisioner
    finally:
        # Whatever a failing test left mounted goes away with the containers.
        await provisioner.recover(set())
        assert mount_points_under(tmp_path) == []


async def test_overlay_rootfs_is_a_merged_mount(
    overlay_provisioner: Provisioner, registry: RegistryServer, tmp_path: Path
) -> None:
    name = f"{registry.host}/{WHITEOUT_REPOSITORY}:oci"
    info = await overlay_provisioner.provision("c1", _docker_image(name))
    assert is_mount_point(info.rootfs)
    assert_whiteout_image_tree(info.rootfs)
    # Writes go to the container's upper dir, never into the shared layers.
    (info.rootfs / "data" / "keep").write_text("changed\n")
    (info.rootfs / "new-file").write_text("mine")
    store = await overlay_provisioner.store()
    base_layer = store.layer_paths(info.image)[0]
    assert (base_layer / "data" / "keep").read_text() == "keep\n"
    assert (info.rootfs.parent / "upper" / "new-file").read_text() == "mine"
    # A second container of the same image sees the pristine image.
    other = await overlay_provisioner.provision("c2", _docker_image(name))
    assert (other.rootfs / "data" / "keep").read_text() == "keep\n"
    await overlay_provisioner.destroy("c1")
    assert not is_mount_point(info.rootfs)
    assert not info.rootfs.parent.exists()
    await overlay_provisioner.destroy("c2")
    await overlay_provisioner.destroy("c2")  # idempotent
    assert mount_points_under(tmp_path) == []


async def test_overlay_and_copy_give_the_same_tree(
    overlay_provisioner: Provisioner, registry: RegistryServer, tmp_path: Path
) -> None:
    name = f"{registry.host}/{WHITEOUT_REPOSITORY}:docker"
    copy = Provisioner(tmp_path / "copy-root", backend=BackendName.COPY)
    overlay_info = await overlay_provisioner.provision("c1", _docker_image(name))
    copy_info = await copy.provision("c1", _docker_image(name))
    assert describe_tree(overlay_info.rootfs) == describe_tree(copy_info.rootfs)
    await copy.destroy("c1")
    await overlay_provisioner.destroy("c1")


async def test_image_command_runs_in_the_rootfs(
    overlay_provisioner: Provisioner, registry: RegistryServer
) -> None:
    info = await overlay_provisioner.provision(
        "c1", _docker_image(f"{registry.host}/{WHITEOUT_REPOSITORY}:oci")
    )
    launch = apply_image_config(None, info.config)
    assert list(launch.command.arguments) == ["/bin/sh", "-c", "cat /etc/hostname"]
    assert launch.working_dir == "/data"
    argv = [
        *launch.command.arguments[:2],
        f"cd {launch.working_dir} && pwd && " + launch.command.arguments[2],
    ]
    chroot = require_binary("chroot")
    completed = await anyio.run_process(
        [chroot, str(info.rootfs), *argv], env=launch.environment, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.decode() == "/data\ntestimage\n"
    await overlay_provisioner.destroy("c1")


async def test_recover_remounts_known_and_destroys_unknown(
    overlay_provisioner: Provisioner, registry: RegistryServer, tmp_path: Path
) -> None:
    name = f"{registry.host}/{WHITEOUT_REPOSITORY}:oci"
    kept = await overlay_provisioner.provision("kept", _docker_image(name))
    orphan = await overlay_provisioner.provision("orphan", _docker_image(name))
    (kept.rootfs / "state").write_text("survives")
    # As after a reboot: the mount is gone, the upper dir is not.
    subprocess.run(["umount", str(kept.rootfs)], check=True)
    restarted = Provisioner(tmp_path / "root", backend=BackendName.OVERLAY)
    assert await restarted.recover({"kept"}) == {"kept"}
    assert is_mount_point(kept.rootfs)
    assert (kept.rootfs / "state").read_text() == "survives"
    assert not orphan.rootfs.parent.exists()
    store = await restarted.store()
    assert [lease.container_id for lease in await store.leases()] == ["kept"]
    await restarted.destroy("kept")


async def test_copy_backend_provision_and_recover(registry: RegistryServer, tmp_path: Path) -> None:
    provisioner = Provisioner(tmp_path, backend=BackendName.COPY)
    name = f"{registry.host}/{WHITEOUT_REPOSITORY}:oci"
    info = await provisioner.provision("c1", _docker_image(name))
    assert_whiteout_image_tree(info.rootfs)
    assert await Provisioner(tmp_path, backend=BackendName.COPY).recover({"c1"}) == {"c1"}
    assert info.rootfs.exists()
    assert await Provisioner(tmp_path, backend=BackendName.COPY).recover(set()) == set()
    assert not info.rootfs.exists()


async def test_provision_uses_the_cache_unless_told_not_to(
    registry: RegistryServer, tmp_path: Path
) -> None:
    provisioner = Provisioner(tmp_path, backend=BackendName.COPY)
    name = f"{registry.host}/{WHITEOUT_REPOSITORY}:oci"
    await provisioner.pull(name)
    # cached=true works offline: point the name at a registry that does not answer.
    store = await provisioner.store()
    record = await store.find(name)
    assert record is not None
    info = await provisioner.provision("c1", _docker_image(name))
    assert info.image == record
    await provisioner.destroy("c1")
    refreshed = await provisioner.provision("c2", _docker_image(name, cached=False))
    assert refreshed.image.stored_at_s > record.stored_at_s
    await provisioner.destroy("c2")


async def test_refusals(tmp_path: Path) -> None:
    provisioner = Provisioner(tmp_path, backend=BackendName.COPY)
    appc = mesos_pb2.Image(type=mesos_pb2.Image.APPC, appc=mesos_pb2.Image.Appc(name="x"))
    with pytest.raises(UnsupportedImageError, match="APPC images are not supported"):
        await provisioner.provision("c1", appc)
    with pytest.raises(ProvisionerError, match="invalid container id"):
        await provisioner.provision("../escape", _docker_image("busybox"))
    assert not (tmp_path / "provisioner/containers").exists() or not os.listdir(
        tmp_path / "provisioner/containers"
    )


async def test_mount_points_come_from_one_layer_shared_by_the_image_s_containers(
    overlay_provisioner: Provisioner, registry: RegistryServer, tmp_path: Path
) -> None:
    name = f"{registry.host}/{WHITEOUT_REPOSITORY}:oci"
    points = [
        MountPoint("/proc"),
        MountPoint("/mnt/mesos/sandbox"),
        MountPoint("/etc/hosts", directory=False),
        MountPoint("/data/keep", directory=False),  # the image has it: left alone
        MountPoint("/bin/sh/under-a-link"),  # bin/sh is a symlink: the launcher's job
    ]
    first = await overlay_provisioner.provision("c1", _docker_image(name), mount_points=points)
    second = await overlay_provisioner.provision("c2", _docker_image(name), mount_points=points)
    for info in (first, second):
        tree = describe_tree(info.rootfs)
        assert {"proc", "mnt/mesos/sandbox", "etc/hosts"} <= set(tree)
        assert set(tree) - WHITEOUT_IMAGE_PATHS == {
            "proc",
            "mnt",
            "mnt/mesos",
            "mnt/mesos/sandbox",
            "etc/hosts",
        }
        assert tree["data/keep"] == "file 0644 'keep\\n'"
        assert tree["etc/hostname"] == "file 0644 'testimage\\n'"
        # Nothing was made in the container's own upper directory.
        assert list((info.rootfs.parent / "upper").iterdir()) == []
    store = await overlay_provisioner.store()
    image_etc = store.layer_paths(first.image)[0] / "etc"
    assert os.stat(first.rootfs / "etc").st_mode == os.stat(image_etc).st_mode
    layers = list((tmp_path / "root" / "provisioner" / "mountpoints").iterdir())
    assert len(layers) == 1  # one per image and set of mount points
    (second.rootfs / "written").write_text("by the task")
    await overlay_provisioner.destroy("c1")
    await overlay_provisioner.destroy("c2")
    assert not first.rootfs.parent.exists() and not second.rootfs.parent.exists()
    # Once the image is gone, so is its mount point layer.
    await overlay_provisioner.prune_images([])
    assert list((tmp_path / "root" / "provisioner" / "mountpoints").iterdir()) == []
