"""Advisory file locks (flock) that an event loop can wait on without blocking.

flock() locks belong to an open file description, so two tasks of one process that each
open the lock file exclude each other just as two processes do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import anyio

__all__ = ["FileLock"]

_FIRST_POLL_INTERVAL_S = 0.01
_MAX_POLL_INTERVAL_S = 0.25


class FileLock:
    """`async with FileLock(path):` exclusive; `FileLock(path, shared=True)` shared."""

    def __init__(self, path: Path, *, shared: bool = False) -> None:
        self.path = path
        self._operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        self._fd: int | None = None

    async def acquire(self) -> None:
        # Opening and a non-blocking flock are quick; waiting is done by polling so that the
        # wait is cancellable and holds no worker thread.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        interval_s = _FIRST_POLL_INTERVAL_S
        try:
            while True:
                try:
                    fcntl.flock(fd, self._operation | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await anyio.sleep(interval_s)
                    interval_s = min(interval_s * 2, _MAX_POLL_INTERVAL_S)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    @contextlib.contextmanager
    def held_blocking(self) -> Iterator[None]:
        """Hold it for a block of a worker thread (which may block waiting for it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, self._operation)
            yield
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            # Closing the descriptor drops the lock.
            os.close(self._fd)
            self._fd = None

    async def __aenter__(self) -> FileLock:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
