"""Raft safety checkers for the simulation, separate from the code under test.

The replicas report what they persist, send, apply and install; the checker holds the
global picture and raises `SafetyViolation` the moment a property breaks:

- election safety: at most one leader per term (from every leader-only message sent);
- log matching: an (index, term) pair names one entry, with one predecessor term, across
  all replicas and all time (checked incrementally as entries are persisted);
- leader completeness: a new leader holds the newest entry known to be committed;
- state machine safety: no two replicas apply different entries at an index, and an
  installed snapshot matches what others applied up to its index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mesoslite.raft import BOOTSTRAP_INDEX, Entry, EntryType

__all__ = ["LogView", "RaftSafetyChecker", "SafetyViolation"]

INITIAL_DIGEST = 0


class SafetyViolation(AssertionError):
    """A Raft safety property does not hold."""


@dataclass(slots=True, frozen=True)
class LogView:
    """How the checker may look at one replica's log."""

    term_at: Callable[[int], int]  # 0 where the replica holds no entry
    first_index: int  # entries before it are compacted into the snapshot
    last_index: int


@dataclass(slots=True)
class _AppliedEntry:
    term: int
    type: EntryType
    data: bytes
    digest: int  # state machine digest after applying this entry
    applied_by: int  # the first replica that applied it


class RaftSafetyChecker:
    __slots__ = (
        "_applied",
        "_entries",
        "_leader_of_term",
        "conf_change_listener",
        "entries_checked",
    )

    def __init__(self) -> None:
        self._leader_of_term: dict[int, int] = {}
        # (index, term) -> (type, data, term of index - 1)
        self._entries: dict[tuple[int, int], tuple[EntryType, bytes, int]] = {}
        # The committed log as applied anywhere; position = index. Index 0 is a placeholder
        # and index 1 is the bootstrap snapshot every founding member starts from.
        self._applied: list[_AppliedEntry] = [
            _AppliedEntry(0, EntryType.NORMAL, b"", INITIAL_DIGEST, 0),
            _AppliedEntry(1, EntryType.NORMAL, b"", INITIAL_DIGEST, 0),
        ]
        self.entries_checked = 0
        # Called the first time any replica applies a CONF_CHANGE entry.
        self.conf_change_listener: Callable[[Entry], None] | None = None

    # -- observations ----------------------------------------------------------------------

    @property
    def applied_index(self) -> int:
        """The newest index known to be committed (applied by some replica)."""
        return len(self._applied) - 1

    def applied_entry(self, index: int) -> tuple[int, bytes]:
        """(term, data) of the committed entry at `index`."""
        entry = self._applied[index]
        return entry.term, entry.data

    def leaders_by_term(self) -> dict[int, int]:
        return dict(self._leader_of_term)

    # -- election safety -------------------------------------------------------------------

    def on_leader_message(self, node_id: int, term: int) -> None:
        """`node_id` sent a message only a leader of `term` sends."""
        leader = self._leader_of_term.setdefault(term, node_id)
        if leader != node_id:
            raise SafetyViolation(
                f"election safety: nodes {leader} and {node_id} both lead term {term}"
            )

    def on_became_leader(self, node_id: int, term: int, log: LogView) -> None:
        self.on_leader_message(node_id, term)
        # Leader completeness: the newest committed entry known is in the new leader's log
        # (with log matching, so is everything before it).
        index = self.applied_index
        if index <= BOOTSTRAP_INDEX or index < log.first_index - 1:
            return  # compacted into the leader's snapshot, which is checked on install
        committed_term = self._applied[index].term
        if index > log.last_index or log.term_at(index) != committed_term:
            raise SafetyViolation(
                f"leader completeness: node {node_id} leads term {term} but holds term "
                f"{log.term_at(index)} at index {index}, where term {committed_term} committed"
            )

    # -- log matching ----------------------------------------------------------------------

    def on_entries_persisted(
        self, node_id: int, previous_term: int, entries: Sequence[Entry]
    ) -> None:
        """`entries` (consecutive) were persisted after an entry of `previous_term`."""
        known = self._entries
        for entry in entries:
            record = (entry.type, entry.data, previous_term)
            key = (entry.index, entry.term)
            existing = known.setdefault(key, record)
            if existing != record:
                raise SafetyViolation(
                    f"log matching: node {node_id} holds a different entry at index "
                    f"{entry.index} term {entry.term} (or after a different predecessor)"
                )
            previous_term = entry.term
        self.entries_checked += len(entries)

    # -- state machine safety --------------------------------------------------------------

    def on_applied(self, node_id: int, entry: Entry, digest: int) -> None:
        applied = self._applied
        index = entry.index
        if index < len(applied):
            known = applied[index]
            if known.term != entry.term or known.data != entry.data or known.type is not entry.type:
                raise SafetyViolation(
                    f"state machine safety: node {node_id} applied term {entry.term} "
                    f"{entry.data!r} at index {index}, node {known.applied_by} applied "
                    f"term {known.term} {known.data!r}"
                )
            if known.digest != digest:
                raise SafetyViolation(
                    f"state machine safety: node {node_id} reached a different state at {index}"
                )
            return
        if index != len(applied):
            raise SafetyViolation(
                f"node {node_id} applied index {index} before anyone applied {len(applied)}"
            )
        applied.append(_AppliedEntry(entry.term, entry.type, entry.data, digest, node_id))
        if entry.type is EntryType.CONF_CHANGE and self.conf_change_listener is not None:
            self.conf_change_listener(entry)

    def on_snapshot_installed(self, node_id: int, index: int, term: int, digest: int) -> None:
        if index >= len(self._applied):
            raise SafetyViolation(
                f"node {node_id} installed a snapshot at {index}, beyond anything applied"
            )
        known = self._applied[index]
        if index > BOOTSTRAP_INDEX and (known.term != term or known.digest != digest):
            raise SafetyViolation(
                f"state machine safety: node {node_id} installed a snapshot at {index} "
                "that differs from the state others applied there"
            )
