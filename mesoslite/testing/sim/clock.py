"""`SimClock`: simulated time and the queue of events that advances it.

Time is an integer count of steps; nothing reads a real clock. Events scheduled for the
same step run in the order they were scheduled, so a run is a pure function of its seed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

__all__ = ["SimClock"]

Callback = Callable[[], None]


class SimClock:
    __slots__ = ("_queue", "_sequence", "events_run", "now_steps")

    def __init__(self) -> None:
        self.now_steps = 0
        self.events_run = 0
        self._sequence = 0  # breaks ties between events of the same step: FIFO
        self._queue: list[tuple[int, int, Callback]] = []

    def call_at(self, at_steps: int, callback: Callback) -> None:
        if at_steps < self.now_steps:
            raise ValueError(f"cannot schedule at {at_steps}, it is already {self.now_steps}")
        self._sequence += 1
        heapq.heappush(self._queue, (at_steps, self._sequence, callback))

    def call_later(self, delay_steps: int, callback: Callback) -> None:
        if delay_steps < 0:
            raise ValueError(f"negative delay {delay_steps}")
        self._sequence += 1
        heapq.heappush(self._queue, (self.now_steps + delay_steps, self._sequence, callback))

    def run_until(self, end_steps: int) -> None:
        """Run every event due up to and including `end_steps`, then stop the clock there."""
        queue = self._queue
        pop = heapq.heappop
        while queue and queue[0][0] <= end_steps:
            at_steps, _, callback = pop(queue)
            self.now_steps = at_steps
            self.events_run += 1
            callback()
        self.now_steps = max(self.now_steps, end_steps)

    def pending_events(self) -> int:
        return len(self._queue)
