"""The record types of WAL segments and snapshot files, and their payload encodings.

All integers are little-endian and fixed width: decoding is one `struct` call per record.

    SEGMENT_HEADER  format:u32 seq:u64 first_index:u64      first record of every segment
    ENTRY           index:u64 term:u64 type:u8 data          an entry (overwrites from index)
    HARD_STATE      term:u64 vote:u64 commit:u64             latest one wins
    SNAPSHOT_RESET  index:u64 term:u64                       log restarts after this position
    SNAPSHOT        index:u64 term:u64 voters learners data  a snapshot file's only record
                    (each id list: count:u32 then ids:u64)
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from pathlib import Path

from mesoslite.raft.messages import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    Snapshot,
    SnapshotMetadata,
)
from mesoslite.replicated_log.errors import CorruptionError

__all__ = [
    "FORMAT_VERSION",
    "RecordType",
    "SegmentHeader",
    "decode_entry",
    "decode_hard_state",
    "decode_segment_header",
    "decode_snapshot",
    "decode_snapshot_reset",
    "encode_entry_payload",
    "encode_hard_state_payload",
    "encode_segment_header_payload",
    "encode_snapshot_payload",
    "encode_snapshot_reset_payload",
]

FORMAT_VERSION = 1


class RecordType(enum.IntEnum):
    SEGMENT_HEADER = 1
    ENTRY = 2
    HARD_STATE = 3
    SNAPSHOT_RESET = 4
    SNAPSHOT = 5


_SEGMENT_HEADER = struct.Struct("<IQQ")
_ENTRY_PREFIX = struct.Struct("<QQB")
_HARD_STATE = struct.Struct("<QQQ")
_POSITION = struct.Struct("<QQ")
_COUNT = struct.Struct("<I")
_ENTRY_TYPES = {entry_type.value: entry_type for entry_type in EntryType}


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    """The first record of a segment: which segment it is and the index it started at."""

    seq: int
    first_index: int


def encode_segment_header_payload(seq: int, first_index: int) -> bytes:
    return _SEGMENT_HEADER.pack(FORMAT_VERSION, seq, first_index)


def decode_segment_header(payload: memoryview, path: Path, offset: int) -> SegmentHeader:
    _check_size(payload, _SEGMENT_HEADER.size, "segment header", path, offset)
    version, seq, first_index = _SEGMENT_HEADER.unpack_from(payload)
    if version != FORMAT_VERSION:
        raise CorruptionError(path, offset, f"unknown WAL format version {version}")
    return SegmentHeader(seq, first_index)


def encode_entry_payload(entry: Entry) -> bytes:
    return _ENTRY_PREFIX.pack(entry.index, entry.term, entry.type) + entry.data


def decode_entry(payload: memoryview, path: Path, offset: int) -> Entry:
    if len(payload) < _ENTRY_PREFIX.size:
        raise CorruptionError(path, offset, "entry record too short")
    index, term, type_value = _ENTRY_PREFIX.unpack_from(payload)
    entry_type = _ENTRY_TYPES.get(type_value)
    if entry_type is None:
        raise CorruptionError(path, offset, f"unknown entry type {type_value}")
    return Entry(term, index, bytes(payload[_ENTRY_PREFIX.size :]), entry_type)


def encode_hard_state_payload(hard_state: HardState) -> bytes:
    return _HARD_STATE.pack(hard_state.term, hard_state.vote, hard_state.commit)


def decode_hard_state(payload: memoryview, path: Path, offset: int) -> HardState:
    _check_size(payload, _HARD_STATE.size, "hard state", path, offset)
    return HardState(*_HARD_STATE.unpack_from(payload))


def encode_snapshot_reset_payload(index: int, term: int) -> bytes:
    return _POSITION.pack(index, term)


def decode_snapshot_reset(payload: memoryview, path: Path, offset: int) -> tuple[int, int]:
    _check_size(payload, _POSITION.size, "snapshot reset", path, offset)
    index, term = _POSITION.unpack_from(payload)
    return int(index), int(term)


def encode_snapshot_payload(snapshot: Snapshot) -> bytes:
    metadata = snapshot.metadata
    conf = metadata.conf_state
    parts = [_POSITION.pack(metadata.index, metadata.term)]
    for ids in (conf.voters, conf.learners):
        parts.append(_COUNT.pack(len(ids)))
        parts.append(struct.pack(f"<{len(ids)}Q", *ids))
    parts.append(snapshot.data)
    return b"".join(parts)


def decode_snapshot(payload: memoryview, path: Path) -> Snapshot:
    try:
        index, term = _POSITION.unpack_from(payload)
        offset = _POSITION.size
        id_lists: list[tuple[int, ...]] = []
        for _ in range(2):
            (count,) = _COUNT.unpack_from(payload, offset)
            offset += _COUNT.size
            id_lists.append(struct.unpack_from(f"<{count}Q", payload, offset))
            offset += 8 * count
    except struct.error as error:
        raise CorruptionError(path, 0, f"snapshot metadata: {error}") from error
    voters, learners = id_lists
    conf = ConfState(voters, learners)
    return Snapshot(SnapshotMetadata(index, term, conf), bytes(payload[offset:]))


def _check_size(payload: memoryview, size: int, what: str, path: Path, offset: int) -> None:
    if len(payload) != size:
        raise CorruptionError(path, offset, f"{what} record of {len(payload)} bytes")
