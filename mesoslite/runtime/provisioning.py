"""The seam to the image provisioner: an image in, a root filesystem directory out.

`mesoslite.runtime.provisioner.Provisioner` implements it; the containerizer only
needs these three calls.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.provisioner.provisioner import ProvisionInfo

__all__ = ["ImageProvisioner", "ProvisionInfo"]


class ImageProvisioner(Protocol):
    async def provision(self, container_id: str, image: mesos_pb2.Image) -> ProvisionInfo:
        """Make the image's root filesystem for this container."""
        ...

    async def destroy(self, container_id: str) -> None:
        """Release the container's root filesystem (tolerates unknown ids)."""
        ...

    async def recover(self, known_ids: Collection[str]) -> set[str]:
        """Keep the root filesystems of `known_ids`, destroy the rest."""
        ...
