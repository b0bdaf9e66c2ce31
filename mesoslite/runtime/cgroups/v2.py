"""cgroup v2: one unified hierarchy; a container is one directory with every controller."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from mesoslite.runtime.cgroups.control_files import try_rmdir, write_control_file
from mesoslite.runtime.cgroups.layout import CgroupLayout

__all__ = ["CgroupsV2Manager"]

_SETTLE_SECONDS = 10.0
_POLL_SECONDS = 0.002


class CgroupsV2Manager:
    version = 2

    def __init__(self, layout: CgroupLayout) -> None:
        if layout.unified is None:
            raise ValueError("cgroup v2 layout without a unified hierarchy")
        self._layout = layout
        self._root = layout.unified

    @property
    def layout(self) -> CgroupLayout:
        return self._layout

    def available(self, controller: str) -> bool:
        # cpuacct and freezer are v1 names; v2 has their function built in.
        return controller in self._layout.v2_controllers or controller in ("cpuacct", "freezer")

    def directory(self, cgroup: str, controller: str) -> Path:
        return self._root / cgroup

    def create(self, cgroup: str, controllers: Iterable[str]) -> None:
        wanted = {c for c in controllers if c in self._layout.v2_controllers}
        directory = self._root / cgroup
        # Controllers must be enabled in every ancestor's subtree_control, top down.
        # (No process may live in those ancestors: the "no internal processes" rule.)
        parent = self._root
        for part in Path(cgroup).parts:
            enabled = set((parent / "cgroup.subtree_control").read_text().split())
            missing = wanted - enabled
            if missing:
                (parent / "cgroup.subtree_control").write_text(
                    " ".join(f"+{c}" for c in sorted(missing))
                )
            parent = parent / part
            parent.mkdir(exist_ok=True)
        assert parent == directory

    def join_files(self, cgroup: str, controllers: Iterable[str]) -> list[Path]:
        return [self._root / cgroup / "cgroup.procs"]

    def pids(self, cgroup: str, controller: str) -> list[int]:
        try:
            text = (self._root / cgroup / "cgroup.procs").read_text()
        except FileNotFoundError:
            return []
        return [int(line) for line in text.split()]

    def read(self, cgroup: str, controller: str, filename: str) -> str:
        return (self._root / cgroup / filename).read_text()

    def write(self, cgroup: str, controller: str, filename: str, value: str) -> None:
        write_control_file(self._root / cgroup / filename, value)

    def kill_all(self, cgroup: str) -> None:
        directory = self._root / cgroup
        if not directory.exists():
            return
        kill_file = directory / "cgroup.kill"
        deadline = time.monotonic() + _SETTLE_SECONDS
        while pids := self.pids(cgroup, "pids"):
            if kill_file.exists():
                # Kernel >= 5.14: kills the whole subtree atomically.
                kill_file.write_text("1")
            else:
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise TimeoutError(f"cgroup {cgroup} still has processes {pids}")
            time.sleep(_POLL_SECONDS)

    def try_remove(self, cgroup: str, controllers: Iterable[str]) -> bool:
        return try_rmdir(self._root / cgroup)

    def remove(self, cgroup: str, controllers: Iterable[str]) -> None:
        directory = self._root / cgroup
        deadline = time.monotonic() + _SETTLE_SECONDS
        while True:
            try:
                directory.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as error:
                if error.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(_POLL_SECONDS)
