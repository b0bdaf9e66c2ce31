"""Waiting for a child's exit without a thread: a pidfd on the event loop.

asyncio's default child watcher on 3.11 parks one thread per child in waitpid(); a
pidfd becomes readable when the process exits, so the loop's selector does the waiting
and the reap is one non-blocking waitpid().
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Protocol

import anyio

__all__ = ["ProcessHandle", "WatchedProcess", "describe_wait_status", "exit_code_of"]


class WatchedProcess(Protocol):
    """A container's main process whose exit we learn (ours to reap, or the reaper's)."""

    pid: int
    wait_status: int | None

    def try_reap(self) -> int | None:
        """The wait status if it is known to have exited, else None."""
        ...

    async def wait(self) -> int | None:
        """The wait status once it has exited (None: it exited, status unknown)."""
        ...

    def send_signal(self, signal_number: int) -> None: ...

    def close(self) -> None: ...


class ProcessHandle:
    """A child we started and will reap. Open it before anything could reap the pid."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        # Safe against pid reuse: the pid stays ours until we reap it.
        self._pidfd: int | None = os.pidfd_open(pid)
        self.wait_status: int | None = None

    def fileno(self) -> int:
        if self._pidfd is None:
            raise ValueError("process handle is closed")
        return self._pidfd

    def try_reap(self) -> int | None:
        """Reap if it has exited; returns the wait status or None while it runs."""
        if self.wait_status is not None:
            return self.wait_status
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            # Someone else reaped it (should not happen): the status is lost.
            self.wait_status = -1
            return None
        if pid == 0:
            return None
        self.wait_status = status
        return status

    async def wait(self) -> int | None:
        """The raw wait status once it has exited (None if it was lost)."""
        while self.wait_status is None:
            await anyio.wait_readable(self.fileno())
            self.try_reap()
        return None if self.wait_status == -1 else self.wait_status

    def send_signal(self, signal_number: int) -> None:
        """Signal the process itself (through the pidfd: never a recycled pid)."""
        if self._pidfd is None:
            return
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._pidfd, signal_number)

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def exit_code_of(wait_status: int) -> int | None:
    """The exit code, or None when a signal ended it."""
    return os.waitstatus_to_exitcode(wait_status) if os.WIFEXITED(wait_status) else None


def describe_wait_status(wait_status: int | None) -> str:
    """Mesos' wording: "Command exited with status N" / "terminated with signal X"."""
    if wait_status is None:
        return "Command terminated with unknown status"
    if os.WIFEXITED(wait_status):
        return f"Command exited with status {os.WEXITSTATUS(wait_status)}"
    if os.WIFSIGNALED(wait_status):
        number = os.WTERMSIG(wait_status)
        try:
            name = signal.strsignal(number) or signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"Command terminated with signal {name}"
    return f"Command ended with wait status {wait_status}"
