"""Errors raised by the Raft core and its storage.

RaftError
├── CompactedError                    the index lies before the first available entry
├── UnavailableError                  the index lies after the last entry
├── SnapshotOutOfDateError            a snapshot older than the one already held
├── SnapshotTemporarilyUnavailableError  storage cannot produce a snapshot right now
├── ProposalDroppedError              not leader, transfer in progress, or change refused
│   └── ConfChangeError               the membership change is invalid here
└── InvariantError                    a Raft invariant broke: a bug, or broken storage
"""

from __future__ import annotations

__all__ = [
    "CompactedError",
    "ConfChangeError",
    "InvariantError",
    "ProposalDroppedError",
    "RaftError",
    "SnapshotOutOfDateError",
    "SnapshotTemporarilyUnavailableError",
    "UnavailableError",
]


class RaftError(Exception):
    """Base class of everything the Raft package raises on purpose."""


class CompactedError(RaftError):
    """The requested index was compacted away into a snapshot."""


class UnavailableError(RaftError):
    """The requested index is beyond the end of the log."""


class SnapshotOutOfDateError(RaftError):
    """The snapshot is not newer than the one storage already holds."""


class SnapshotTemporarilyUnavailableError(RaftError):
    """Storage is still preparing a snapshot; the leader retries later."""


class ProposalDroppedError(RaftError):
    """The proposal was not appended; the caller may retry elsewhere or later."""


class ConfChangeError(ProposalDroppedError):
    """The membership change cannot be applied to the current configuration."""


class InvariantError(RaftError):
    """A Raft invariant does not hold. Never expected; means a bug or lost durable state."""
