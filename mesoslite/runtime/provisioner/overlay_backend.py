"""The overlayfs backend: layers are the read-only lowerdirs, each container gets its own
upperdir and workdir, and the merged mount is its root filesystem."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mesoslite.runtime.provisioner.layer_unpack import LayerFormat
from mesoslite.runtime.provisioner.mounts import (
    is_mount_point,
    mount,
    unmount,
    unmount_all_under,
)
from mesoslite.runtime.provisioner.rootfs_backend import BackendName, rootfs_path

__all__ = ["OverlayBackend"]

# mount(2) takes at most a page of options.
_MAX_MOUNT_OPTIONS_BYTES = 4000
# Characters overlayfs parses inside lowerdir= (separators and escapes).
_OVERLAY_SPECIAL_CHARACTERS = frozenset(",:\\")


class OverlayBackend:
    name = BackendName.OVERLAY
    layer_format = LayerFormat.OVERLAY

    def create(self, layers: list[Path], container_dir: Path) -> Path:
        for directory in ("upper", "work", "rootfs"):
            (container_dir / directory).mkdir(parents=True, exist_ok=True)
        self._mount(layers, container_dir)
        return rootfs_path(container_dir)

    def recover(self, layers: list[Path], container_dir: Path) -> Path:
        rootfs = rootfs_path(container_dir)
        if not is_mount_point(rootfs):
            self._mount(layers, container_dir)
        return rootfs

    def destroy(self, container_dir: Path) -> None:
        if not container_dir.exists():
            return
        try:
            # The usual case: our one mount (the container's own mounts live in its own
            # mount namespace). No scan of the mount table, which grows with every
            # running container.
            unmount(rootfs_path(container_dir))
            _remove_container_dir(container_dir)
        except OSError:
            # Something else is mounted below (a recovery stacked one): every mount goes.
            unmount_all_under(container_dir)
            shutil.rmtree(container_dir)

    def _mount(self, layers: list[Path], container_dir: Path) -> None:
        if not layers:
            # overlayfs needs a lowerdir: an image without layers gets an empty one.
            empty = container_dir / "empty"
            empty.mkdir(exist_ok=True)
            layers = [empty]
        # overlayfs lists the topmost layer first.
        lower_paths = [str(layer) for layer in reversed(layers)]
        upper = str(container_dir / "upper")
        work = str(container_dir / "work")
        options = f"lowerdir={':'.join(lower_paths)},upperdir={upper},workdir={work}"
        needs_short_names = len(options) > _MAX_MOUNT_OPTIONS_BYTES or any(
            character in _OVERLAY_SPECIAL_CHARACTERS
            for path in (*lower_paths, upper, work)
            for character in path
        )
        if not needs_short_names:
            mount("overlay", rootfs_path(container_dir), "overlay", 0, options)
            return
        # Long or awkward paths: name every directory by an open descriptor instead; the
        # kernel resolves them at mount time and keeps no reference to the names.
        descriptors = [
            os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            for path in (*lower_paths, upper, work)
        ]
        try:
            names = [f"/proc/self/fd/{fd}" for fd in descriptors]
            short_options = (
                f"lowerdir={':'.join(names[:-2])},upperdir={names[-2]},workdir={names[-1]}"
            )
            mount("overlay", rootfs_path(container_dir), "overlay", 0, short_options)
        finally:
            for fd in descriptors:
                os.close(fd)


def _remove_container_dir(container_dir: Path) -> None:
    """What an unmounted container directory usually holds (its record, an empty upper
    directory: the mount points come from a shared layer) in a few calls; anything else
    (what the task wrote) through rmtree. An rmdir of the rootfs fails (EBUSY) while
    something is still mounted there: that error goes to the caller."""
    os.rmdir(rootfs_path(container_dir))
    try:
        for name in ("upper", "work/work", "work"):
            os.rmdir(container_dir / name)
        for entry in os.listdir(container_dir):
            os.unlink(container_dir / entry)
        os.rmdir(container_dir)
    except OSError:
        shutil.rmtree(container_dir)
