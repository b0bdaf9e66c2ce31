"""WAL segment files: naming, reading with tail repair, and the append-only writer.

A segment is named `<seq:016x>-<first_index:016x>.wal`; `seq` orders segments and
`first_index` is the index the log had reached plus one when the segment was opened
(entries written later may overwrite lower indices). Only the newest segment is ever
written, so only it may end in a torn record; older ones were synced whole before the
next one was created.

The writer preallocates ahead of its records (`posix_fallocate`, in steps of
`PREALLOCATE_STEP_BYTES` up to the segment size) and writes at its logical end: an
fdatasync then flushes data alone, not a new file size as well (about half the cost on
ext4). The valid records are therefore followed by zeros up to the file's end. Reading
treats a tail that is all zeros as the clean end of the segment, in any segment (a crash
may keep the preallocation of a sealed one); anything else after the last valid record
is a torn tail or damage, as before. A cleanly closed writer, and a sealed segment, are
cut back to their logical size.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from mesoslite.replicated_log.durable_files import fsync_directory
from mesoslite.replicated_log.errors import CorruptionError
from mesoslite.replicated_log.framing import ScanEnd, ScanStop, encode_record, scan_records
from mesoslite.replicated_log.records import RecordType, encode_segment_header_payload

__all__ = [
    "PREALLOCATE_STEP_BYTES",
    "SEGMENT_SUFFIX",
    "SegmentContents",
    "SegmentName",
    "SegmentWriter",
    "list_segments",
    "read_segment",
    "segment_file_name",
]

SEGMENT_SUFFIX = ".wal"
PREALLOCATE_STEP_BYTES = 4 * 1024 * 1024
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")


@dataclass(frozen=True, slots=True)
class SegmentName:
    path: Path
    seq: int
    first_index: int


def segment_file_name(seq: int, first_index: int) -> str:
    return f"{seq:016x}-{first_index:016x}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[SegmentName]:
    """The segment files in `directory`, oldest first; other files are ignored."""
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match is not None:
            found.append(SegmentName(path, int(match[1], 16), int(match[2], 16)))
    found.sort(key=lambda name: name.seq)
    return found


@dataclass(frozen=True, slots=True)
class SegmentContents:
    """The valid records of a segment and where its valid prefix ends. `torn_reason` is
    empty when nothing follows the valid prefix but zeros (preallocated space)."""

    records: list[tuple[int, int, memoryview]]
    valid_size_bytes: int
    file_size_bytes: int
    torn_reason: str

    @property
    def torn(self) -> bool:
        return bool(self.torn_reason)


def read_segment(path: Path, *, is_last: bool) -> SegmentContents:
    """Read every valid record. A torn tail is tolerated only in the last segment (the
    caller truncates it); any other damage raises `CorruptionError`. Zeros after the
    valid records are preallocated space, not damage."""
    buffer = path.read_bytes()
    end: list[ScanEnd] = []
    records = list(scan_records(buffer, 0, end))
    stop = end[0]
    valid = stop.offset_bytes
    if stop.stop is not ScanStop.END and buffer.count(0, valid) == len(buffer) - valid:
        return SegmentContents(records, valid, len(buffer), "")
    if stop.stop is ScanStop.CORRUPT or (stop.stop is ScanStop.TORN and not is_last):
        raise CorruptionError(path, valid, stop.reason)
    return SegmentContents(records, valid, len(buffer), stop.reason)


class SegmentWriter:
    """The segment being appended to. Not thread-safe: one writer thread at a time.

    `size_bytes` is the logical end (where the next record goes); the file is
    preallocated beyond it, up to `limit_bytes` (the segment size) in
    `PREALLOCATE_STEP_BYTES` steps, so that most syncs flush data alone."""

    def __init__(
        self, path: Path, fd: int, seq: int, size_bytes: int, allocated_bytes: int, limit_bytes: int
    ) -> None:
        self.path = path
        self.seq = seq
        self._fd = fd
        self._size_bytes = size_bytes
        self._allocated_bytes = allocated_bytes
        self._limit_bytes = limit_bytes
        self._preallocate = True

    @classmethod
    def create(
        cls, directory: Path, seq: int, first_index: int, preamble: bytes, *, limit_bytes: int
    ) -> SegmentWriter:
        """Create a segment whose first records are its header then `preamble`, synced,
        with the directory entry synced too."""
        path = directory / segment_file_name(seq, first_index)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        writer = cls(path, fd, seq, 0, 0, limit_bytes)
        try:
            header = encode_record(
                RecordType.SEGMENT_HEADER, encode_segment_header_payload(seq, first_index)
            )
            writer.write(header + preamble)
            writer.sync()
            fsync_directory(directory)
        except BaseException:
            writer.close()
            raise
        return writer

    @classmethod
    def reopen(
        cls, path: Path, seq: int, contents: SegmentContents, *, limit_bytes: int
    ) -> SegmentWriter:
        """Open the last segment for appending at the end of its valid records, cutting
        a torn tail off first (its preallocated zeros are kept)."""
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        allocated = contents.file_size_bytes
        try:
            if contents.torn:
                os.ftruncate(fd, contents.valid_size_bytes)
                os.fsync(fd)
                allocated = contents.valid_size_bytes
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, seq, contents.valid_size_bytes, allocated, limit_bytes)

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    def write(self, data: bytes) -> None:
        end = self._size_bytes + len(data)
        if end > self._allocated_bytes:
            self._allocate(end)
        view = memoryview(data)
        offset = self._size_bytes
        while view:
            written = os.pwrite(self._fd, view, offset)
            view = view[written:]
            offset += written
        self._size_bytes = end

    def _allocate(self, end: int) -> None:
        if not self._preallocate:
            return
        step = PREALLOCATE_STEP_BYTES
        target = max(end, min(-(-end // step) * step, self._limit_bytes))
        try:
            os.posix_fallocate(self._fd, self._allocated_bytes, target - self._allocated_bytes)
        except OSError:
            self._preallocate = False  # a file system without it: plain appends
            return
        self._allocated_bytes = target

    def fileno(self) -> int:
        return self._fd

    def sync(self) -> None:
        # fdatasync persists the file size too where a write (or an allocation) grew it.
        os.fdatasync(self._fd)

    def trim(self) -> None:
        """Give back the preallocated space after the records (not synced: either size
        reads back the same records)."""
        if self._allocated_bytes > self._size_bytes:
            os.ftruncate(self._fd, self._size_bytes)
            self._allocated_bytes = self._size_bytes

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):  # else the zeros stay; reading skips them
                self.trim()
            os.close(self._fd)
            self._fd = -1
