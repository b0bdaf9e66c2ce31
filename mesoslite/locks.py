"""A lock for the event loop's hot paths.

anyio's Lock costs a handful of `asyncio.current_task()` calls per acquire and release
even uncontended, and on Python 3.11 each of those is a getpid() syscall (the running
loop's fork check). The status update paths take a lock per update (three per task), so
`FastLock` takes an uncontended lock with no call at all. Contended, waiters queue in
order and the lock is handed to the first one on release. It is not reentrant and has
no owner check; use it from one event loop's thread.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType

import anyio

__all__ = ["FastLock"]


class FastLock:
    __slots__ = ("_locked", "_waiters")

    def __init__(self) -> None:
        self._locked = False
        self._waiters: deque[anyio.Event] = deque()

    def locked(self) -> bool:
        return self._locked

    async def acquire(self) -> None:
        if not self._locked:
            self._locked = True
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()  # set by release(): the lock is ours
        except BaseException:
            if event.is_set():
                self.release()  # handed to us as we were cancelled: pass it on
            else:
                self._waiters.remove(event)
            raise

    def release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # stays locked, now the waiter's
        else:
            self._locked = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
