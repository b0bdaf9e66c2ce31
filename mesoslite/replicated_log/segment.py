"""WAL segment files: naming, reading with tail repair, and the append-only writer.

A segment is named `<seq:016x>-<first_index:016x>.wal`; `seq` orders segments and
`first_index` is the index the log had reached plus one when the segment was opened
(entries written later may overwrite lower indices). Only the newest segment is ever
written, so only it may end in a torn record; older ones were synced whole before the
next one was created.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from mesoslite.replicated_log.durable_files import fsync_directory, write_all
from mesoslite.replicated_log.errors import CorruptionError
from mesoslite.replicated_log.framing import ScanEnd, ScanStop, encode_record, scan_records
from mesoslite.replicated_log.records import RecordType, encode_segment_header_payload

__all__ = [
    "SEGMENT_SUFFIX",
    "SegmentContents",
    "SegmentName",
    "SegmentWriter",
    "list_segments",
    "read_segment",
    "segment_file_name",
]

SEGMENT_SUFFIX = ".wal"
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
    """The valid records of a segment and where its valid prefix ends."""

    records: list[tuple[int, int, memoryview]]
    valid_size_bytes: int
    file_size_bytes: int
    torn_reason: str


def read_segment(path: Path, *, is_last: bool) -> SegmentContents:
    """Read every valid record. A torn tail is tolerated only in the last segment (the
    caller truncates it); any other damage raises `CorruptionError`."""
    buffer = path.read_bytes()
    end: list[ScanEnd] = []
    records = list(scan_records(buffer, 0, end))
    stop = end[0]
    if stop.stop is ScanStop.CORRUPT or (stop.stop is ScanStop.TORN and not is_last):
        raise CorruptionError(path, stop.offset_bytes, stop.reason)
    return SegmentContents(records, stop.offset_bytes, len(buffer), stop.reason)


class SegmentWriter:
    """The segment being appended to. Not thread-safe: one writer thread at a time."""

    def __init__(self, path: Path, fd: int, seq: int, size_bytes: int) -> None:
        self.path = path
        self.seq = seq
        self._fd = fd
        self._size_bytes = size_bytes

    @classmethod
    def create(cls, directory: Path, seq: int, first_index: int, preamble: bytes) -> SegmentWriter:
        """Create a segment whose first records are its header then `preamble`, synced,
        with the directory entry synced too."""
        path = directory / segment_file_name(seq, first_index)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        writer = cls(path, fd, seq, 0)
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
        cls, path: Path, seq: int, valid_size_bytes: int, file_size_bytes: int
    ) -> SegmentWriter:
        """Open the last segment for appending, cutting a torn tail off first."""
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            if valid_size_bytes != file_size_bytes:
                os.ftruncate(fd, valid_size_bytes)
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, seq, valid_size_bytes)

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    def write(self, data: bytes) -> None:
        write_all(self._fd, data)
        self._size_bytes += len(data)

    def sync(self) -> None:
        # fdatasync also persists the file size, which is all appends change besides data.
        os.fdatasync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
