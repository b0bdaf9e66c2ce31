"""A Raft write-ahead log on a `SimDisk`: checksummed records, recovery, rewrite.

Each record is `length (4 bytes) | crc32 (4 bytes) | payload`. Recovery reads records up
to the first one that is incomplete or fails its checksum (a torn write at the tail),
cuts the file there, and replays what it read into a `MemoryStorage`.

Records: HARD_STATE, ENTRIES (a batch, possibly replacing a suffix) and SNAPSHOT (the log
restarts after it). Compaction rewrites the whole log into a new file (snapshot, hard
state, remaining entries), fsyncs it and renames it over the old one, then fsyncs the
directory: a crash at any point leaves either the old or the new log, both complete.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from mesoslite.raft import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    MemoryStorage,
    Snapshot,
    SnapshotMetadata,
)
from mesoslite.testing.sim.disk import SimDisk

__all__ = ["RecoveredLog", "SimWal"]

_FRAME = struct.Struct(">II")
_HARD_STATE = struct.Struct(">BQQQ")
_ENTRY_HEADER = struct.Struct(">QQBI")
_COUNT = struct.Struct(">I")
_SNAPSHOT_HEADER = struct.Struct(">BQQ")
_ID = struct.Struct(">Q")

_KIND_HARD_STATE = 1
_KIND_ENTRIES = 2
_KIND_SNAPSHOT = 3

WAL_NAME = "wal"
_REWRITE_NAME = "wal.rewrite"


def _encode_hard_state(hard_state: HardState) -> bytes:
    return _HARD_STATE.pack(_KIND_HARD_STATE, hard_state.term, hard_state.vote, hard_state.commit)


def _encode_entries(entries: Sequence[Entry]) -> bytes:
    parts = [bytes([_KIND_ENTRIES]), _COUNT.pack(len(entries))]
    for entry in entries:
        parts.append(_ENTRY_HEADER.pack(entry.term, entry.index, int(entry.type), len(entry.data)))
        parts.append(entry.data)
    return b"".join(parts)


def _encode_ids(ids: Sequence[int]) -> bytes:
    return _COUNT.pack(len(ids)) + b"".join(_ID.pack(node_id) for node_id in ids)


def _encode_snapshot(snapshot: Snapshot) -> bytes:
    metadata = snapshot.metadata
    return b"".join(
        [
            _SNAPSHOT_HEADER.pack(_KIND_SNAPSHOT, metadata.index, metadata.term),
            _encode_ids(metadata.conf_state.voters),
            _encode_ids(metadata.conf_state.learners),
            _COUNT.pack(len(snapshot.data)),
            snapshot.data,
        ]
    )


def _frame(payload: bytes) -> bytes:
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


class _Reader:
    __slots__ = ("buffer", "offset")

    def __init__(self, buffer: bytes, offset: int) -> None:
        self.buffer = buffer
        self.offset = offset

    def unpack(self, layout: struct.Struct) -> tuple[int, ...]:
        values = layout.unpack_from(self.buffer, self.offset)
        self.offset += layout.size
        return tuple(values)

    def take(self, length: int) -> bytes:
        data = self.buffer[self.offset : self.offset + length]
        self.offset += length
        return data

    def ids(self) -> tuple[int, ...]:
        (count,) = self.unpack(_COUNT)
        return tuple(self.unpack(_ID)[0] for _ in range(count))


@dataclass(slots=True)
class RecoveredLog:
    storage: MemoryStorage
    records_read: int
    # Bytes cut from the tail: a torn or unsynced write the crash left behind.
    bytes_discarded: int


class SimWal:
    """The WAL of one replica. `append_*` stage records; `sync` makes them durable."""

    __slots__ = ("_disk",)

    def __init__(self, disk: SimDisk) -> None:
        self._disk = disk

    def exists(self) -> bool:
        return self._disk.exists(WAL_NAME)

    def create(self, snapshot: Snapshot, hard_state: HardState) -> None:
        """A new replica's log (bootstrap snapshot or empty), durable when this returns."""
        disk = self._disk
        disk.create(WAL_NAME)
        disk.append(
            WAL_NAME, _frame(_encode_snapshot(snapshot)) + _frame(_encode_hard_state(hard_state))
        )
        disk.fsync(WAL_NAME)
        disk.fsync_dir()

    def append_snapshot(self, snapshot: Snapshot) -> None:
        self._disk.append(WAL_NAME, _frame(_encode_snapshot(snapshot)))

    def append_entries(self, entries: Sequence[Entry]) -> None:
        self._disk.append(WAL_NAME, _frame(_encode_entries(entries)))

    def append_hard_state(self, hard_state: HardState) -> None:
        self._disk.append(WAL_NAME, _frame(_encode_hard_state(hard_state)))

    def sync(self) -> None:
        self._disk.fsync(WAL_NAME)

    def size_bytes(self) -> int:
        return self._disk.size(WAL_NAME)

    def rewrite(self, storage: MemoryStorage) -> None:
        """Replace the log by storage's snapshot, hard state and entries after it."""
        disk = self._disk
        snapshot = storage.snapshot()
        entries = (
            storage.entries(snapshot.metadata.index + 1, storage.last_index() + 1, None)
            if storage.last_index() > snapshot.metadata.index
            else []
        )
        records = [
            _frame(_encode_snapshot(snapshot)),
            _frame(_encode_hard_state(storage.hard_state)),
        ]
        if entries:
            records.append(_frame(_encode_entries(entries)))
        disk.create(_REWRITE_NAME)
        disk.append(_REWRITE_NAME, b"".join(records))
        disk.fsync(_REWRITE_NAME)
        disk.rename(_REWRITE_NAME, WAL_NAME)
        disk.fsync_dir()

    def recover(self) -> RecoveredLog:
        """Rebuild storage from the log, cutting off a torn tail (and making that durable)."""
        disk = self._disk
        if disk.exists(_REWRITE_NAME):
            disk.remove(_REWRITE_NAME)  # an interrupted rewrite; the old log is intact
        buffer = disk.read(WAL_NAME)
        storage = MemoryStorage()
        offset = 0
        records = 0
        while offset + _FRAME.size <= len(buffer):
            length, checksum = _FRAME.unpack_from(buffer, offset)
            start = offset + _FRAME.size
            payload = buffer[start : start + length]
            if len(payload) != length or zlib.crc32(payload) != checksum:
                break
            self._replay(storage, payload)
            records += 1
            offset = start + length
        discarded = len(buffer) - offset
        if discarded:
            disk.truncate(WAL_NAME, offset)
            disk.fsync(WAL_NAME)
        disk.fsync_dir()
        return RecoveredLog(storage, records, discarded)

    @staticmethod
    def _replay(storage: MemoryStorage, payload: bytes) -> None:
        kind = payload[0]
        if kind == _KIND_HARD_STATE:
            _, term, vote, commit = _HARD_STATE.unpack(payload)
            storage.set_hard_state(HardState(term, vote, commit))
        elif kind == _KIND_ENTRIES:
            reader = _Reader(payload, 1)
            (count,) = reader.unpack(_COUNT)
            entries = []
            for _ in range(count):
                term, index, entry_type, length = reader.unpack(_ENTRY_HEADER)
                entries.append(Entry(term, index, reader.take(length), EntryType(entry_type)))
            storage.append(entries)
        elif kind == _KIND_SNAPSHOT:
            reader = _Reader(payload, 0)
            _, index, term = reader.unpack(_SNAPSHOT_HEADER)
            voters = reader.ids()
            learners = reader.ids()
            (length,) = reader.unpack(_COUNT)
            snapshot = Snapshot(
                SnapshotMetadata(index, term, ConfState(voters, learners)), reader.take(length)
            )
            if index > storage.snapshot().metadata.index:
                storage.apply_snapshot(snapshot)
        else:
            raise ValueError(f"unknown WAL record kind {kind}")
