"""Raft's `Storage` on disk: the core's `MemoryStorage` for reads, WAL and snapshot files
underneath, written before the memory is.

`open_durable_storage(raft_dir)` recovers `<raft_dir>/snap` and `<raft_dir>/wal` into a
`MemoryStorage` and yields a `DurableStorage`, which the core reads through the Storage
protocol. The Ready loop calls `await persist(...)` with a Ready's snapshot, entries and
hard state, and sends the Ready's messages only after it returns: by then they are on
disk and visible to the reads.

Group commit: `persist` queues its write and waits. One writer task takes everything
queued, makes it durable in a worker thread with one write and one fdatasync, mirrors it
into memory in order and wakes the callers; writes queued meanwhile form the next group,
so many callers in flight share each fsync.

`try_persist_now` writes on the calling thread instead, when nothing is queued or being
written: the Ready loop (one writer, whose Readies already batch every proposal since
the last) uses it to spare two thread hand-offs per Ready, each of which costs as much
as a preallocated fdatasync on a small VM. Its `meanwhile` runs a leader's sends on the
calling thread while the fdatasync runs in the WAL's sync thread (`BackgroundSync`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from mesoslite.raft.errors import SnapshotOutOfDateError
from mesoslite.raft.messages import (
    ConfState,
    Entry,
    HardState,
    Snapshot,
    SnapshotMetadata,
)
from mesoslite.raft.storage import MemoryStorage, Storage
from mesoslite.replicated_log.errors import ReplicatedLogError, WalFailedError
from mesoslite.replicated_log.snapshot_store import DEFAULT_SNAPSHOTS_KEPT, SnapshotStore
from mesoslite.replicated_log.wal import DEFAULT_SEGMENT_SIZE_BYTES, RecoveredLog, Wal, WalWrite

__all__ = ["DurableStorage", "open_durable_storage"]


@dataclass(slots=True)
class _Pending:
    write: WalWrite
    snapshot: Snapshot | None  # a snapshot file to write before the WAL records
    must_sync: bool
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None


class DurableStorage:
    """Use through `open_durable_storage`. Call it from the event loop only."""

    def __init__(
        self, wal: Wal, snapshots: SnapshotStore, memory: MemoryStorage, torn_tail: str | None
    ) -> None:
        self._wal = wal
        self._snapshots = snapshots
        self._memory = memory
        # Where the log will stand once every queued write is applied: `persist` checks
        # new writes against it, so nothing reaches the disk that replay would refuse.
        self._queued_last_index = memory.last_index()
        self._queued_snapshot_index = memory.snapshot().metadata.index
        self._queue: list[_Pending] = []
        self._writing = False  # a group is being written in the worker thread
        self._wakeup = anyio.Event()
        self._closing = False
        self._failure: WalFailedError | None = None
        self.torn_tail = torn_tail

    # ------------------------------------------------------------ Storage protocol

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._memory.initial_state()

    def entries(self, low: int, high: int, max_size_bytes: int | None) -> list[Entry]:
        return self._memory.entries(low, high, max_size_bytes)

    def term(self, index: int) -> int:
        return self._memory.term(index)

    def first_index(self) -> int:
        return self._memory.first_index()

    def last_index(self) -> int:
        return self._memory.last_index()

    def snapshot(self) -> Snapshot:
        return self._memory.snapshot()

    @property
    def hard_state(self) -> HardState:
        return self._memory.hard_state

    # ------------------------------------------------------------ writes

    async def persist(
        self,
        *,
        hard_state: HardState | None = None,
        entries: Sequence[Entry] = (),
        snapshot: Snapshot | None = None,
        must_sync: bool = True,
    ) -> None:
        """Make a Ready's writes durable: `snapshot` (received from the leader, or the
        bootstrap snapshot: the log restarts after it), then `entries`, then
        `hard_state`. Returns once they are on disk (or, with `must_sync=False`, at least
        written) and visible to the reads. Calls complete in call order.

        :raises ValueError: writes Raft never asks for (an old snapshot, a gap).
        :raises WalFailedError: this or an earlier write failed; restart the process.
        """
        reset = snapshot.metadata if snapshot is not None else None
        self._check_write(entries, reset)
        if reset is not None:
            self._queued_snapshot_index = self._queued_last_index = reset.index
        if entries:
            self._queued_last_index = entries[-1].index
        write = WalWrite(entries, hard_state, reset)
        await self._submit(_Pending(write, snapshot, must_sync or snapshot is not None))

    def can_write_now(self) -> bool:
        """Whether `try_persist_now` would write (nothing queued or being written)."""
        return not (self._queue or self._writing or self._closing)

    def try_persist_now(
        self,
        *,
        hard_state: HardState | None = None,
        entries: Sequence[Entry] = (),
        must_sync: bool = True,
        meanwhile: Callable[[], None] | None = None,
    ) -> bool:
        """`persist` on the calling thread, blocking it for the write and the fdatasync,
        if nothing is queued or being written (else False, and nothing happened: use
        `persist`, which keeps the order). Snapshots always go through `persist`.

        `meanwhile` (only if this writes) is called on this thread once the records
        are written, while the fdatasync runs in the WAL's sync thread: work that needs
        nothing of this disk (a leader's appends) overlaps the sync. Its exception is
        raised after the write is complete and mirrored; it does not fail the storage.

        :raises ValueError, WalFailedError: as `persist`.
        """
        if self._queue or self._writing or self._closing:
            return False
        if self._failure is not None:
            raise self._failure
        self._check_write(entries, None)
        pending = _Pending(WalWrite(entries, hard_state, None), None, must_sync)
        meanwhile_error: BaseException | None = None

        def overlapped() -> None:
            nonlocal meanwhile_error
            assert meanwhile is not None
            try:
                meanwhile()
            except BaseException as error:
                meanwhile_error = error

        try:
            self._wal.save(
                [pending.write], sync=must_sync, meanwhile=None if meanwhile is None else overlapped
            )
        except Exception as error:
            self._failure = WalFailedError(f"persisting failed: {error}")
            self._failure.__cause__ = error
            raise self._failure from error
        if entries:
            self._queued_last_index = entries[-1].index
        self._mirror(pending)
        if meanwhile_error is not None:
            raise meanwhile_error
        return True

    async def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        """Store a snapshot of the state machine as applied through `index`, then delete
        the WAL segments it covers. The in-memory log keeps its entries: `compact` drops
        those that lagging followers no longer need."""
        if index <= self._queued_snapshot_index:
            raise SnapshotOutOfDateError(
                f"snapshot at {index} is not newer than {self._queued_snapshot_index}"
            )
        if index > self.hard_state.commit:
            raise ValueError(f"snapshot at {index} is past the commit index")
        snapshot = Snapshot(SnapshotMetadata(index, self.term(index), conf_state), data)
        self._queued_snapshot_index = index
        await self._submit(_Pending(WalWrite(), snapshot, must_sync=True))
        return snapshot

    def compact(self, compact_index: int) -> None:
        """Drop the in-memory entries up to `compact_index`, which a snapshot covers."""
        self._memory.compact(compact_index)

    def _check_write(self, entries: Sequence[Entry], reset: SnapshotMetadata | None) -> None:
        """Refuse what Raft never asks for and replay would reject: a snapshot that is
        not newer, entries at or below the snapshot, gaps."""
        base_index = self._queued_snapshot_index
        last_index = self._queued_last_index
        if reset is not None:
            if reset.index <= base_index:
                raise SnapshotOutOfDateError(
                    f"snapshot at {reset.index} is not newer than {base_index}"
                )
            base_index = last_index = reset.index
        if not entries:
            return
        if entries[0].index <= base_index:
            raise ValueError(f"entry {entries[0].index} is at or below snapshot {base_index}")
        if entries[0].index > last_index + 1:
            raise ValueError(f"entry {entries[0].index} leaves a gap after {last_index}")
        expected = entries[0].index
        for entry in entries:
            if entry.index != expected:
                raise ValueError(f"entries are not consecutive at {entry.index}")
            expected += 1

    async def _submit(self, pending: _Pending) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closing:
            raise ReplicatedLogError("the storage is closed")
        self._queue.append(pending)
        self._wakeup.set()
        await pending.done.wait()
        if pending.error is not None:
            raise pending.error

    async def _run_writer(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup = anyio.Event()
            if not self._queue:
                if self._closing:
                    return
                continue
            group, self._queue = self._queue, []
            self._writing = True
            try:
                await anyio.to_thread.run_sync(self._write_group, group)
            except Exception as error:
                self._writing = False
                self._failure = WalFailedError(f"persisting failed: {error}")
                self._failure.__cause__ = error
                for pending in group:
                    pending.error = self._failure
                    pending.done.set()
                continue
            self._writing = False
            for pending in group:
                self._mirror(pending)
                pending.done.set()

    def _write_group(self, group: list[_Pending]) -> None:
        """Worker thread: snapshot files first (a reset record must never name a
        snapshot that is not on disk), then all WAL records with at most one fdatasync,
        then the segments the newest snapshot covers go."""
        newest_snapshot_index = 0
        for pending in group:
            if pending.snapshot is not None:
                self._snapshots.save(pending.snapshot)
                newest_snapshot_index = pending.snapshot.metadata.index
        must_sync = any(pending.must_sync for pending in group)
        self._wal.save([pending.write for pending in group], sync=must_sync)
        if newest_snapshot_index:
            self._wal.release_through(newest_snapshot_index)

    def _mirror(self, pending: _Pending) -> None:
        write = pending.write
        snapshot = pending.snapshot
        if snapshot is not None:
            if write.snapshot_reset is not None:
                self._memory.apply_snapshot(snapshot)
            else:
                metadata = snapshot.metadata
                self._memory.create_snapshot(metadata.index, metadata.conf_state, snapshot.data)
        self._memory.append(write.entries)
        if write.hard_state is not None:
            self._memory.set_hard_state(write.hard_state)

    def _begin_close(self) -> None:
        self._closing = True
        self._wakeup.set()


if TYPE_CHECKING:

    def _is_a_storage(storage: DurableStorage) -> Storage:
        return storage  # mypy checks DurableStorage against the core's Storage protocol


@asynccontextmanager
async def open_durable_storage(
    raft_dir: Path,
    *,
    segment_size_bytes: int = DEFAULT_SEGMENT_SIZE_BYTES,
    snapshots_kept: int = DEFAULT_SNAPSHOTS_KEPT,
) -> AsyncIterator[DurableStorage]:
    """Recover the log in `raft_dir` (created if missing) and serve it until exit;
    writes already queued complete before the files are closed.

    :raises CorruptionError: the files are damaged beyond a torn tail.
    """

    def recover() -> tuple[Wal, SnapshotStore, MemoryStorage, RecoveredLog]:
        snapshots = SnapshotStore(raft_dir / "snap", kept=snapshots_kept)
        snapshot = snapshots.load_newest()
        base_index = 0 if snapshot is None else snapshot.metadata.index
        wal, recovered = Wal.open(
            raft_dir / "wal", base_index=base_index, segment_size_bytes=segment_size_bytes
        )
        memory = MemoryStorage()
        if snapshot is not None:
            memory.apply_snapshot(snapshot)
        memory.append(recovered.entries)
        memory.set_hard_state(recovered.hard_state)
        return wal, snapshots, memory, recovered

    wal, snapshots, memory, recovered = await anyio.to_thread.run_sync(recover)
    storage = DurableStorage(wal, snapshots, memory, recovered.torn_tail)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(storage._run_writer)
            try:
                yield storage
            finally:
                storage._begin_close()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(wal.close)
