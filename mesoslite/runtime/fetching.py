"""The seam to the URI fetcher that fills a sandbox before the task runs."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from mesoslite.proto import mesos_pb2

__all__ = ["Fetcher"]


class Fetcher(Protocol):
    async def fetch(
        self,
        container_id: str,
        uris: list[mesos_pb2.CommandInfo.URI],
        sandbox: Path,
        user: str | None,
    ) -> None:
        """Download (and extract, chmod) every URI into the sandbox; raise on failure."""
        ...
