"""`Ready`: one batch of work the core hands to its I/O shell.

The shell must, in this order:

1. persist `snapshot` (if any) and restore the state machine from it, and apply it to
   storage (`MemoryStorage.apply_snapshot`);
2. append `entries` and record `hard_state` on stable storage, fsyncing when `must_sync`,
   and mirror them into storage (`append`, `set_hard_state`);
3. only then send `messages` (a vote or an acknowledgement must never get ahead of disk);
4. apply `committed_entries` to the state machine, in order;
5. serve the reads in `read_states` once the state machine has applied their index;
6. call `advance(ready)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mesoslite.raft.messages import (
    Entry,
    HardState,
    Message,
    ReadState,
    Snapshot,
    SoftState,
)

__all__ = ["Ready"]


@dataclass(slots=True)
class Ready:
    # Leader or role changed since the previous Ready (None: unchanged). Not persisted.
    soft_state: SoftState | None = None
    # Term, vote or commit changed (None: unchanged). Persist before sending `messages`.
    hard_state: HardState | None = None
    # New log entries to persist before sending `messages`; they may replace a suffix.
    entries: list[Entry] = field(default_factory=list)
    # A snapshot received from the leader, to persist and restore the state machine from.
    snapshot: Snapshot | None = None
    # Entries known committed, to apply in order (conf changes take effect on `advance`).
    committed_entries: list[Entry] = field(default_factory=list)
    # Outgoing messages, to send after the persistence above.
    messages: list[Message] = field(default_factory=list)
    # Answers to read_index requests.
    read_states: list[ReadState] = field(default_factory=list)
    # Whether the writes need an fsync: entries, a snapshot, or a term/vote change do;
    # a commit index alone may be lost on a crash and recomputed.
    must_sync: bool = False
