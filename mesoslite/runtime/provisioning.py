"""The seam to the image provisioner: an image in, a root filesystem directory out.

`mesoslite.runtime.provisioner.Provisioner` implements it (its ProvisionInfo has the
two attributes the containerizer reads); the containerizer only needs these calls.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Protocol

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.isolator import MountPoint
from mesoslite.runtime.provisioner.image_config import ImageConfig

__all__ = ["ImageProvisioner", "ProvisionedImage"]


class ProvisionedImage(Protocol):
    @property
    def rootfs(self) -> Path:
        """The container's root filesystem on the host."""
        ...

    @property
    def config(self) -> ImageConfig:
        """The image's runtime defaults (Entrypoint, Cmd, Env, WorkingDir, User)."""
        ...


class ImageProvisioner(Protocol):
    async def provision(
        self, container_id: str, image: mesos_pb2.Image, *, mount_points: Sequence[MountPoint] = ()
    ) -> ProvisionedImage:
        """Make the image's root filesystem for this container; `mount_points` are what
        the launcher will mount on (a provisioner may have them in place already)."""
        ...

    async def destroy(self, container_id: str) -> None:
        """Release the container's root filesystem (tolerates unknown ids)."""
        ...

    async def recover(self, known_ids: Collection[str]) -> set[str]:
        """Keep the root filesystems of `known_ids`, destroy the rest."""
        ...

    async def prune_images(self, excluded_images: list[mesos_pb2.Image]) -> None:
        """Remove images no container uses, except `excluded_images`."""
        ...
