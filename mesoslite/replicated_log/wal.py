"""The write-ahead log of Raft entries and hard state (blocking; run it in a worker thread).

The log is a directory of segments (see `segment`). Each `save` appends the records of
one or more writes with a single `write` and a single `fdatasync`, so a caller that
batches many writes (group commit) pays one sync for all of them. Replay applies the
records in order with Raft's rules: an entry at index i replaces the entries from i on;
a snapshot reset drops every entry; the latest hard state wins. Every segment starts with
the hard state of its moment, so dropping old segments never loses it.

Recovery truncates a torn tail of the newest segment (the longest valid prefix is the
log) and refuses any other damage with `CorruptionError`. Segments are preallocated
(see `segment`): zeros after the last record are free space, not a torn tail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mesoslite.raft.messages import Entry, HardState, SnapshotMetadata
from mesoslite.replicated_log.background_sync import BackgroundSync
from mesoslite.replicated_log.durable_files import ensure_directory, fsync_directory
from mesoslite.replicated_log.errors import CorruptionError, WalFailedError
from mesoslite.replicated_log.framing import encode_record
from mesoslite.replicated_log.records import (
    RecordType,
    decode_entry,
    decode_hard_state,
    decode_segment_header,
    decode_snapshot_reset,
    encode_entry_payload,
    encode_hard_state_payload,
    encode_snapshot_reset_payload,
)
from mesoslite.replicated_log.segment import (
    SegmentName,
    SegmentWriter,
    list_segments,
    read_segment,
)

__all__ = ["DEFAULT_SEGMENT_SIZE_BYTES", "RecoveredLog", "Wal", "WalWrite"]

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_SIZE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WalWrite:
    """What one Ready asks to make durable, in the order it is applied on replay: a
    snapshot the log restarts after (one received from the leader), entries, hard state."""

    entries: Sequence[Entry] = ()
    hard_state: HardState | None = None
    snapshot_reset: SnapshotMetadata | None = None


@dataclass(frozen=True, slots=True)
class RecoveredLog:
    """What replay found: the entries after the snapshot index, contiguous, and the
    latest hard state. `torn_tail` describes a dropped torn tail, if there was one."""

    hard_state: HardState
    entries: list[Entry]
    torn_tail: str | None


@dataclass(slots=True)
class _SealedSegment:
    path: Path
    max_entry_index: int


class Wal:
    """An open WAL directory. Blocking and not thread-safe: one thread at a time."""

    def __init__(
        self,
        directory: Path,
        active: SegmentWriter,
        sealed: list[_SealedSegment],
        active_max_entry_index: int,
        last_index: int,
        hard_state: HardState,
        segment_size_bytes: int,
    ) -> None:
        self._directory = directory
        self._active = active
        self._sealed = sealed
        self._active_max_entry_index = active_max_entry_index
        self._last_index = last_index
        self._hard_state = hard_state
        self._segment_size_bytes = segment_size_bytes
        self._failed = False
        self._unsynced = False  # written with sync=False and not synced since
        self._background_sync: BackgroundSync | None = None

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        base_index: int = 0,
        segment_size_bytes: int = DEFAULT_SEGMENT_SIZE_BYTES,
    ) -> tuple[Wal, RecoveredLog]:
        """Open (creating if needed) the WAL in `directory` and replay it on top of the
        newest snapshot, whose index is `base_index` (0 without one)."""
        ensure_directory(directory)
        names = list_segments(directory)
        replay = _Replay(base_index)
        sealed: list[_SealedSegment] = []
        active: SegmentWriter | None = None
        active_max_entry_index = 0
        previous_seq: int | None = None
        torn_tail: str | None = None
        for position, name in enumerate(names):
            if previous_seq is not None and name.seq != previous_seq + 1:
                raise CorruptionError(name.path, 0, f"segment {previous_seq + 1:016x} is missing")
            is_last = position == len(names) - 1
            contents = read_segment(name.path, is_last=is_last)
            if is_last and contents.torn:
                dropped_bytes = contents.file_size_bytes - contents.valid_size_bytes
                torn_tail = (
                    f"{name.path.name}: dropped {dropped_bytes} bytes at byte "
                    f"{contents.valid_size_bytes} ({contents.torn_reason})"
                )
                log.warning("WAL torn tail: %s", torn_tail)
            if not contents.records:
                if not is_last:
                    raise CorruptionError(name.path, 0, "empty segment before the last one")
                # A crash while creating the segment: it never held a synced record.
                name.path.unlink()
                fsync_directory(directory)
                break
            max_entry_index = replay.segment(name, contents.records)
            previous_seq = name.seq
            if is_last:
                active = SegmentWriter.reopen(
                    name.path, name.seq, contents, limit_bytes=segment_size_bytes
                )
                active_max_entry_index = max_entry_index
            else:
                sealed.append(_SealedSegment(name.path, max_entry_index))
        if active is None:
            # No segment yet, or the last one was never completed: start the next one.
            seq = 0 if previous_seq is None else previous_seq + 1
            preamble = _hard_state_preamble(replay.hard_state)
            active = SegmentWriter.create(
                directory, seq, replay.last_index + 1, preamble, limit_bytes=segment_size_bytes
            )
        recovered = RecoveredLog(replay.hard_state, replay.entries, torn_tail)
        wal = cls(
            directory,
            active,
            sealed,
            active_max_entry_index,
            replay.last_index,
            replay.hard_state,
            segment_size_bytes,
        )
        return wal, recovered

    @property
    def segment_paths(self) -> list[Path]:
        return [segment.path for segment in self._sealed] + [self._active.path]

    def save(
        self,
        writes: Sequence[WalWrite],
        *,
        sync: bool = True,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        """Append `writes` in order and fdatasync once; returns when they are durable.
        `sync=False` leaves them in the page cache (a commit index alone may be lost and
        recomputed). After any failure every later call raises `WalFailedError`.

        `meanwhile`, if given, is called once on this thread after the records are
        written, while the fdatasync runs in the WAL's sync thread (`BackgroundSync`):
        work that needs nothing of this disk overlaps the sync. Its exception, if any,
        is raised once the save is complete (it does not fail the WAL)."""
        if self._failed:
            raise WalFailedError("an earlier WAL write failed")
        meanwhile_error: BaseException | None = None

        def overlapped() -> None:
            nonlocal meanwhile_error
            assert meanwhile is not None
            try:
                meanwhile()
            except BaseException as error:
                meanwhile_error = error

        parts: list[bytes] = []
        last_index = self._last_index
        max_entry_index = self._active_max_entry_index
        hard_state = self._hard_state
        for write in writes:
            if write.snapshot_reset is not None:
                reset = write.snapshot_reset
                payload = encode_snapshot_reset_payload(reset.index, reset.term)
                parts.append(encode_record(RecordType.SNAPSHOT_RESET, payload))
                last_index = reset.index
            for entry in write.entries:
                parts.append(encode_record(RecordType.ENTRY, encode_entry_payload(entry)))
                last_index = entry.index
                max_entry_index = max(max_entry_index, entry.index)
            if write.hard_state is not None:
                hard_state = write.hard_state
                payload = encode_hard_state_payload(hard_state)
                parts.append(encode_record(RecordType.HARD_STATE, payload))
        if not parts:
            if meanwhile is not None:
                meanwhile()
            return
        try:
            self._active.write(b"".join(parts))
            if sync and meanwhile is not None:
                if self._background_sync is None:
                    self._background_sync = BackgroundSync()
                self._background_sync.overlap(self._active.fileno(), overlapped)
            elif sync:
                self._active.sync()
            self._unsynced = not sync
        except BaseException as error:
            self._failed = True
            raise WalFailedError(f"{self._active.path}: {error}") from error
        if meanwhile is not None and not sync:
            overlapped()
        self._last_index = last_index
        self._active_max_entry_index = max_entry_index
        self._hard_state = hard_state
        if self._active.size_bytes >= self._segment_size_bytes:
            self._rotate()
        if meanwhile_error is not None:
            raise meanwhile_error

    def release_through(self, snapshot_index: int) -> int:
        """Remove the oldest segments whose entries are all at or below `snapshot_index`
        (covered by a durable snapshot). Returns how many were removed."""
        removable = 0
        for segment in self._sealed:
            if segment.max_entry_index > snapshot_index:
                break
            removable += 1
        if removable == 0:
            return 0
        for segment in self._sealed[:removable]:
            segment.path.unlink()
        del self._sealed[:removable]
        fsync_directory(self._directory)
        return removable

    def close(self) -> None:
        if self._background_sync is not None:
            self._background_sync.close()
        self._active.close()

    def _rotate(self) -> None:
        try:
            # Only the newest segment may end torn: seal this one whole.
            if self._unsynced:
                self._active.sync()
                self._unsynced = False
            new_active = SegmentWriter.create(
                self._directory,
                self._active.seq + 1,
                self._last_index + 1,
                _hard_state_preamble(self._hard_state),
                limit_bytes=self._segment_size_bytes,
            )
        except BaseException as error:
            self._failed = True
            raise WalFailedError(f"creating the next WAL segment: {error}") from error
        self._active.close()
        self._sealed.append(_SealedSegment(self._active.path, self._active_max_entry_index))
        self._active = new_active
        self._active_max_entry_index = 0


def _hard_state_preamble(hard_state: HardState) -> bytes:
    """The record that opens a segment with the hard state of its moment."""
    if hard_state == HardState():
        return b""
    return encode_record(RecordType.HARD_STATE, encode_hard_state_payload(hard_state))


class _Replay:
    """Applies records in order on top of the snapshot at `base_index`."""

    def __init__(self, base_index: int) -> None:
        self.base_index = base_index
        self.entries: list[Entry] = []
        self.hard_state = HardState()

    @property
    def last_index(self) -> int:
        return self.base_index + len(self.entries)

    def segment(
        self,
        name: SegmentName,
        records: list[tuple[int, int, memoryview]],
    ) -> int:
        """Apply one segment's records; returns the highest entry index it holds."""
        path = name.path
        offset, record_type, payload = records[0]
        if record_type != RecordType.SEGMENT_HEADER:
            raise CorruptionError(path, offset, "segment does not start with its header")
        header = decode_segment_header(payload, path, offset)
        if header.seq != name.seq or header.first_index != name.first_index:
            raise CorruptionError(path, offset, "segment header does not match its file name")
        max_entry_index = 0
        for offset, record_type, payload in records[1:]:
            if record_type == RecordType.ENTRY:
                entry = decode_entry(payload, path, offset)
                self._entry(entry, path, offset)
                max_entry_index = max(max_entry_index, entry.index)
            elif record_type == RecordType.HARD_STATE:
                self.hard_state = decode_hard_state(payload, path, offset)
            elif record_type == RecordType.SNAPSHOT_RESET:
                self._reset(*decode_snapshot_reset(payload, path, offset), path, offset)
            else:
                raise CorruptionError(path, offset, f"unexpected record type {record_type}")
        return max_entry_index

    def _entry(self, entry: Entry, path: Path, offset: int) -> None:
        if entry.index <= self.base_index:
            # Writing index i replaced everything after i, so nothing above the
            # snapshot written before this record survives.
            self.entries.clear()
            return
        last_index = self.last_index
        if entry.index > last_index + 1:
            raise CorruptionError(
                path, offset, f"entry {entry.index} follows {last_index}: entries are missing"
            )
        if entry.index <= last_index:
            del self.entries[entry.index - self.base_index - 1 :]
        self.entries.append(entry)

    def _reset(self, index: int, term: int, path: Path, offset: int) -> None:
        if index > self.base_index:
            raise CorruptionError(
                path,
                offset,
                f"log restarts after snapshot {index} (term {term}) but the newest snapshot "
                f"on disk is at {self.base_index}",
            )
        self.entries.clear()
