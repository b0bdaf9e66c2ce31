"""One-shot timers on the master's clock, all fired by a single background task.

Failover timeouts, offer timeouts and agent re-registration deadlines come and go by
the thousand; a heap with lazy cancellation keeps each O(log n) instead of a task per
timer or a periodic scan of everything.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable

import anyio

__all__ = ["Timer", "Timers"]

log = logging.getLogger(__name__)


class Timer:
    """A scheduled callback; `cancel()` makes it a no-op."""

    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """Deadlines on `clock` (seconds); `run()` fires them as they come due."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()
        self._changed = anyio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(self._clock() + max(0.0, delay_s), callback)

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(deadline, callback)
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (deadline, next(self._sequence), timer))
        if earliest is None or deadline < earliest:
            self._changed.set()
        return timer

    def fire_due(self, now: float) -> int:
        """Run every timer whose deadline is <= now; returns how many ran."""
        fired = 0
        while self._heap and self._heap[0][0] <= now:
            _, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            timer.cancelled = True
            fired += 1
            try:
                timer.callback()
            except Exception:
                # One broken callback must not stop every later timer.
                log.exception("timer callback failed")
        return fired

    def next_deadline(self) -> float | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    async def run(self) -> None:
        while True:
            self.fire_due(self._clock())
            deadline = self.next_deadline()
            self._changed = anyio.Event()
            if deadline is None:
                await self._changed.wait()
                continue
            with anyio.move_on_after(max(0.0, deadline - self._clock())):
                await self._changed.wait()
