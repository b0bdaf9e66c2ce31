"""ReadIndex bookkeeping on the leader (Raft dissertation §6.4).

A read arriving at the leader records the current commit index. The leader then sends a
heartbeat round carrying the read's context; once a majority answers, no other leader can
have committed anything newer at that moment, so the read may be served as soon as the
state machine has applied the recorded index. Requests are answered in arrival order: a
majority acknowledging a later request also confirms every earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mesoslite.raft.messages import Message

__all__ = ["ReadIndexStatus", "ReadOnly"]


@dataclass(slots=True)
class ReadIndexStatus:
    request: Message
    index: int
    acks: set[int] = field(default_factory=set)


class ReadOnly:
    __slots__ = ("_pending", "_queue")

    def __init__(self) -> None:
        self._pending: dict[bytes, ReadIndexStatus] = {}
        self._queue: list[bytes] = []

    def add_request(self, index: int, request: Message) -> None:
        """Track a read at commit `index`. A context already pending is ignored, so
        contexts must be unique per read."""
        context = request.context
        if context in self._pending:
            return
        self._pending[context] = ReadIndexStatus(request, index)
        self._queue.append(context)

    def receive_ack(self, node_id: int, context: bytes) -> set[int] | None:
        """Record that `node_id` answered the heartbeat for `context`; the acks so far,
        or None if no such read is pending."""
        status = self._pending.get(context)
        if status is None:
            return None
        status.acks.add(node_id)
        return status.acks

    def advance(self, context: bytes) -> list[ReadIndexStatus]:
        """Release the read for `context` and every read queued before it."""
        try:
            position = self._queue.index(context)
        except ValueError:
            return []
        released_contexts = self._queue[: position + 1]
        del self._queue[: position + 1]
        return [self._pending.pop(released) for released in released_contexts]

    def last_pending_context(self) -> bytes:
        """The newest pending read's context (b"" if none): every heartbeat carries it,
        so a lost heartbeat round is retried by the next."""
        return self._queue[-1] if self._queue else b""

    def pending_count(self) -> int:
        return len(self._queue)
