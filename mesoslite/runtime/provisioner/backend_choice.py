"""Choosing the rootfs backend: overlay where a trial mount works, copy elsewhere."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from mesoslite.runtime.provisioner.copy_backend import CopyBackend
from mesoslite.runtime.provisioner.mounts import MountError, mount, unmount
from mesoslite.runtime.provisioner.overlay_backend import OverlayBackend
from mesoslite.runtime.provisioner.rootfs_backend import BackendName, RootfsBackend, is_root_user

__all__ = ["backend_named", "choose_backend", "overlay_works"]


def backend_named(name: BackendName | str) -> RootfsBackend:
    chosen = BackendName(name)
    if chosen is BackendName.OVERLAY:
        return OverlayBackend()
    return CopyBackend()


def overlay_works(scratch_dir: Path) -> bool:
    """True if this process can mount overlayfs with its upper dir in `scratch_dir` (which
    fails as non-root, without the module, or on a filesystem overlay cannot sit on)."""
    if not is_root_user():
        return False
    try:
        with open("/proc/filesystems", encoding="utf-8") as table:
            if not any(line.split()[-1:] == ["overlay"] for line in table):
                return False
    except OSError:
        return False
    probe = scratch_dir / f"overlay-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        for directory in ("lower", "upper", "work", "merged"):
            (probe / directory).mkdir(parents=True)
        options = f"lowerdir={probe / 'lower'},upperdir={probe / 'upper'},workdir={probe / 'work'}"
        try:
            mount("overlay", probe / "merged", "overlay", 0, options)
        except MountError:
            return False
        unmount(probe / "merged", detach=True)
        return True
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def choose_backend(requested: BackendName | str | None, scratch_dir: Path) -> RootfsBackend:
    """`requested` wins ("overlay" or "copy"); None or "auto" probes. Blocking."""
    if requested is not None and requested != "auto":
        return backend_named(requested)
    return backend_named(BackendName.OVERLAY if overlay_works(scratch_dir) else BackendName.COPY)
