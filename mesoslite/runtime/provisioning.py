"""The seam to the image provisioner: an image in, a root filesystem directory out."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from mesoslite.proto import mesos_pb2

__all__ = ["Provisioner"]


class Provisioner(Protocol):
    async def provision(self, container_id: str, image: mesos_pb2.Image) -> Path:
        """Make the image's root filesystem for this container; returns its directory."""
        ...

    async def destroy(self, container_id: str) -> None:
        """Release the container's root filesystem (tolerates unknown ids)."""
        ...
