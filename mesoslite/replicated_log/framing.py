"""Record framing shared by WAL segments and snapshot files.

A record is `body_length:u32le | crc32:u32le | body`, where `body` is one type byte
followed by the payload and the checksum covers the whole body. The checksum is CRC-32
(zlib's, the IEEE polynomial): it is in the standard library and runs at GB/s, which is
all that detecting torn and rotted bytes needs; CRC-32C would only add a dependency.

`scan_records` walks a buffer and stops at the first record that is not whole and
valid, saying whether what follows looks like a torn tail (a write cut short by a
crash, which recovery may drop) or like damage to data that was once complete (which
recovery must refuse). The rule follows etcd's WAL decoder: a bad record is torn when it
runs past the end of the buffer, ends exactly at it, or covers a 512-byte sector of which
the part inside the record is all zeros (file systems may persist later pages of an
unsynced write before earlier ones, leaving holes of zeros). It is torn too when only
zeros follow it (the end of a write into preallocated space).
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "HEADER_BYTES",
    "MAX_BODY_BYTES",
    "ScanEnd",
    "ScanStop",
    "encode_record",
    "scan_records",
]

HEADER_BYTES = 8
# Far above any record we write (entries are proposals; snapshots are the registry) but
# low enough that a damaged length field cannot make recovery allocate gigabytes.
MAX_BODY_BYTES = 1 << 30
SECTOR_BYTES = 512

_HEADER_AND_TYPE = struct.Struct("<IIB")
_HEADER = struct.Struct("<II")
# The checksum of each possible type byte, so that encoding checksums the payload once.
_TYPE_CRCS = tuple(zlib.crc32(bytes([record_type])) for record_type in range(256))


def encode_record(record_type: int, payload: bytes) -> bytes:
    """Frame one record."""
    crc = zlib.crc32(payload, _TYPE_CRCS[record_type])
    return _HEADER_AND_TYPE.pack(len(payload) + 1, crc, record_type) + payload


class ScanStop(enum.Enum):
    """Why a scan stopped."""

    END = "end"  # the buffer ended exactly after a whole record
    TORN = "torn"  # a tail a crash could have left; the valid prefix is the log
    CORRUPT = "corrupt"  # damage followed by data that looks written: refuse


@dataclass(frozen=True, slots=True)
class ScanEnd:
    """Where and why `scan_records` stopped; `offset_bytes` ends the valid prefix."""

    offset_bytes: int
    stop: ScanStop
    reason: str = ""


def scan_records(
    buffer: bytes, start_bytes: int, end: list[ScanEnd]
) -> Iterator[tuple[int, int, memoryview]]:
    """Yield `(offset_bytes, record_type, payload)` for each valid record from
    `start_bytes`; when the iterator finishes, `end` holds one `ScanEnd`."""
    view = memoryview(buffer)
    size = len(buffer)
    offset = start_bytes
    while offset < size:
        if size - offset < HEADER_BYTES:
            end.append(ScanEnd(offset, ScanStop.TORN, "partial record header"))
            return
        body_length, crc = _HEADER.unpack_from(buffer, offset)
        body_start = offset + HEADER_BYTES
        body_end = body_start + body_length
        if body_length == 0 or body_length > MAX_BODY_BYTES:
            end.append(_classify(buffer, offset, body_end, f"bad record length {body_length}"))
            return
        if body_end > size:
            end.append(ScanEnd(offset, ScanStop.TORN, "record runs past the end"))
            return
        body = view[body_start:body_end]
        if zlib.crc32(body) != crc:
            end.append(_classify(buffer, offset, body_end, "checksum mismatch"))
            return
        yield offset, body[0], body[1:]
        offset = body_end
    end.append(ScanEnd(offset, ScanStop.END))


def _classify(buffer: bytes, offset: int, record_end: int, reason: str) -> ScanEnd:
    size = len(buffer)
    if record_end >= size:
        return ScanEnd(offset, ScanStop.TORN, reason)
    if buffer.count(0, record_end) == size - record_end:
        return ScanEnd(offset, ScanStop.TORN, f"{reason} before zeros to the end")
    if _has_zero_sector_chunk(buffer, offset, record_end):
        return ScanEnd(offset, ScanStop.TORN, f"{reason} over a zero-filled sector")
    return ScanEnd(offset, ScanStop.CORRUPT, reason)


def _has_zero_sector_chunk(buffer: bytes, start: int, end: int) -> bool:
    chunk_start = start
    while chunk_start < end:
        chunk_end = min(end, (chunk_start // SECTOR_BYTES + 1) * SECTOR_BYTES)
        if buffer.count(0, chunk_start, chunk_end) == chunk_end - chunk_start:
            return True
        chunk_start = chunk_end
    return False
