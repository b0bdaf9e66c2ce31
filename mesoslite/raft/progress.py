"""What a leader knows about one follower's log, and how it paces appends to it.

A follower's `Progress` is in one of three states:

- PROBE: the leader does not know where the follower's log ends. It sends one append at a
  time and waits for the answer (or the next heartbeat answer) before sending another.
- REPLICATE: the logs agree up to `match`. The leader streams appends optimistically,
  moving `next` past what it sent, up to a window of `Inflights` unacknowledged messages.
- SNAPSHOT: the entries the follower needs are compacted; a snapshot is on its way and
  nothing else is sent until the follower answers or the shell reports the outcome.
"""

from __future__ import annotations

import enum
from collections import deque

__all__ = ["Inflights", "Progress", "ProgressState"]


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Inflights:
    """The window of append messages sent but not yet acknowledged, by last index."""

    __slots__ = ("_bytes", "_capacity_msgs", "_max_bytes", "_queue")

    def __init__(self, capacity_msgs: int, max_bytes: int = 0) -> None:
        if capacity_msgs < 1:
            raise ValueError("the inflight window must hold at least one message")
        self._capacity_msgs = capacity_msgs
        self._max_bytes = max_bytes  # 0: no byte limit
        self._queue: deque[tuple[int, int]] = deque()
        self._bytes = 0

    def add(self, last_index: int, size_bytes: int) -> None:
        if self._queue and last_index <= self._queue[-1][0]:
            raise ValueError("inflight messages must be added in index order")
        self._queue.append((last_index, size_bytes))
        self._bytes += size_bytes

    def free_le(self, index: int) -> None:
        """Acknowledge every message whose last index is <= `index`."""
        queue = self._queue
        while queue and queue[0][0] <= index:
            self._bytes -= queue.popleft()[1]

    def full(self) -> bool:
        return len(self._queue) >= self._capacity_msgs or (
            self._max_bytes > 0 and self._bytes >= self._max_bytes
        )

    def count(self) -> int:
        return len(self._queue)

    def reset(self) -> None:
        self._queue.clear()
        self._bytes = 0


class Progress:
    """Invariant: match < next. `next` may run ahead of what the follower holds."""

    __slots__ = (
        "inflights",
        "is_learner",
        "match",
        "msg_app_flow_paused",
        "next",
        "pending_snapshot",
        "recent_active",
        "state",
    )

    def __init__(
        self, next_index: int, inflights: Inflights, *, match: int = 0, is_learner: bool = False
    ) -> None:
        self.match = match
        self.next = next_index
        self.state = ProgressState.PROBE
        # PROBE: an append is in flight. REPLICATE: the inflight window is full. Either way
        # wait for an answer to it, or to the next heartbeat.
        self.msg_app_flow_paused = False
        self.pending_snapshot = 0
        # Heard from since the last check-quorum round (new peers start active).
        self.recent_active = True
        self.is_learner = is_learner
        self.inflights = inflights

    def __repr__(self) -> str:
        return (
            f"Progress(state={self.state.value}, match={self.match}, next={self.next}, "
            f"inflight={self.inflights.count()}, learner={self.is_learner})"
        )

    def _reset_state(self, state: ProgressState) -> None:
        self.msg_app_flow_paused = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            # The follower may or may not hold the snapshot: probe from just after it.
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def maybe_update(self, acked_index: int) -> bool:
        """Record an acknowledgement; True if `match` moved."""
        updated = False
        if self.match < acked_index:
            self.match = acked_index
            updated = True
            self.msg_app_flow_paused = False
        self.next = max(self.next, acked_index + 1)
        return updated

    def maybe_decrease_to(self, rejected_index: int, match_hint: int) -> bool:
        """Handle a rejected append for `rejected_index`; False if the rejection is stale.

        `match_hint` is the largest index at which the logs may still agree."""
        if self.state is ProgressState.REPLICATE:
            if rejected_index <= self.match:
                return False  # answers an append older than what we know matches
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected_index:
            return False  # not the probe we are waiting for
        self.next = max(min(rejected_index, match_hint + 1), self.match + 1)
        self.msg_app_flow_paused = False
        return True

    def sent_append(self, last_index: int | None, size_bytes: int) -> None:
        """An append went out; `last_index` is that of its last entry (None: empty)."""
        if self.state is ProgressState.REPLICATE:
            if last_index is not None:
                self.next = last_index + 1
                self.inflights.add(last_index, size_bytes)
            self.msg_app_flow_paused = self.inflights.full()
        elif self.state is ProgressState.PROBE:
            self.msg_app_flow_paused = True

    def acknowledged_up_to(self, index: int) -> None:
        """In REPLICATE: the follower holds everything up to `index`."""
        self.inflights.free_le(index)
        self.msg_app_flow_paused = self.inflights.full()

    def is_paused(self) -> bool:
        """Whether the leader should hold back appends. In REPLICATE with a full window a
        heartbeat answer unpauses the flow for one empty append: if every message in the
        window was lost, that append is what gets the follower to answer again."""
        if self.state is ProgressState.SNAPSHOT:
            return True
        return self.msg_app_flow_paused

    def reset(self, next_index: int, match: int) -> None:
        """Forget everything learned in an earlier term."""
        self._reset_state(ProgressState.PROBE)
        self.match = match
        self.next = next_index
        self.recent_active = False
