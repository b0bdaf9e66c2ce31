"""Errors of the replicated log's storage.

ReplicatedLogError
├── CorruptionError      bytes on disk that cannot be a valid log (refuse to start)
├── WalFailedError       a write or fsync failed: nothing more may be acknowledged
├── CompactedError       the asked index is below the snapshot (Storage protocol)
└── UnavailableError     the asked index is past the last entry (Storage protocol)
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CorruptionError", "ReplicatedLogError", "WalFailedError"]


class ReplicatedLogError(Exception):
    """Base of every error this package raises about its storage."""


class CorruptionError(ReplicatedLogError):
    """Data on disk is damaged somewhere other than a torn tail. Starting anyway could
    forget acknowledged writes, so the replica must not start: restore the data
    directory or remove this replica and add it back to the cluster."""

    def __init__(self, path: Path, offset_bytes: int, reason: str) -> None:
        super().__init__(f"{path}: corrupt at byte {offset_bytes}: {reason}")
        self.path = path
        self.offset_bytes = offset_bytes
        self.reason = reason


class WalFailedError(ReplicatedLogError):
    """An earlier write or fsync failed. After a failed fsync the kernel may have dropped
    the dirty pages, so retrying could report durability that is not there: the log
    refuses every later write and the process should restart and recover from disk."""
