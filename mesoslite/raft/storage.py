"""The `Storage` seam: the stable log the core reads, and `MemoryStorage`.

The core only ever reads storage. The I/O shell writes it: after persisting a Ready it
appends the Ready's entries, applies its snapshot and records its hard state, all before
calling `advance`. `MemoryStorage` is the in-memory mirror a shell keeps next to its
write-ahead log (rebuilt from the WAL on restart); tests use it on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mesoslite.raft.errors import (
    CompactedError,
    SnapshotOutOfDateError,
    UnavailableError,
)
from mesoslite.raft.messages import (
    ConfState,
    Entry,
    HardState,
    Snapshot,
    SnapshotMetadata,
    entry_size_bytes,
)

__all__ = [
    "BOOTSTRAP_INDEX",
    "MemoryStorage",
    "Storage",
    "bootstrap_snapshot",
    "limit_size",
]

# The founding members of a cluster start from a snapshot at this index (term 1) holding
# the initial membership, so a node that joins later learns that membership from a
# snapshot rather than from a log that never mentioned it.
BOOTSTRAP_INDEX = 1


class Storage(Protocol):
    """Read access to the stable log. Indexes are 1-based; `first_index() - 1` is the
    index of the latest snapshot, whose term `term()` still answers."""

    def initial_state(self) -> tuple[HardState, ConfState]:
        """The persisted hard state and the membership of the latest snapshot."""
        ...

    def entries(self, low: int, high: int, max_size_bytes: int | None) -> list[Entry]:
        """Entries in [low, high), cut after `max_size_bytes` but never empty.

        :raises CompactedError: `low` is not after the latest snapshot.
        :raises UnavailableError: `high` is beyond `last_index() + 1`.
        """
        ...

    def term(self, index: int) -> int:
        """:raises CompactedError, UnavailableError: outside [first_index() - 1, last_index()]."""
        ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot(self) -> Snapshot:
        """:raises SnapshotTemporarilyUnavailableError: try again later."""
        ...


def limit_size(entries: list[Entry], max_size_bytes: int | None) -> list[Entry]:
    """The longest prefix within `max_size_bytes`, but at least one entry."""
    if max_size_bytes is None or len(entries) <= 1:
        return entries
    total_bytes = 0
    for position, entry in enumerate(entries):
        total_bytes += entry_size_bytes(entry)
        if total_bytes > max_size_bytes and position > 0:
            return entries[:position]
    return entries


def bootstrap_snapshot(
    voters: Sequence[int], learners: Sequence[int] = (), data: bytes = b""
) -> Snapshot:
    """The snapshot every founding member of a new cluster starts from."""
    if not voters:
        raise ValueError("a cluster needs at least one voter")
    conf_state = ConfState(tuple(sorted(voters)), tuple(sorted(learners)))
    return Snapshot(SnapshotMetadata(BOOTSTRAP_INDEX, 1, conf_state), data)


class MemoryStorage:
    """`Storage` in memory. `_entries[0]` is a placeholder carrying the index and term of
    the latest snapshot, so that `term(first_index() - 1)` needs no special case."""

    __slots__ = ("_entries", "_hard_state", "_snapshot")

    def __init__(self) -> None:
        self._hard_state = HardState()
        self._snapshot = Snapshot()
        self._entries: list[Entry] = [Entry(term=0, index=0)]

    # -- reads (the Storage protocol) ----------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._snapshot.metadata.conf_state

    def first_index(self) -> int:
        return self._entries[0].index + 1

    def last_index(self) -> int:
        return self._entries[0].index + len(self._entries) - 1

    def term(self, index: int) -> int:
        offset = self._entries[0].index
        if index < offset:
            raise CompactedError(f"index {index} is compacted (snapshot at {offset})")
        position = index - offset
        if position >= len(self._entries):
            raise UnavailableError(f"index {index} is beyond the last index {self.last_index()}")
        return self._entries[position].term

    def entries(self, low: int, high: int, max_size_bytes: int | None) -> list[Entry]:
        offset = self._entries[0].index
        if low <= offset:
            raise CompactedError(f"index {low} is compacted (snapshot at {offset})")
        if high > self.last_index() + 1:
            raise UnavailableError(f"entries up to {high} requested, last is {self.last_index()}")
        return limit_size(self._entries[low - offset : high - offset], max_size_bytes)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def hard_state(self) -> HardState:
        return self._hard_state

    # -- writes (the shell's side) -------------------------------------------------------

    def set_hard_state(self, hard_state: HardState) -> None:
        self._hard_state = hard_state

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Replace the whole log by `snapshot` (received from a leader, or recovered)."""
        index = snapshot.metadata.index
        if index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError(
                f"snapshot at {index} is not newer than {self._snapshot.metadata.index}"
            )
        self._snapshot = snapshot
        self._entries = [Entry(term=snapshot.metadata.term, index=index)]

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        """Record the state machine as of applied `index`; does not drop entries."""
        if index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError(
                f"snapshot at {index} is not newer than {self._snapshot.metadata.index}"
            )
        if index > self.last_index():
            raise UnavailableError(f"snapshot at {index} beyond last index {self.last_index()}")
        self._snapshot = Snapshot(SnapshotMetadata(index, self.term(index), conf_state), data)
        return self._snapshot

    def compact(self, compact_index: int) -> None:
        """Drop entries up to and including `compact_index` (which a snapshot must cover)."""
        offset = self._entries[0].index
        if compact_index <= offset:
            raise CompactedError(f"index {compact_index} is already compacted")
        if compact_index > self.last_index():
            raise UnavailableError(f"compact index {compact_index} beyond {self.last_index()}")
        if compact_index > self._snapshot.metadata.index:
            raise ValueError("compacting past the latest snapshot would lose entries")
        position = compact_index - offset
        placeholder = Entry(term=self._entries[position].term, index=compact_index)
        self._entries = [placeholder, *self._entries[position + 1 :]]

    def append(self, entries: Sequence[Entry]) -> None:
        """Append entries, replacing any conflicting suffix; compacted ones are skipped."""
        if not entries:
            return
        first = self.first_index()
        if entries[-1].index < first:
            return
        if entries[0].index < first:
            entries = entries[first - entries[0].index :]
        position = entries[0].index - self._entries[0].index
        if position > len(self._entries):
            raise UnavailableError(
                f"gap: appending at {entries[0].index} after last index {self.last_index()}"
            )
        del self._entries[position:]
        self._entries.extend(entries)
