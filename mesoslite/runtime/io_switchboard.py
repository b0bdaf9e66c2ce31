"""The I/O switchboard: a container's stdin, stdout and stderr relayed to attached clients.

Mesos runs one `mesos-io-switchboard` process per container; here the relay lives in
the agent's event loop (a coroutine per output descriptor, no process, no thread). A
container gets a switchboard when it has a TTY (ContainerInfo.tty_info) or is a DEBUG
container (a `task exec` session):

* with a TTY its stdin, stdout and stderr are the slave side of one pseudo terminal
  (its controlling terminal), and everything it prints comes back as STDOUT;
* otherwise they are three pipes.

Output goes to the container's sandbox `stdout`/`stderr` files, as without a
switchboard, and to every attached client (agent.ProcessIO DATA records), with a
HEARTBEAT control record every 30 seconds so that idle connections stay open. A DEBUG
container's output is not read until its first client attaches, so nothing it prints
before is lost. One client at a time may send input: STDIN data is written to the
container; empty data closes its stdin (with a TTY the client sends EOT instead);
TTY_INFO resizes the terminal.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import anyio
from anyio.abc import TaskGroup
from google.protobuf.message import Message

from mesoslite.proto import agent_pb2, mesos_pb2
from mesoslite.runtime.api import ContainerClass, ContainerConfig
from mesoslite.runtime.launch_types import ContainerStdio

__all__ = [
    "FINISH_GRACE_S",
    "HEARTBEAT_INTERVAL_S",
    "ContainerStdio",
    "IOSwitchboard",
    "InputConflictError",
    "OutputSink",
    "SwitchboardInputError",
    "needs_switchboard",
]

# Mesos' --http_heartbeat_interval default.
HEARTBEAT_INTERVAL_S = 30.0
# How long an ended container's switchboard waits for its last output to be read (and,
# for a DEBUG container, for its first client), as Mesos' switchboard does.
FINISH_GRACE_S = 5.0
_READ_BYTES = 65536
_ProcessIO = agent_pb2.ProcessIO


def needs_switchboard(config: ContainerConfig) -> bool:
    """Mesos' `IOSwitchboard::requiresServer`: a TTY, or a DEBUG container."""
    if config.container_class is ContainerClass.DEBUG:
        return True
    return config.container_info is not None and config.container_info.HasField("tty_info")


class OutputSink(Protocol):
    """An attached output client (an event stream of ProcessIO records)."""

    def send(self, message: Message) -> bool:
        """Queue a record; False once the client is gone."""
        ...

    def close(self) -> None: ...


class InputConflictError(Exception):
    """Another client is already attached to the container's input."""

    def __init__(self) -> None:
        super().__init__("Multiple input connections are not allowed")


class SwitchboardInputError(Exception):
    """Input the container cannot take (stdin closed, a window size without a TTY)."""


def _set_window_size(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def _open_log(directory: Path, name: str) -> int:
    return os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class IOSwitchboard:
    def __init__(
        self,
        container_id: str,
        *,
        tty_info: mesos_pb2.TTYInfo | None,
        log_directory: Path | None,
        wait_for_connection: bool,
        heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
    ) -> None:
        """`log_directory`: where the output is also appended (the sandbox), or None.
        `wait_for_connection`: read no output before the first client attaches."""
        self.container_id = container_id
        self.tty = tty_info is not None
        self._tty_info = tty_info
        self._log_directory = log_directory
        self._heartbeat_interval_s = heartbeat_interval_s
        self._sinks: list[OutputSink] = []
        self._stdin: int | None = None
        # (descriptor, kind, log descriptor) per output stream.
        self._outputs: list[tuple[int, _ProcessIO.Data.Type.ValueType, int | None]] = []
        self._child_ends: list[int] = []
        self._redirecting = anyio.Event()
        if not wait_for_connection:
            self._redirecting.set()
        self._outputs_open = 0
        self._output_done = anyio.Event()
        self._input_attached = False
        self._scope: anyio.CancelScope | None = None
        self._closed = False

    # -- set-up ------------------------------------------------------------------------

    def open(self) -> ContainerStdio:
        """Make the pipes or the pseudo terminal; returns the container's ends."""
        logs: dict[str, int | None] = {"stdout": None, "stderr": None}
        try:
            if self._log_directory is not None:
                for name in logs:
                    logs[name] = _open_log(self._log_directory, name)
            if self._tty_info is not None:
                master, slave = os.openpty()
                os.set_blocking(master, False)
                self._stdin = master
                self._outputs = [(master, _ProcessIO.Data.STDOUT, logs["stdout"])]
                if logs["stderr"] is not None:
                    os.close(logs["stderr"])
                self._child_ends = [slave]
                if self._tty_info.HasField("window_size"):
                    size = self._tty_info.window_size
                    _set_window_size(master, size.rows, size.columns)
                stdio = ContainerStdio(slave, slave, slave, tty=True)
            else:
                stdin_read, stdin_write = os.pipe2(os.O_CLOEXEC)
                stdout_read, stdout_write = os.pipe2(os.O_CLOEXEC)
                stderr_read, stderr_write = os.pipe2(os.O_CLOEXEC)
                for fd in (stdin_write, stdout_read, stderr_read):
                    os.set_blocking(fd, False)
                self._stdin = stdin_write
                self._outputs = [
                    (stdout_read, _ProcessIO.Data.STDOUT, logs["stdout"]),
                    (stderr_read, _ProcessIO.Data.STDERR, logs["stderr"]),
                ]
                self._child_ends = [stdin_read, stdout_write, stderr_write]
                stdio = ContainerStdio(stdin_read, stdout_write, stderr_write, tty=False)
        except BaseException:
            self.close()
            raise
        self._outputs_open = len(self._outputs)
        return stdio

    def start(self, task_group: TaskGroup) -> None:
        """After the container's process exists: drop our copies of its ends (so that
        its exit reads as EOF) and start relaying."""
        for fd in self._child_ends:
            os.close(fd)
        self._child_ends = []
        task_group.start_soon(self._run)

    async def _run(self) -> None:
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self._closed:
                    return
                async with anyio.create_task_group() as group:
                    group.start_soon(self._heartbeats)
                    for fd, kind, log_fd in self._outputs:
                        group.start_soon(self._relay, fd, kind, log_fd)
        finally:
            # Only once no relay waits on them: a closed number could be reused at once.
            self._scope = None
            if self._closed:
                self._close_descriptors()

    async def _heartbeats(self) -> None:
        heartbeat = _ProcessIO(type=_ProcessIO.CONTROL)
        heartbeat.control.type = _ProcessIO.Control.HEARTBEAT
        heartbeat.control.heartbeat.interval.nanoseconds = int(self._heartbeat_interval_s * 1e9)
        while True:
            await anyio.sleep(self._heartbeat_interval_s)
            self._broadcast(heartbeat)

    async def _relay(
        self, fd: int, kind: _ProcessIO.Data.Type.ValueType, log_fd: int | None
    ) -> None:
        await self._redirecting.wait()
        try:
            while True:
                try:
                    data = os.read(fd, _READ_BYTES)
                except BlockingIOError:
                    await anyio.wait_readable(fd)
                    continue
                except OSError as error:
                    # A pseudo terminal's master reads EIO once every slave is closed.
                    if error.errno == errno.EIO:
                        break
                    raise
                if not data:
                    break
                if log_fd is not None:
                    # The sandbox file is local and the write small: done on the loop.
                    _write_all(log_fd, data)
                message = _ProcessIO(type=_ProcessIO.DATA)
                message.data.type = kind
                message.data.data = data
                self._broadcast(message)
        finally:
            self._outputs_open -= 1
            if self._outputs_open == 0:
                self._output_done.set()
                self._end_sinks()

    def _broadcast(self, message: Message) -> None:
        self._sinks = [sink for sink in self._sinks if sink.send(message)]

    def _end_sinks(self) -> None:
        sinks, self._sinks = self._sinks, []
        for sink in sinks:
            sink.close()

    # -- clients -----------------------------------------------------------------------

    @property
    def output_ended(self) -> bool:
        return self._output_done.is_set() or self._closed

    async def wait_output_ended(self) -> None:
        await self._output_done.wait()

    def attach_output(self, sink: OutputSink) -> None:
        """Send `sink` everything the container prints from now on; it is closed when
        the output ends (at once if it already has)."""
        if self.output_ended:
            sink.close()
            return
        self._sinks.append(sink)
        self._redirecting.set()

    @contextlib.contextmanager
    def input_connection(self) -> Iterator[None]:
        """Hold the container's input for one client (InputConflictError otherwise)."""
        if self._input_attached:
            raise InputConflictError()
        self._input_attached = True
        try:
            yield
        finally:
            self._input_attached = False

    async def write_stdin(self, data: bytes) -> None:
        fd = self._stdin
        if fd is None:
            raise SwitchboardInputError("the container's stdin is closed")
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                await anyio.wait_writable(fd)

    def close_stdin(self) -> None:
        """EOF on a pipe; with a TTY the client sends EOT (^D) instead."""
        if self.tty or self._stdin is None:
            return
        os.close(self._stdin)
        self._stdin = None

    def set_window_size(self, rows: int, columns: int) -> None:
        if not self.tty or self._stdin is None:
            raise SwitchboardInputError("the container has no TTY")
        _set_window_size(self._stdin, rows, columns)

    # -- the end -----------------------------------------------------------------------

    async def finish(self, grace_s: float = FINISH_GRACE_S) -> None:
        """After the container's process ended: give the output `grace_s` to drain
        (and a DEBUG container's first client that long to attach), then close."""
        with anyio.move_on_after(grace_s):
            await self._redirecting.wait()
            await self._output_done.wait()
        self.close()

    def close(self) -> None:
        """Stop relaying, end every client's stream, close every descriptor."""
        if self._closed:
            return
        self._closed = True
        self._end_sinks()
        self._output_done.set()
        if self._scope is not None:
            self._scope.cancel()  # _run closes the descriptors on its way out
        else:
            self._close_descriptors()

    def _close_descriptors(self) -> None:
        descriptors = {fd for fd, _, _ in self._outputs}
        descriptors.update(log_fd for _, _, log_fd in self._outputs if log_fd is not None)
        descriptors.update(self._child_ends)
        if self._stdin is not None:
            descriptors.add(self._stdin)
        self._outputs, self._child_ends, self._stdin = [], [], None
        for fd in descriptors:
            with contextlib.suppress(OSError):
                os.close(fd)
