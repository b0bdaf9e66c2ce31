"""cgroup v1 (and hybrid): one hierarchy per controller, one directory per hierarchy."""

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

__all__ = ["CgroupsV1Manager"]

# How long kill_all/remove keep retrying, and how often (processes take a moment to
# leave a cgroup after SIGKILL; rmdir answers EBUSY until they have).
_SETTLE_SECONDS = 10.0
_POLL_SECONDS = 0.002


class CgroupsV1Manager:
    version = 1

    def __init__(self, layout: CgroupLayout) -> None:
        self._layout = layout

    @property
    def layout(self) -> CgroupLayout:
        return self._layout

    def available(self, controller: str) -> bool:
        return controller in self._layout.v1_hierarchies

    def directory(self, cgroup: str, controller: str) -> Path:
        try:
            hierarchy = self._layout.v1_hierarchies[controller]
        except KeyError:
            raise FileNotFoundError(f"no cgroup v1 hierarchy has {controller!r}") from None
        return hierarchy / cgroup

    def _directories(self, cgroup: str, controllers: Iterable[str]) -> list[Path]:
        # Controllers co-mounted in one hierarchy share a directory: list it once.
        seen: dict[Path, None] = {}
        for controller in controllers:
            seen.setdefault(self.directory(cgroup, controller), None)
        return list(seen)

    def create(self, cgroup: str, controllers: Iterable[str]) -> None:
        for directory in self._directories(cgroup, controllers):
            directory.mkdir(parents=True, exist_ok=True)

    def join_files(self, cgroup: str, controllers: Iterable[str]) -> list[Path]:
        # `tasks`, not `cgroup.procs`: moving a whole thread group takes the cgroup
        # threadgroup rwsem for writing, an RCU grace period per write (measured: 8-14 ms
        # for six hierarchies, against 0.6 ms through `tasks`). The joiner is a freshly
        # forked, single-threaded child, so moving its one thread moves the process.
        return [d / "tasks" for d in self._directories(cgroup, controllers)]

    def pids(self, cgroup: str, controller: str) -> list[int]:
        try:
            text = (self.directory(cgroup, controller) / "cgroup.procs").read_text()
        except FileNotFoundError:
            return []
        return [int(line) for line in text.split()]

    def read(self, cgroup: str, controller: str, filename: str) -> str:
        return (self.directory(cgroup, controller) / filename).read_text()

    def write(self, cgroup: str, controller: str, filename: str, value: str) -> None:
        write_control_file(self.directory(cgroup, controller) / filename, value)

    def _tracking_controller(self) -> str:
        for controller in ("freezer", "pids", "memory", "cpu", "cpuacct", "devices"):
            if self.available(controller):
                return controller
        raise FileNotFoundError("no cgroup v1 hierarchy to track processes in")

    def kill_all(self, cgroup: str) -> None:
        controller = self._tracking_controller()
        if not self.pids(cgroup, controller):
            # The usual case once the main process is reaped: nothing to freeze.
            return
        frozen = controller == "freezer" and self.directory(cgroup, controller).exists()
        deadline = time.monotonic() + _SETTLE_SECONDS
        if frozen:
            # Frozen processes cannot fork between our reading the list and the kill.
            self.write(cgroup, "freezer", "freezer.state", "FROZEN")
            while self.read(cgroup, "freezer", "freezer.state").strip() != "FROZEN":
                if time.monotonic() > deadline:
                    break
                time.sleep(_POLL_SECONDS)
        try:
            while pids := self.pids(cgroup, controller):
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                if frozen:
                    frozen = False
                    self.write(cgroup, "freezer", "freezer.state", "THAWED")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"cgroup {cgroup} still has processes {pids}")
                time.sleep(_POLL_SECONDS)
        finally:
            if frozen:
                self.write(cgroup, "freezer", "freezer.state", "THAWED")

    def remove(self, cgroup: str, controllers: Iterable[str]) -> None:
        for directory in self._directories(cgroup, controllers):
            _rmdir_when_empty(directory)

    def try_remove(self, cgroup: str, controllers: Iterable[str]) -> bool:
        return all(try_rmdir(directory) for directory in self._directories(cgroup, controllers))


def _rmdir_when_empty(directory: Path) -> None:
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
