"""The agent's side of the container reaper: start it (once), launch through it, learn
exits from it. See `mesoslite.runtime.reaper` for why it exists."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from mesoslite.runtime.exits import ProcessHandle
from mesoslite.runtime.launcher import LaunchError
from mesoslite.runtime.linux_launcher import ChildPlan
from mesoslite.runtime.reaper_protocol import (
    MAX_MESSAGE_BYTES,
    decode,
    encode,
    read_exit_record,
    socket_path,
)
from mesoslite.runtime.spawn import SpawnSpec, posix_spawn

__all__ = ["ForkingThroughReaper", "ReaperClient", "SupervisedProcess", "reaper_command"]

# How long a freshly started reaper may take to open its socket.
_STARTUP_ATTEMPTS = 500
_STARTUP_POLL_SECONDS = 0.01


def reaper_command(runtime_dir: Path) -> list[str]:
    """How to start the reaper: the frozen binary runs it as a hidden command."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "_container-reaper", str(runtime_dir)]
    return [sys.executable, "-m", "mesoslite.runtime.reaper", str(runtime_dir)]


class SupervisedProcess:
    """A container process the reaper is the parent of."""

    def __init__(self, container_id: str, pid: int, pidfd: int | None) -> None:
        self.container_id = container_id
        self.pid = pid
        # For signals (never a recycled pid) and to notice the exit if the reaper is gone.
        self._pidfd = pidfd
        self.wait_status: int | None = None
        self._known = anyio.Event()
        self._reaper_lost = False

    def exited(self, wait_status: int | None) -> None:
        self.wait_status = wait_status
        self._known.set()

    def reaper_lost(self) -> None:
        self._reaper_lost = True
        self._known.set()

    def try_reap(self) -> int | None:
        return self.wait_status

    async def wait(self) -> int | None:
        await self._known.wait()
        if self.wait_status is None and self._reaper_lost and self._pidfd is not None:
            # Nobody will tell us the status any more: at least learn that it ended.
            await anyio.wait_readable(self._pidfd)
        return self.wait_status

    def send_signal(self, signal_number: int) -> None:
        if self._pidfd is not None and self.wait_status is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal_number)

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class ReaperClient:
    def __init__(self, runtime_dir: Path, command: list[str] | None = None) -> None:
        self._runtime_dir = runtime_dir
        self._command = command if command is not None else reaper_command(runtime_dir)
        self._socket: socket.socket | None = None
        self._reaper_process: ProcessHandle | None = None
        self._pending: dict[str, tuple[anyio.Event, list[tuple[Any, ...]]]] = {}
        self._watched: dict[str, SupervisedProcess] = {}
        self._send_lock = anyio.Lock()
        self._start_lock = anyio.Lock()

    @property
    def connected(self) -> bool:
        return self._socket is not None

    async def start(self, task_group: TaskGroup) -> None:
        """Connect to the running reaper, or start one and connect."""
        if self._socket is not None:
            return
        async with self._start_lock:
            if self._socket is None:
                await self._start(task_group)

    async def _start(self, task_group: TaskGroup) -> None:
        connection = self._try_connect()
        if connection is None:
            self._spawn_reaper(task_group)
            for _ in range(_STARTUP_ATTEMPTS):
                await anyio.sleep(_STARTUP_POLL_SECONDS)
                connection = self._try_connect()
                if connection is not None:
                    break
        if connection is None:
            raise LaunchError(f"the container reaper did not start ({' '.join(self._command)})")
        connection.setblocking(False)
        self._socket = connection
        task_group.start_soon(self._read_messages)

    def _try_connect(self) -> socket.socket | None:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            connection.connect(os.fspath(socket_path(self._runtime_dir)))
        except (FileNotFoundError, ConnectionRefusedError):
            connection.close()
            return None
        return connection

    def _spawn_reaper(self, task_group: TaskGroup) -> None:
        self._runtime_dir.mkdir(parents=True, exist_ok=True)
        log = self._runtime_dir / "reaper.log"
        environment = dict(os.environ)
        if not getattr(sys, "frozen", False):
            # `-m mesoslite...` must find the package the agent runs from.
            package_root = str(Path(__file__).resolve().parents[2])
            environment["PYTHONPATH"] = os.pathsep.join(
                p for p in (package_root, environment.get("PYTHONPATH")) if p
            )
        pid = posix_spawn(
            SpawnSpec(
                executable=self._command[0],
                argv=self._command,
                environment=environment,
                cwd=self._runtime_dir,
                stdout_path=log,
                stderr_path=log,
            )
        )
        # Our child until we exit: reap it if it ends first.
        handle = ProcessHandle(pid)
        self._reaper_process = handle

        async def reap() -> None:
            try:
                await handle.wait()
            finally:
                handle.close()

        task_group.start_soon(reap)

    async def _read_messages(self) -> None:
        assert self._socket is not None
        connection = self._socket
        try:
            while True:
                await anyio.wait_readable(connection)
                try:
                    data, fds, _, _ = socket.recv_fds(connection, MAX_MESSAGE_BYTES, 1)
                except BlockingIOError:
                    continue
                if not data:
                    break
                self._dispatch(decode(data), fds)
        finally:
            self._socket = None
            connection.close()
            for process in self._watched.values():
                process.reaper_lost()
            for event, replies in self._pending.values():
                replies.append(("failed", "", "the container reaper went away"))
                event.set()

    def _dispatch(self, message: tuple[Any, ...], fds: list[int]) -> None:
        kind, container_id = message[0], message[1]
        if kind in ("launched", "failed"):
            pending = self._pending.get(container_id)
            if pending is None:
                for fd in fds:
                    os.close(fd)
                return
            event, replies = pending
            replies.append((*message, fds[0] if fds else None))
            event.set()
        elif kind == "exited":
            process = self._watched.pop(container_id, None)
            if process is not None:
                process.exited(int(message[3]))

    async def _launch(
        self, kind: str, container_id: str, payload: object, record_exit: bool = True
    ) -> SupervisedProcess:
        if self._socket is None:
            raise LaunchError("not connected to the container reaper")
        event = anyio.Event()
        replies: list[tuple[Any, ...]] = []
        self._pending[container_id] = (event, replies)
        try:
            async with self._send_lock:
                await anyio.wait_writable(self._socket)
                self._socket.send(encode((kind, container_id, payload, record_exit)))
            await event.wait()
        finally:
            self._pending.pop(container_id, None)
        reply = replies[0]
        if reply[0] != "launched":
            raise LaunchError(str(reply[2]))
        process = SupervisedProcess(container_id, int(reply[2]), reply[3])
        self._watched[container_id] = process
        return process

    async def launch_posix(self, container_id: str, spec: SpawnSpec) -> SupervisedProcess:
        return await self._launch("posix", container_id, spec)

    async def launch_linux(self, container_id: str, plan: ChildPlan) -> SupervisedProcess:
        return await self._launch("linux", container_id, plan)

    def forking(self) -> ForkingThroughReaper:
        """A supervisor for containers that need no exit record (not checkpointed)."""
        return ForkingThroughReaper(self)

    def reattach(self, container_id: str, pid: int) -> SupervisedProcess | None:
        """Watch a container found again after a restart. None if its process is gone
        (its exit record, if the reaper wrote one, tells how it ended)."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        process = SupervisedProcess(container_id, pid, pidfd)
        # It may have ended between our reading its record and opening the pidfd.
        record = read_exit_record(self._runtime_dir, container_id)
        if record is not None and record[0] == pid:
            process.exited(record[1])
        elif self._socket is None:
            process.reaper_lost()
        else:
            self._watched[container_id] = process
        return process

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class ForkingThroughReaper:
    """The reaper as the linux launcher's fork for containers that are not checkpointed:
    a fork of the small reaper instead of the agent's heap, off the event loop; their
    exits are not recorded on disk."""

    def __init__(self, client: ReaperClient) -> None:
        self._client = client

    async def launch_posix(self, container_id: str, spec: SpawnSpec) -> SupervisedProcess:
        return await self._client._launch("posix", container_id, spec, record_exit=False)

    async def launch_linux(self, container_id: str, plan: ChildPlan) -> SupervisedProcess:
        return await self._client._launch("linux", container_id, plan, record_exit=False)
