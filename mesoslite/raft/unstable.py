"""The tail of the log that the shell has not yet persisted.

New entries (and a snapshot received from a leader) live here until a Ready hands them to
the shell and `advance` reports them stable; from then on `Storage` holds them.
"""

from __future__ import annotations

from collections.abc import Sequence

from mesoslite.raft.messages import Entry, Snapshot

__all__ = ["UnstableLog"]


class UnstableLog:
    """`entries[i]` has index `offset + i`; `snapshot`, if any, precedes them all."""

    __slots__ = ("entries", "offset", "snapshot")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        """The first log index, if an unstable snapshot decides it."""
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, index: int) -> int | None:
        if index < self.offset:
            snapshot = self.snapshot
            if snapshot is not None and snapshot.metadata.index == index:
                return snapshot.metadata.term
            return None
        position = index - self.offset
        if position >= len(self.entries):
            return None
        return self.entries[position].term

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to `index` are persisted, unless they were replaced since the Ready
        that carried them (then the term no longer matches and they stay unstable)."""
        if index < self.offset or self.maybe_term(index) != term:
            return
        del self.entries[: index + 1 - self.offset]
        self.offset = index + 1

    def stable_snapshot_to(self, index: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == index:
            self.snapshot = None

    def restore(self, snapshot: Snapshot) -> None:
        self.offset = snapshot.metadata.index + 1
        self.entries = []
        self.snapshot = snapshot

    def truncate_and_append(self, entries: Sequence[Entry]) -> None:
        first = entries[0].index
        if first == self.offset + len(self.entries):
            self.entries.extend(entries)
        elif first <= self.offset:
            # The new entries replace everything unstable (and maybe some stable ones:
            # the shell's storage append overwrites those when it persists these).
            self.offset = first
            self.entries = list(entries)
        else:
            del self.entries[first - self.offset :]
            self.entries.extend(entries)

    def slice(self, low: int, high: int) -> list[Entry]:
        return self.entries[low - self.offset : high - self.offset]
