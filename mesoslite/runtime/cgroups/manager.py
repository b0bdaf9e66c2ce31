"""The CgroupManager seam: create, join, read/write, kill and remove one container's
cgroup, whatever the cgroup version. A cgroup is named by its path relative to the
hierarchy root, e.g. "mesoslite/<container id>"."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from mesoslite.runtime.cgroups.layout import CgroupLayout, CgroupMode

__all__ = ["CgroupManager", "manager_for_layout"]


class CgroupManager(Protocol):
    @property
    def version(self) -> int: ...

    @property
    def layout(self) -> CgroupLayout: ...

    def available(self, controller: str) -> bool: ...

    def directory(self, cgroup: str, controller: str) -> Path:
        """Where `controller`'s files for `cgroup` live."""
        ...

    def create(self, cgroup: str, controllers: Iterable[str]) -> None:
        """Make the cgroup in every hierarchy that holds one of `controllers`."""
        ...

    def join_files(self, cgroup: str, controllers: Iterable[str]) -> list[Path]:
        """The files a single-threaded process writes "0" into to join the cgroup."""
        ...

    def pids(self, cgroup: str, controller: str) -> list[int]: ...

    def read(self, cgroup: str, controller: str, filename: str) -> str: ...

    def write(self, cgroup: str, controller: str, filename: str, value: str) -> None: ...

    def kill_all(self, cgroup: str) -> None:
        """SIGKILL every process in the cgroup and wait until it is empty (blocking)."""
        ...

    def remove(self, cgroup: str, controllers: Iterable[str]) -> None:
        """rmdir the cgroup (tolerates its absence), waiting while it is still busy."""
        ...

    def try_remove(self, cgroup: str, controllers: Iterable[str]) -> bool:
        """One rmdir attempt without waiting (cheap enough for the event loop); False
        while a directory is still busy (then use remove() in a worker thread)."""
        ...


def manager_for_layout(layout: CgroupLayout) -> CgroupManager:
    from mesoslite.runtime.cgroups.v1 import CgroupsV1Manager
    from mesoslite.runtime.cgroups.v2 import CgroupsV2Manager

    if layout.mode is CgroupMode.V2:
        return CgroupsV2Manager(layout)
    return CgroupsV1Manager(layout)
