"""The `task.updates` checkpoint file: every status update of a task and every
acknowledgement, in the order the agent handled them.

Each entry is one RecordIO record whose first byte says what follows: `U` and a
serialized `mesoslite.internal.StatusUpdate`, or `A` and the 16-byte uuid that was
acknowledged. Replaying the file rebuilds the task's update stream after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass

from mesoslite.proto import internal_pb2
from mesoslite.wire.recordio import RecordIODecoder, encode_record

__all__ = ["UpdateLogEntry", "ack_record", "read_update_log", "update_record"]

_UPDATE = b"U"
_ACK = b"A"


def update_record(update: internal_pb2.StatusUpdate) -> bytes:
    return encode_record(_UPDATE + update.SerializeToString())


def ack_record(uuid: bytes) -> bytes:
    return encode_record(_ACK + uuid)


@dataclass(frozen=True)
class UpdateLogEntry:
    update: internal_pb2.StatusUpdate | None = None
    acknowledged_uuid: bytes | None = None


def read_update_log(data: bytes) -> list[UpdateLogEntry]:
    """Decode a `task.updates` file; a torn last record (crash mid-write) is dropped."""
    decoder = RecordIODecoder()
    try:
        records = decoder.feed(data)
    except Exception:
        records = []
    entries: list[UpdateLogEntry] = []
    for record in records:
        kind, payload = record[:1], record[1:]
        if kind == _UPDATE:
            update = internal_pb2.StatusUpdate()
            update.ParseFromString(payload)
            entries.append(UpdateLogEntry(update=update))
        elif kind == _ACK:
            entries.append(UpdateLogEntry(acknowledged_uuid=payload))
    return entries
