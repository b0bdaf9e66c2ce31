"""How a container's root filesystem is made from unpacked layers: the backend seam, and
choosing overlay where it works, copy elsewhere."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from mesoslite.runtime.provisioner.layer_unpack import LayerFormat

__all__ = ["BackendName", "RootfsBackend", "is_root_user", "rootfs_path"]


class BackendName(StrEnum):
    OVERLAY = "overlay"
    COPY = "copy"


class RootfsBackend(Protocol):
    name: BackendName
    # The unpacked-layer form this backend reads.
    layer_format: LayerFormat

    def create(self, layers: list[Path], container_dir: Path) -> Path:
        """Build the rootfs inside `container_dir` (empty, owned by this backend) from
        `layers`, bottom first; returns the rootfs directory. Blocking."""
        ...

    def recover(self, layers: list[Path], container_dir: Path) -> Path:
        """After an agent restart: make sure the rootfs made by `create` is usable again
        (remount if the machine rebooted); returns its directory. Blocking."""
        ...

    def destroy(self, container_dir: Path) -> None:
        """Unmount and delete everything in `container_dir`. Blocking; idempotent."""
        ...


def rootfs_path(container_dir: Path) -> Path:
    return container_dir / "rootfs"


def is_root_user() -> bool:
    return os.geteuid() == 0
