"""What the replicated log keeps on disk: entries, the hard state, snapshots.

These are shaped like the Raft core's own types (etcd's raftpb: Entry, HardState,
ConfState, SnapshotMetadata, Snapshot) so that the Ready loop maps one onto the other
field by field. The WAL and the peer codec depend only on this module, never on the
core's internals.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "ConfState",
    "Entry",
    "EntryKind",
    "HardState",
    "Snapshot",
    "SnapshotMetadata",
]


class EntryKind(enum.IntEnum):
    """What an entry carries (etcd's EntryType, same values)."""

    NORMAL = 0
    CONF_CHANGE = 1
    CONF_CHANGE_V2 = 2


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry. `index` starts at 1; `term` is the leader's term that created it."""

    index: int
    term: int
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class HardState:
    """What a replica must remember across restarts: its term, its vote, the commit index."""

    term: int = 0
    vote: int = 0
    commit: int = 0

    @property
    def is_empty(self) -> bool:
        return self.term == 0 and self.vote == 0 and self.commit == 0


@dataclass(frozen=True, slots=True)
class ConfState:
    """The membership at a point of the log (joint consensus included)."""

    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()
    voters_outgoing: tuple[int, ...] = ()
    learners_next: tuple[int, ...] = ()
    auto_leave: bool = False


@dataclass(frozen=True, slots=True)
class SnapshotMetadata:
    """The log position a snapshot stands for, and the membership at that position."""

    index: int = 0
    term: int = 0
    conf_state: ConfState = field(default_factory=ConfState)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state machine at `metadata.index`, as opaque bytes (the registry's snapshot)."""

    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)
    data: bytes = b""

    @property
    def is_empty(self) -> bool:
        return self.metadata.index == 0
