"""A sans-I/O Raft core: elections with pre-vote and check-quorum, pipelined and batched
log replication, snapshots, single-step membership changes with learners, leadership
transfer and ReadIndex reads.

Nothing here touches a clock, a socket, a file or a thread: time arrives as `tick()`,
randomness as an injected `random.Random`, and all output leaves as a `Ready` that an I/O
shell persists, sends and applies (see `mesoslite.raft.ready` for the order).
"""

from mesoslite.raft.config import Config
from mesoslite.raft.errors import (
    CompactedError,
    ConfChangeError,
    InvariantError,
    ProposalDroppedError,
    RaftError,
    SnapshotOutOfDateError,
    SnapshotTemporarilyUnavailableError,
    UnavailableError,
)
from mesoslite.raft.messages import (
    NO_NODE,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
    SnapshotMetadata,
    SoftState,
    StateRole,
)
from mesoslite.raft.node import RawNode
from mesoslite.raft.progress import ProgressState
from mesoslite.raft.ready import Ready
from mesoslite.raft.status import FollowerStatus, Status
from mesoslite.raft.storage import BOOTSTRAP_INDEX, MemoryStorage, Storage, bootstrap_snapshot

__all__ = [
    "BOOTSTRAP_INDEX",
    "NO_NODE",
    "CompactedError",
    "ConfChange",
    "ConfChangeError",
    "ConfChangeType",
    "ConfState",
    "Config",
    "Entry",
    "EntryType",
    "FollowerStatus",
    "HardState",
    "InvariantError",
    "MemoryStorage",
    "Message",
    "MessageType",
    "ProgressState",
    "ProposalDroppedError",
    "RaftError",
    "RawNode",
    "ReadState",
    "Ready",
    "Snapshot",
    "SnapshotMetadata",
    "SnapshotOutOfDateError",
    "SnapshotTemporarilyUnavailableError",
    "SoftState",
    "StateRole",
    "Status",
    "Storage",
    "UnavailableError",
    "bootstrap_snapshot",
]
