"""`RaftLog`: the replicated log as one node sees it, stable storage plus unstable tail,
with the commit and applied cursors."""

from __future__ import annotations

from collections.abc import Sequence

from mesoslite.raft import _faults
from mesoslite.raft.errors import (
    CompactedError,
    InvariantError,
    RaftError,
    UnavailableError,
)
from mesoslite.raft.messages import Entry, EntryType, Snapshot
from mesoslite.raft.storage import Storage, limit_size
from mesoslite.raft.unstable import UnstableLog

__all__ = ["RaftLog"]


class RaftLog:
    """Invariant: applied <= committed <= last_index(), and first_index() - 1 <= applied
    except while an unstable snapshot waits for the shell."""

    __slots__ = ("applied", "committed", "max_apply_batch_bytes", "storage", "unstable")

    def __init__(self, storage: Storage, max_apply_batch_bytes: int | None = None) -> None:
        self.storage = storage
        self.unstable = UnstableLog(storage.last_index() + 1)
        # Everything up to the latest snapshot is committed and applied by definition.
        self.committed = storage.first_index() - 1
        self.applied = self.committed
        self.max_apply_batch_bytes = max_apply_batch_bytes

    # -- positions ------------------------------------------------------------------------

    def first_index(self) -> int:
        snapshot = self.unstable.snapshot
        if snapshot is not None:
            return snapshot.metadata.index + 1
        return self.storage.first_index()

    def last_index(self) -> int:
        # Inlined UnstableLog.maybe_last_index: this is the hottest call in the core.
        unstable = self.unstable
        if unstable.entries:
            return unstable.offset + len(unstable.entries) - 1
        if unstable.snapshot is not None:
            return unstable.snapshot.metadata.index
        return self.storage.last_index()

    def term(self, index: int) -> int:
        """:raises CompactedError, UnavailableError: outside [first_index()-1, last_index()]."""
        term = self.unstable.maybe_term(index)
        if term is not None:
            return term
        if index < self.first_index() - 1:
            raise CompactedError(f"index {index} is compacted")
        if index > self.last_index():
            raise UnavailableError(f"index {index} is beyond the last index")
        return self.storage.term(index)

    def term_or_zero(self, index: int) -> int:
        try:
            return self.term(index)
        except RaftError:
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        try:
            return self.term(index) == term
        except RaftError:
            return False

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Whether a log ending at (last_index, last_term) is at least as up to date as ours
        (Raft §5.4.1): the later last term wins, then the longer log."""
        our_last_term = self.last_term()
        return last_term > our_last_term or (
            last_term == our_last_term and last_index >= self.last_index()
        )

    # -- reading entries -------------------------------------------------------------------

    def slice(self, low: int, high: int, max_size_bytes: int | None) -> list[Entry]:
        """Entries in [low, high) from storage and the unstable tail.

        :raises CompactedError: `low` is not after the first available index.
        """
        if low >= high:
            return []
        if low < self.first_index():
            raise CompactedError(f"index {low} is compacted")
        if high > self.last_index() + 1:
            raise UnavailableError(f"slice up to {high} beyond the last index")
        offset = self.unstable.offset
        result: list[Entry] = []
        if low < offset:
            stable_high = min(high, offset)
            result = self.storage.entries(low, stable_high, max_size_bytes)
            if len(result) < stable_high - low:
                return result  # the size limit cut it short already
        if high > offset:
            tail = self.unstable.slice(max(low, offset), high)
            result = result + tail if result else tail
        return limit_size(result, max_size_bytes)

    def entries_from(self, index: int, max_size_bytes: int | None) -> list[Entry]:
        last = self.last_index()
        if index > last:
            return []
        return self.slice(index, last + 1, max_size_bytes)

    def has_next_committed_entries(self) -> bool:
        # A pending snapshot must be applied before any entry after it.
        return self.committed > self.applied and self.unstable.snapshot is None

    def next_committed_entries(self) -> list[Entry]:
        if not self.has_next_committed_entries():
            return []
        return self.slice(self.applied + 1, self.committed + 1, self.max_apply_batch_bytes)

    def has_unapplied_conf_changes(self) -> bool:
        if self.committed <= self.applied:
            return False
        if self.unstable.snapshot is not None:
            return True
        unapplied = self.slice(self.applied + 1, self.committed + 1, None)
        return any(entry.type is EntryType.CONF_CHANGE for entry in unapplied)

    def snapshot(self) -> Snapshot:
        """The newest snapshot: a pending one from a leader, else storage's."""
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    # -- appending and conflict resolution ------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> int:
        if not entries:
            return self.last_index()
        if entries[0].index - 1 < self.committed:
            raise InvariantError(
                f"appending at {entries[0].index} would overwrite committed {self.committed}"
            )
        self.unstable.truncate_and_append(entries)
        return self.last_index()

    def find_conflict(self, entries: Sequence[Entry]) -> int:
        """The index of the first entry that is new or disagrees with ours; 0 if none."""
        last = self.last_index()
        for entry in entries:
            if entry.index > last or not self.match_term(entry.index, entry.term):
                return entry.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest index <= `index` whose term is <= `term`, and that term.

        Used on both sides of a rejected append to skip a whole term of divergent entries
        per round trip instead of one entry."""
        if index > self.last_index():
            return index, 0
        while index > 0:
            try:
                our_term = self.term(index)
            except CompactedError:
                return index, 0
            if our_term <= term:
                return index, our_term
            index -= 1
        return 0, 0

    def maybe_append(
        self, prev_index: int, prev_term: int, leader_commit: int, entries: Sequence[Entry]
    ) -> int | None:
        """Follower side of AppendEntries. Returns the last index the leader's message
        covers, or None when our log does not contain (prev_index, prev_term)."""
        if not self.match_term(prev_index, prev_term):
            return None
        last_new_index = prev_index + len(entries)
        conflict_index = self.find_conflict(entries)
        if conflict_index:
            if conflict_index <= self.committed:
                raise InvariantError(
                    f"entry {conflict_index} conflicts with committed {self.committed}"
                )
            self.append(entries[conflict_index - prev_index - 1 :])
        self.commit_to(min(leader_commit, last_new_index))
        return last_new_index

    # -- cursors ---------------------------------------------------------------------------

    def commit_to(self, commit: int) -> None:
        if commit <= self.committed:
            return  # commit never moves backwards (a stale message may carry an older one)
        if commit > self.last_index():
            raise InvariantError(f"commit {commit} beyond last index {self.last_index()}")
        self.committed = commit

    def maybe_commit(self, quorum_index: int, term: int) -> bool:
        """Leader side: commit `quorum_index` if it is new and from the current term. Entries
        of earlier terms are committed only through a later entry of the current term
        (Raft §5.4.2, the Figure 8 scenario)."""
        if quorum_index <= self.committed:
            return False
        if self.term_or_zero(quorum_index) != term and not _faults.ACTIVE.commit_any_term:
            return False
        self.commit_to(quorum_index)
        return True

    def applied_to(self, index: int) -> None:
        if index == 0:
            return
        if index > self.committed or index < self.applied:
            raise InvariantError(
                f"applied {index} outside [{self.applied}, committed {self.committed}]"
            )
        self.applied = index

    def stable_to(self, index: int, term: int) -> None:
        self.unstable.stable_to(index, term)

    def stable_snapshot_to(self, index: int) -> None:
        self.unstable.stable_snapshot_to(index)

    def restore(self, snapshot: Snapshot) -> None:
        self.committed = snapshot.metadata.index
        self.unstable.restore(snapshot)
