"""The records the Raft core exchanges with its peers and its I/O shell.

These are our own types, not Mesos protobufs: log entries, the persistent hard state,
snapshots and their metadata, membership (conf) changes, peer messages, and the volatile
state a shell may want to observe. They are plain slotted dataclasses; the core never
mutates one it has received or handed out, so the shell may share them freely.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "NO_NODE",
    "ConfChange",
    "ConfChangeType",
    "ConfState",
    "Entry",
    "EntryType",
    "HardState",
    "Message",
    "MessageType",
    "ReadState",
    "Snapshot",
    "SnapshotMetadata",
    "SoftState",
    "StateRole",
    "entry_size_bytes",
]

# Node ids are positive; 0 means "nobody" (no vote cast, no known leader).
NO_NODE = 0

# A rough per-entry framing cost so that empty entries still count towards size limits.
_ENTRY_OVERHEAD_BYTES = 16


class EntryType(enum.IntEnum):
    NORMAL = 0
    CONF_CHANGE = 1


@dataclass(slots=True)
class Entry:
    """One log entry. `data` is opaque to the core unless `type` is CONF_CHANGE."""

    term: int
    index: int
    data: bytes = b""
    type: EntryType = EntryType.NORMAL


def entry_size_bytes(entry: Entry) -> int:
    return len(entry.data) + _ENTRY_OVERHEAD_BYTES


@dataclass(slots=True)
class HardState:
    """What must be on stable storage before any message of the same Ready is sent."""

    term: int = 0
    vote: int = NO_NODE
    commit: int = 0


@dataclass(slots=True)
class ConfState:
    """A membership: the voters and the non-voting learners (sorted node ids)."""

    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()


@dataclass(slots=True)
class SnapshotMetadata:
    index: int = 0
    term: int = 0
    conf_state: ConfState = field(default_factory=ConfState)


@dataclass(slots=True)
class Snapshot:
    """The state machine as of `metadata.index` plus the membership at that index."""

    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)
    data: bytes = b""


class ConfChangeType(enum.IntEnum):
    ADD_VOTER = 0  # also promotes an existing learner
    ADD_LEARNER = 1  # also demotes an existing voter
    REMOVE_NODE = 2


_CONF_CHANGE_HEADER = struct.Struct(">BQ")


@dataclass(slots=True)
class ConfChange:
    """One membership change, carried through the log as a CONF_CHANGE entry."""

    type: ConfChangeType
    node_id: int
    context: bytes = b""

    def encode(self) -> bytes:
        return _CONF_CHANGE_HEADER.pack(int(self.type), self.node_id) + self.context

    @classmethod
    def decode(cls, data: bytes) -> ConfChange:
        change_type, node_id = _CONF_CHANGE_HEADER.unpack_from(data)
        return cls(ConfChangeType(change_type), node_id, bytes(data[_CONF_CHANGE_HEADER.size :]))


class MessageType(enum.IntEnum):
    APPEND = 1  # leader -> follower: entries after (index, log_term), plus commit
    APPEND_RESPONSE = 2  # index acked, or reject with a hint where the logs diverge
    VOTE = 3
    VOTE_RESPONSE = 4
    PRE_VOTE = 5  # "would you vote for me at term+1?" without anyone changing term
    PRE_VOTE_RESPONSE = 6
    HEARTBEAT = 7  # context carries the newest pending ReadIndex request
    HEARTBEAT_RESPONSE = 8
    SNAPSHOT = 9  # InstallSnapshot
    TRANSFER_LEADER = 10  # from_id names the transferee, not the sender
    TIMEOUT_NOW = 11  # leader -> transferee: campaign now, skipping pre-vote and leases
    READ_INDEX = 12  # context identifies the read; term 0 when forwarded
    READ_INDEX_RESPONSE = 13


@dataclass(slots=True)
class Message:
    """A message between two Raft peers. Fields unused by a type keep their defaults."""

    type: MessageType
    to_id: int = NO_NODE
    from_id: int = NO_NODE
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: Sequence[Entry] = ()
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""


class StateRole(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(slots=True, frozen=True)
class SoftState:
    """Volatile state worth telling the shell about; never persisted."""

    leader_id: int
    role: StateRole


@dataclass(slots=True, frozen=True)
class ReadState:
    """A linearizable read may be served once the state machine applied `index`."""

    index: int
    request_context: bytes
