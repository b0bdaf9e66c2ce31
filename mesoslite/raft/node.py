"""`RawNode`: the interface an I/O shell drives.

    node = RawNode(Config(id=1, storage=storage, rng=random.Random(seed)))
    loop:
        node.tick() on every timer tick; node.step(m) for every message received;
        node.propose(data) / read_index(ctx) / transfer_leadership(to) on request
        while node.has_ready():
            ready = node.ready()
            ... persist, then send, then apply (see `mesoslite.raft.ready`) ...
            node.advance(ready)

Not thread-safe: one task owns it.
"""

from __future__ import annotations

from mesoslite.raft.config import Config
from mesoslite.raft.core import CampaignType, RaftCore
from mesoslite.raft.messages import (
    ConfChange,
    ConfState,
    EntryType,
    HardState,
    Message,
    SoftState,
    StateRole,
    entry_size_bytes,
)
from mesoslite.raft.ready import Ready
from mesoslite.raft.status import FollowerStatus, Status

__all__ = ["RawNode"]

_CONF_CHANGE = EntryType.CONF_CHANGE


class RawNode:
    __slots__ = ("_core", "_previous_hard_state", "_previous_soft_state")

    def __init__(self, config: Config) -> None:
        self._core = RaftCore(config)
        self._previous_soft_state = self._core.soft_state()
        self._previous_hard_state = self._core.hard_state()

    # -- inputs ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Advance logical time by one tick (elections and heartbeats count ticks)."""
        self._core.tick()

    def step(self, message: Message) -> None:
        """Handle a message received from a peer."""
        self._core.step(message)

    def campaign(self) -> None:
        """Start an election now instead of waiting for the election timeout."""
        self._core.hup(CampaignType.ELECTION)

    def propose(self, data: bytes) -> int:
        """Propose `data` (leader only); returns the index it will have if committed.

        :raises ProposalDroppedError: not the leader, or a transfer is in progress.
        """
        return self._core.propose(data)

    def propose_batch(self, batch: list[bytes]) -> int:
        """Propose several entries; returns the index of the last."""
        return self._core.propose_batch(batch)

    def propose_conf_change(self, change: ConfChange) -> int:
        """Propose a membership change (one at a time); returns its index.

        :raises ConfChangeError, ProposalDroppedError: see `RaftCore.propose_conf_change`.
        """
        return self._core.propose_conf_change(change)

    def read_index(self, context: bytes) -> None:
        """Request a linearizable read, answered by a ReadState carrying `context`."""
        self._core.read_index(context)

    def transfer_leadership(self, transferee: int) -> None:
        self._core.transfer_leadership(transferee)

    def report_snapshot(self, to_id: int, *, failed: bool) -> None:
        self._core.report_snapshot(to_id, failed=failed)

    def report_unreachable(self, to_id: int) -> None:
        self._core.report_unreachable(to_id)

    # -- outputs ---------------------------------------------------------------------------

    def has_ready(self) -> bool:
        core = self._core
        core.flush_appends()
        if core.messages or core.read_states:
            return True
        log = core.log
        if log.unstable.entries or log.unstable.snapshot is not None:
            return True
        if log.has_next_committed_entries():
            return True
        previous = self._previous_hard_state
        if (
            core.term != previous.term
            or core.vote != previous.vote
            or log.committed != previous.commit
        ):
            return True
        previous_soft = self._previous_soft_state
        return core.leader_id != previous_soft.leader_id or core.role is not previous_soft.role

    def ready(self) -> Ready:
        """Everything to persist, send and apply now. Call `advance` once it is done."""
        core = self._core
        core.flush_appends()
        log = core.log
        ready = Ready(
            entries=list(log.unstable.entries),
            snapshot=log.unstable.snapshot,
            committed_entries=log.next_committed_entries(),
            messages=core.messages,
            read_states=core.read_states,
        )
        core.messages = []
        core.read_states = []
        previous = self._previous_hard_state
        if (
            core.term != previous.term
            or core.vote != previous.vote
            or log.committed != previous.commit
        ):
            hard_state = core.hard_state()
            ready.hard_state = hard_state
            ready.must_sync = hard_state.term != previous.term or hard_state.vote != previous.vote
            self._previous_hard_state = hard_state
        if ready.entries or ready.snapshot is not None:
            ready.must_sync = True
        previous_soft = self._previous_soft_state
        if core.leader_id != previous_soft.leader_id or core.role is not previous_soft.role:
            soft_state = core.soft_state()
            ready.soft_state = soft_state
            self._previous_soft_state = soft_state
        return ready

    def advance(self, ready: Ready) -> None:
        """The shell has persisted, sent and applied `ready`."""
        log = self._core.log
        if ready.snapshot is not None:
            log.stable_snapshot_to(ready.snapshot.metadata.index)
        if ready.entries:
            last = ready.entries[-1]
            log.stable_to(last.index, last.term)
        if ready.committed_entries:
            core = self._core
            released_bytes = 0
            for entry in ready.committed_entries:
                released_bytes += entry_size_bytes(entry)
                if entry.type is _CONF_CHANGE:
                    core.apply_conf_change(ConfChange.decode(entry.data))
            if core.uncommitted_bytes:
                core.release_uncommitted(released_bytes)
            log.applied_to(ready.committed_entries[-1].index)
        elif ready.snapshot is not None:
            log.applied_to(ready.snapshot.metadata.index)

    # -- observation -----------------------------------------------------------------------

    @property
    def id(self) -> int:
        return self._core.id

    @property
    def term(self) -> int:
        return self._core.term

    @property
    def role(self) -> StateRole:
        return self._core.role

    @property
    def leader_id(self) -> int:
        return self._core.leader_id

    @property
    def is_leader(self) -> bool:
        return self._core.role is StateRole.LEADER

    @property
    def applied_index(self) -> int:
        return self._core.log.applied

    @property
    def committed_index(self) -> int:
        return self._core.log.committed

    @property
    def last_index(self) -> int:
        return self._core.log.last_index()

    def log_term(self, index: int) -> int:
        """The term of our entry at `index`, or 0 where we have none (or compacted it)."""
        return self._core.log.term_or_zero(index)

    def conf_state(self) -> ConfState:
        """The membership as of the applied index (what a snapshot taken now must carry)."""
        return self._core.tracker.conf_state()

    def soft_state(self) -> SoftState:
        return self._core.soft_state()

    def hard_state(self) -> HardState:
        return self._core.hard_state()

    def status(self) -> Status:
        core = self._core
        progress: dict[int, FollowerStatus] = {}
        if core.role is StateRole.LEADER:
            progress = {
                node_id: FollowerStatus(p.match, p.next, p.state, p.is_learner, p.recent_active)
                for node_id, p in sorted(core.tracker.progress.items())
            }
        return Status(
            id=core.id,
            hard_state=core.hard_state(),
            soft_state=core.soft_state(),
            applied_index=core.log.applied,
            last_index=core.log.last_index(),
            conf_state=core.tracker.conf_state(),
            progress=progress,
            lead_transferee=core.lead_transferee,
        )
