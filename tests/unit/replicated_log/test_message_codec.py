"""The peer message codec: every field round-trips; damaged input fails cleanly."""

from __future__ import annotations

import pytest

from mesoslite.raft.messages import (
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)
from mesoslite.replicated_log.message_codec import (
    MessageCodecError,
    decode_messages,
    encode_messages,
)


def sample_messages() -> list[Message]:
    entries = [
        Entry(3, 10, b"proposal"),
        Entry(3, 11, b""),
        Entry(3, 12, b"\x00add", EntryType.CONF_CHANGE),
    ]
    snapshot = Snapshot(SnapshotMetadata(9, 2, ConfState((1, 2, 3), (4,))), b"registry" * 100)
    messages = [
        Message(MessageType.APPEND, 2, 1, 3, 3, 9, entries, commit=8),
        Message(MessageType.APPEND_RESPONSE, 1, 2, 3, index=12, reject=True, reject_hint=7),
        Message(MessageType.SNAPSHOT, 4, 1, 3, snapshot=snapshot),
        Message(MessageType.HEARTBEAT, 2, 1, 3, commit=12, context=b"read-42"),
        Message(MessageType.SNAPSHOT, 5, 1, 3, snapshot=Snapshot()),
    ]
    messages += [Message(message_type, 2**63, 1, 2**64 - 1) for message_type in MessageType]
    return messages


def test_every_field_round_trips() -> None:
    messages = sample_messages()
    assert decode_messages(encode_messages(messages)) == messages


def test_an_empty_batch_round_trips() -> None:
    assert decode_messages(encode_messages([])) == []


def test_every_truncation_fails_cleanly() -> None:
    data = encode_messages(sample_messages()[:4])
    for cut in range(len(data)):
        with pytest.raises(MessageCodecError):
            decode_messages(data[:cut])


def test_trailing_bytes_and_other_versions_are_refused() -> None:
    data = encode_messages(sample_messages())
    with pytest.raises(MessageCodecError, match="after the last"):
        decode_messages(data + b"\x00")
    with pytest.raises(MessageCodecError, match="version"):
        decode_messages(b"\x02" + data[1:])


def test_unknown_message_and_entry_types_are_refused() -> None:
    data = bytearray(encode_messages([Message(MessageType.APPEND, 2, 1, 1, entries=[Entry(1, 1)])]))
    bad_message_type = bytearray(data)
    bad_message_type[5] = 200  # the first message's type byte
    with pytest.raises(MessageCodecError):
        decode_messages(bytes(bad_message_type))
    bad_entry_type = bytearray(data)
    bad_entry_type[-5] = 9  # the entry's type byte (then data_len:u32, no data)
    with pytest.raises(MessageCodecError):
        decode_messages(bytes(bad_entry_type))
