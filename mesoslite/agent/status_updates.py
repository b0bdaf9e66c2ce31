"""The task status update manager: reliable, ordered delivery of status updates.

One stream per task. Every update is checkpointed (for checkpointing frameworks) and
queued; only the oldest unacknowledged update of a stream is forwarded to the master,
and it is resent with exponential backoff (10 s doubling up to 10 min by default)
until the scheduler's acknowledgement comes back; then the next one goes out. Forwarded
updates carry `latest_state`, the newest state the stream holds, so that the master
knows where the task really is while older updates wait for acknowledgement.
Duplicates (same uuid) are dropped. While the master is unreachable the manager is
paused; `resume` resends every stream's head at once, and `resend` one framework's
(when it re-subscribes somewhere, as Mesos' agent does on UpdateFrameworkMessage).
After an agent restart, `restore` brings back each stream as the checkpoint left it.

Retries share one timer task (a heap of deadlines), so a stream costs no task of its own.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from mesoslite.agent.sandbox import append_durably
from mesoslite.agent.update_log import ack_record, update_record
from mesoslite.locks import FastLock
from mesoslite.proto import internal_pb2, mesos_pb2

__all__ = ["TERMINAL_STATES", "Forward", "StatusUpdateManager", "is_terminal"]

log = logging.getLogger(__name__)

_TS = mesos_pb2.TaskState
TERMINAL_STATES = frozenset(
    {
        _TS.TASK_FINISHED,
        _TS.TASK_FAILED,
        _TS.TASK_KILLED,
        _TS.TASK_LOST,
        _TS.TASK_ERROR,
        _TS.TASK_DROPPED,
        _TS.TASK_GONE,
        _TS.TASK_GONE_BY_OPERATOR,
    }
)


def is_terminal(state: mesos_pb2.TaskState.ValueType) -> bool:
    return state in TERMINAL_STATES


# Sends one update to the master; must not raise when the master is unreachable
# (the retry covers it).
Forward = Callable[[internal_pb2.StatusUpdate], Awaitable[None]]

_StreamKey = tuple[str, str]  # (framework id, task id)


@dataclass(eq=False)
class _Stream:
    key: _StreamKey
    log_path: Path | None
    pending: deque[internal_pb2.StatusUpdate] = field(default_factory=deque)
    received: set[bytes] = field(default_factory=set)
    lock: FastLock = field(default_factory=FastLock)
    retry_s: float = 0.0
    # Bumped whenever the head is (re)sent: a queued retry of an older send is stale.
    generation: int = 0


class StatusUpdateManager:
    def __init__(
        self,
        forward: Forward,
        *,
        retry_initial_s: float = 10.0,
        retry_max_s: float = 600.0,
    ) -> None:
        self._forward = forward
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._streams: dict[_StreamKey, _Stream] = {}
        self._retries: list[tuple[float, int, _StreamKey, int]] = []
        self._retry_sequence = 0
        self._wakeup = anyio.Event()
        self._paused = True

    # ------------------------------------------------------------------ queries

    def pending(self, framework_id: str, task_id: str) -> list[internal_pb2.StatusUpdate]:
        stream = self._streams.get((framework_id, task_id))
        return list(stream.pending) if stream is not None else []

    def seen(self, framework_id: str, task_id: str, uuid: bytes) -> bool:
        """Whether an update with this uuid was already taken (a replay)."""
        stream = self._streams.get((framework_id, task_id))
        return stream is not None and uuid in stream.received

    def head(self, framework_id: str, task_id: str) -> internal_pb2.StatusUpdate | None:
        """The update in flight (the oldest unacknowledged one), if any."""
        stream = self._streams.get((framework_id, task_id))
        return stream.pending[0] if stream is not None and stream.pending else None

    def writes_to_disk(self, framework_id: str, task_id: str) -> bool:
        """Whether the task's updates are checkpointed (its acknowledgements too)."""
        stream = self._streams.get((framework_id, task_id))
        return stream is not None and stream.log_path is not None

    def has_pending(self, framework_id: str, task_id: str) -> bool:
        stream = self._streams.get((framework_id, task_id))
        return stream is not None and bool(stream.pending)

    @property
    def paused(self) -> bool:
        return self._paused

    # ------------------------------------------------------------------ updates in

    async def update(self, update: internal_pb2.StatusUpdate, *, log_path: Path | None) -> bool:
        """Take one update (uuid set). Returns False for a duplicate. When this returns
        the update is durable (if `log_path`) and the executor may be told so."""
        key = (update.framework_id.value, update.status.task_id.value)
        stream = self._streams.get(key)
        if stream is None:
            stream = _Stream(key=key, log_path=log_path)
            self._streams[key] = stream
        async with stream.lock:
            uuid = update.status.uuid
            if uuid in stream.received:
                return False
            stream.received.add(uuid)
            if stream.log_path is not None:
                await anyio.to_thread.run_sync(
                    append_durably, stream.log_path, update_record(update)
                )
            stream.pending.append(update)
            if len(stream.pending) == 1:
                await self._send_head(stream, reset_backoff=True)
        return True

    def restore(
        self,
        framework_id: str,
        task_id: str,
        *,
        received: list[internal_pb2.StatusUpdate],
        pending: list[internal_pb2.StatusUpdate],
        log_path: Path,
    ) -> None:
        """A stream as a restarted agent finds it in its checkpoint: every update it had
        taken (replays stay duplicates) and those still unacknowledged, oldest first.
        They go out when the manager resumes."""
        key = (framework_id, task_id)
        self._streams[key] = _Stream(
            key=key,
            log_path=log_path,
            pending=deque(pending),
            received={update.status.uuid for update in received},
        )

    async def acknowledge(
        self, framework_id: str, task_id: str, uuid: bytes
    ) -> internal_pb2.StatusUpdate | None:
        """Apply the scheduler's acknowledgement. Returns the acknowledged update, or
        None when it does not match the update in flight (stale or duplicate)."""
        stream = self._streams.get((framework_id, task_id))
        if stream is None:
            return None
        async with stream.lock:
            if not stream.pending or stream.pending[0].status.uuid != uuid:
                log.debug("ignoring unexpected acknowledgement for task %s", task_id)
                return None
            if stream.log_path is not None:
                await anyio.to_thread.run_sync(append_durably, stream.log_path, ack_record(uuid))
            acknowledged = stream.pending.popleft()
            stream.generation += 1
            if stream.pending:
                await self._send_head(stream, reset_backoff=True)
            elif is_terminal(acknowledged.status.state):
                # The stream is complete: nothing more can follow a terminal update.
                del self._streams[stream.key]
        return acknowledged

    def remove_framework(self, framework_id: str) -> None:
        for key in [key for key in self._streams if key[0] == framework_id]:
            del self._streams[key]

    def remove_task(self, framework_id: str, task_id: str) -> None:
        self._streams.pop((framework_id, task_id), None)

    # ------------------------------------------------------------------ connection

    def pause(self) -> None:
        """The master is unreachable: stop sending (updates keep queueing)."""
        self._paused = True

    async def resume(self) -> None:
        """The master is back: send every stream's head now, backoff reset."""
        self._paused = False
        for stream in list(self._streams.values()):
            if stream.pending:
                async with stream.lock:
                    if stream.pending:
                        await self._send_head(stream, reset_backoff=True)

    async def resend(self, framework_id: str) -> None:
        """Send the framework's heads now, backoff reset (it is reachable again)."""
        if self._paused:
            return
        for stream in [s for key, s in self._streams.items() if key[0] == framework_id]:
            if stream.pending:
                async with stream.lock:
                    if stream.pending:
                        await self._send_head(stream, reset_backoff=True)

    # ------------------------------------------------------------------ sending

    async def _send_head(self, stream: _Stream, *, reset_backoff: bool) -> None:
        if reset_backoff:
            stream.retry_s = self._retry_initial_s
        else:
            stream.retry_s = min(stream.retry_s * 2, self._retry_max_s)
        stream.generation += 1
        self._schedule_retry(stream)
        if self._paused:
            return
        head = stream.pending[0]
        outgoing = internal_pb2.StatusUpdate()
        outgoing.CopyFrom(head)
        outgoing.latest_state = stream.pending[-1].status.state
        await self._forward(outgoing)

    def _schedule_retry(self, stream: _Stream) -> None:
        deadline = anyio.current_time() + stream.retry_s
        self._retry_sequence += 1
        entry = (deadline, self._retry_sequence, stream.key, stream.generation)
        heapq.heappush(self._retries, entry)
        if self._retries[0] is entry:
            self._wakeup.set()

    async def run(self) -> None:
        """Resend heads whose acknowledgement is overdue. Runs until cancelled."""
        while True:
            self._wakeup = anyio.Event()
            if self._retries:
                delay = max(0.0, self._retries[0][0] - anyio.current_time())
                with anyio.move_on_after(delay):
                    await self._wakeup.wait()
            else:
                await self._wakeup.wait()
            now = anyio.current_time()
            while self._retries and self._retries[0][0] <= now:
                _, _, key, generation = heapq.heappop(self._retries)
                stream = self._streams.get(key)
                if stream is None or stream.generation != generation or not stream.pending:
                    continue
                async with stream.lock:
                    if stream.generation == generation and stream.pending:
                        await self._send_head(stream, reset_backoff=False)
