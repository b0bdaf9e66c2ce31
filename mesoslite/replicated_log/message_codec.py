"""A compact binary encoding of the Raft core's messages, for the peer transport.

Fixed-width little-endian fields packed with precompiled `struct`s: an append of many
small entries costs one `pack` per entry plus one join, and decoding one `unpack_from`
per entry. A batch is a version byte, a message count, then the messages:

    message   type:u8 to:u64 from:u64 term:u64 log_term:u64 index:u64 commit:u64
              reject:u8 reject_hint:u64 context_len:u32 entry_count:u32 has_snapshot:u8
              context  entries  [snapshot]
    entry     term:u64 index:u64 type:u8 data_len:u32 data
    snapshot  index:u64 term:u64 voter_count:u32 learner_count:u32 data_len:u64
              voters:u64*  learners:u64*  data
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from mesoslite.raft.messages import (
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)

__all__ = ["CODEC_VERSION", "MessageCodecError", "decode_messages", "encode_messages"]

CODEC_VERSION = 1

_BATCH = struct.Struct("<BI")
_MESSAGE = struct.Struct("<BQQQQQQBQIIB")
_ENTRY = struct.Struct("<QQBI")
_SNAPSHOT = struct.Struct("<QQIIQ")
_MESSAGE_TYPES = {member.value: member for member in MessageType}
_ENTRY_TYPES = {member.value: member for member in EntryType}


class MessageCodecError(ValueError):
    """The bytes are not a batch of messages this codec writes."""


def encode_messages(messages: Sequence[Message]) -> bytes:
    parts = [_BATCH.pack(CODEC_VERSION, len(messages))]
    append = parts.append
    for message in messages:
        snapshot = message.snapshot
        append(
            _MESSAGE.pack(
                message.type,
                message.to_id,
                message.from_id,
                message.term,
                message.log_term,
                message.index,
                message.commit,
                message.reject,
                message.reject_hint,
                len(message.context),
                len(message.entries),
                snapshot is not None,
            )
        )
        append(message.context)
        for entry in message.entries:
            append(_ENTRY.pack(entry.term, entry.index, entry.type, len(entry.data)))
            append(entry.data)
        if snapshot is not None:
            metadata = snapshot.metadata
            voters = metadata.conf_state.voters
            learners = metadata.conf_state.learners
            append(
                _SNAPSHOT.pack(
                    metadata.index, metadata.term, len(voters), len(learners), len(snapshot.data)
                )
            )
            append(struct.pack(f"<{len(voters) + len(learners)}Q", *voters, *learners))
            append(snapshot.data)
    return b"".join(parts)


def decode_messages(data: bytes) -> list[Message]:
    """:raises MessageCodecError: the bytes are damaged, truncated or of another version."""
    try:
        return _decode(data)
    except (struct.error, KeyError, IndexError) as error:
        raise MessageCodecError(f"malformed raft message batch: {error!r}") from error


def _decode(data: bytes) -> list[Message]:
    view = memoryview(data)
    version, count = _BATCH.unpack_from(view, 0)
    if version != CODEC_VERSION:
        raise MessageCodecError(f"raft message codec version {version}, expected {CODEC_VERSION}")
    offset = _BATCH.size
    messages = []
    for _ in range(count):
        (
            message_type,
            to_id,
            from_id,
            term,
            log_term,
            index,
            commit,
            reject,
            reject_hint,
            context_bytes,
            entry_count,
            has_snapshot,
        ) = _MESSAGE.unpack_from(view, offset)
        offset += _MESSAGE.size
        context = _take(view, offset, context_bytes)
        offset += context_bytes
        entries: list[Entry] = []
        for _ in range(entry_count):
            entry_term, entry_index, entry_type, data_bytes = _ENTRY.unpack_from(view, offset)
            offset += _ENTRY.size
            entry_data = _take(view, offset, data_bytes)
            offset += data_bytes
            entries.append(Entry(entry_term, entry_index, entry_data, _ENTRY_TYPES[entry_type]))
        snapshot = None
        if has_snapshot:
            snapshot_index, snapshot_term, voter_count, learner_count, data_bytes = (
                _SNAPSHOT.unpack_from(view, offset)
            )
            offset += _SNAPSHOT.size
            ids = struct.unpack_from(f"<{voter_count + learner_count}Q", view, offset)
            offset += 8 * len(ids)
            snapshot_data = _take(view, offset, data_bytes)
            offset += data_bytes
            conf_state = ConfState(ids[:voter_count], ids[voter_count:])
            snapshot = Snapshot(
                SnapshotMetadata(snapshot_index, snapshot_term, conf_state), snapshot_data
            )
        messages.append(
            Message(
                _MESSAGE_TYPES[message_type],
                to_id,
                from_id,
                term,
                log_term,
                index,
                entries or (),  # the default, and no list for the many entry-less messages
                commit,
                snapshot,
                bool(reject),
                reject_hint,
                context,
            )
        )
    if offset != len(data):
        raise MessageCodecError(f"{len(data) - offset} bytes after the last message")
    return messages


def _take(view: memoryview, offset: int, size: int) -> bytes:
    if offset + size > len(view):
        raise MessageCodecError("truncated raft message batch")
    return bytes(view[offset : offset + size])
