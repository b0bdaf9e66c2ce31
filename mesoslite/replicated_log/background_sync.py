"""An `fdatasync` that runs in a thread of its own while the caller goes on working.

The Ready loop persists a leader's Ready on the event-loop thread (a thread hand-off per
Ready costs as much as the sync on a small VM) and sends the Ready's appends in the same
call. Sent first, the appends held the sync back: on 2 CPUs each follower the sends woke
often took the leader's CPU before its own `fdatasync` had even started, and the leader's
sync was then the last thing a commit waited for. `BackgroundSync.overlap` starts the
sync in a waiting thread (one lock release, no event-loop round trip), runs the sends on
the calling thread meanwhile and returns once both are done, so the caller still sees a
plain blocking "write, sync" with the sends inside it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

__all__ = ["BackgroundSync"]


class BackgroundSync:
    """One daemon thread that syncs a file descriptor when asked. One caller at a time."""

    __slots__ = ("_closed", "_error", "_fd", "_finished", "_start", "_thread")

    def __init__(self) -> None:
        # Two locks used as binary semaphores: the cheapest wake-up `threading` has.
        self._start = threading.Lock()
        self._start.acquire()
        self._finished = threading.Lock()
        self._finished.acquire()
        self._fd = -1
        self._error: BaseException | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def overlap(self, fd: int, work: Callable[[], None]) -> None:
        """`os.fdatasync(fd)` in the sync thread while `work()` runs here; returns when
        both are done. Raises the sync's error if it failed, else `work`'s, if any."""
        if self._closed:
            raise RuntimeError("the background sync is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wal-sync", daemon=True)
            self._thread.start()
        self._fd = fd
        self._error = None
        self._start.release()
        try:
            work()
        finally:
            self._finished.acquire()
            error, self._error = self._error, None
            if error is not None:
                raise error

    def close(self) -> None:
        """Stop the thread (not while `overlap` runs)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._start.release()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            self._start.acquire()
            if self._closed:
                return
            try:
                os.fdatasync(self._fd)
            except BaseException as error:
                self._error = error
            self._finished.release()
