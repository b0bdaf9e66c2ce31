"""The copy backend: each container gets a full copy of its image's layers, merged in order
with OCI whiteouts applied. Works wherever overlayfs does not (no root, nested overlay)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from mesoslite.runtime.provisioner.layer_unpack import (
    OPAQUE_MARKER,
    WHITEOUT_PREFIX,
    LayerFormat,
)
from mesoslite.runtime.provisioner.mounts import unmount_all_under
from mesoslite.runtime.provisioner.rootfs_backend import BackendName, is_root_user, rootfs_path

__all__ = ["CopyBackend", "apply_layer"]

_RECOVERY_MARKER = ".complete"


class CopyBackend:
    name = BackendName.COPY
    layer_format = LayerFormat.OCI

    def create(self, layers: list[Path], container_dir: Path) -> Path:
        rootfs = rootfs_path(container_dir)
        rootfs.mkdir(parents=True, exist_ok=True)
        for layer in layers:
            apply_layer(layer, rootfs)
        # A crash before this marker leaves a half-made copy that recover() redoes.
        (container_dir / _RECOVERY_MARKER).touch()
        return rootfs

    def recover(self, layers: list[Path], container_dir: Path) -> Path:
        if (container_dir / _RECOVERY_MARKER).exists():
            return rootfs_path(container_dir)
        self.destroy(container_dir)
        container_dir.mkdir(parents=True)
        return self.create(layers, container_dir)

    def destroy(self, container_dir: Path) -> None:
        if not container_dir.exists():
            return
        # Never delete through a bind mount the container left behind.
        unmount_all_under(container_dir)
        shutil.rmtree(container_dir)


def apply_layer(layer: Path, rootfs: Path) -> None:
    """Merge one OCI-form layer onto `rootfs`: first its whiteouts remove what lower layers
    put there (a whiteout never hides content of its own layer), then its content is copied.
    Symlinks in `rootfs` are never followed: a path this layer makes a directory replaces
    whatever non-directory lower layers had there, as overlayfs would show it."""
    _apply_whiteouts(layer, rootfs)
    _copy_content(layer, rootfs)


def _real_directory(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _directory_inside(rootfs: Path, relative: str) -> str | None:
    """rootfs/relative if every component of it is a real directory (no symlink on the
    way that could lead out of the rootfs), else None."""
    path = str(rootfs)
    if relative == ".":
        return path
    for component in relative.split(os.sep):
        path = os.path.join(path, component)
        if not _real_directory(path):
            return None
    return path


def _remove(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _apply_whiteouts(layer: Path, rootfs: Path) -> None:
    for directory, subdirectories, files in os.walk(layer):
        whiteouts = [name for name in files if name.startswith(WHITEOUT_PREFIX)]
        if not whiteouts:
            continue
        target_directory = _directory_inside(rootfs, os.path.relpath(directory, layer))
        if target_directory is None:
            # Nothing below to hide (or a symlink there that this layer will replace).
            continue
        if OPAQUE_MARKER in whiteouts:
            for entry in os.listdir(target_directory):
                _remove(os.path.join(target_directory, entry))
        for name in whiteouts:
            if name == OPAQUE_MARKER or name.startswith(".wh..wh."):
                continue
            hidden = name[len(WHITEOUT_PREFIX) :]
            if hidden in files or hidden in subdirectories:
                continue  # same-layer content wins over its own whiteout
            _remove(os.path.join(target_directory, hidden))


def _copy_content(layer: Path, rootfs: Path) -> None:
    copied_inodes: dict[tuple[int, int], str] = {}
    directories: list[tuple[str, os.stat_result]] = []
    root_owner = is_root_user()
    for directory, subdirectories, files in os.walk(layer):
        relative = os.path.relpath(directory, layer)
        target_directory = os.path.normpath(os.path.join(rootfs, relative))
        directory_stat = os.lstat(directory)
        if relative != "." and not _real_directory(target_directory):
            _remove(target_directory)
            os.mkdir(target_directory, 0o700)
        directories.append((target_directory, directory_stat))
        # os.walk lists symlinks to directories among subdirectories: copy them as links.
        for name in [*files, *subdirectories]:
            if name.startswith(WHITEOUT_PREFIX):
                continue
            source = os.path.join(directory, name)
            source_stat = os.lstat(source)
            if stat.S_ISDIR(source_stat.st_mode):
                continue
            target = os.path.join(target_directory, name)
            _remove(target)
            inode = (source_stat.st_dev, source_stat.st_ino)
            if source_stat.st_nlink > 1 and inode in copied_inodes:
                os.link(copied_inodes[inode], target, follow_symlinks=False)
                continue
            _copy_entry(source, source_stat, target, root_owner)
            if source_stat.st_nlink > 1:
                copied_inodes[inode] = target
    # Directory metadata last: adding entries changes a directory's mtime.
    for target_directory, directory_stat in reversed(directories):
        if root_owner:
            os.lchown(target_directory, directory_stat.st_uid, directory_stat.st_gid)
        os.chmod(target_directory, stat.S_IMODE(directory_stat.st_mode))
        os.utime(
            target_directory,
            ns=(directory_stat.st_atime_ns, directory_stat.st_mtime_ns),
            follow_symlinks=False,
        )


def _copy_entry(source: str, source_stat: os.stat_result, target: str, root_owner: bool) -> None:
    mode = source_stat.st_mode
    if stat.S_ISREG(mode):
        shutil.copyfile(source, target, follow_symlinks=False)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(source), target)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        try:
            os.mknod(target, mode, source_stat.st_rdev)
        except PermissionError:
            return
    else:
        return  # sockets: nothing to copy
    if root_owner:
        os.lchown(target, source_stat.st_uid, source_stat.st_gid)
    # After chown, which clears setuid/setgid bits and file capabilities: mode, times, xattrs.
    shutil.copystat(source, target, follow_symlinks=False)
