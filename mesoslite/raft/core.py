"""`RaftCore`: the Raft state machine of one node, without any I/O.

Inputs are `tick()`, `step(message)` and the proposal/read/transfer calls; outputs pile up
in `messages` and `read_states` and in the log's unstable tail and commit cursor, which
`RawNode` packs into a Ready. Each role has its own step and tick function, swapped on
every role change.

Appends to followers are not sent when an event makes them necessary but queued and sent
by `flush_appends()` when the shell asks for a Ready, so every proposal made between two
Readies travels in one append per follower (batching), while a follower in REPLICATE state
gets consecutive appends without waiting for answers (pipelining, bounded by Inflights).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from mesoslite.raft import _faults
from mesoslite.raft.confchange import Membership, apply_conf_change
from mesoslite.raft.config import Config
from mesoslite.raft.errors import (
    CompactedError,
    ConfChangeError,
    InvariantError,
    ProposalDroppedError,
    SnapshotTemporarilyUnavailableError,
)
from mesoslite.raft.log import RaftLog
from mesoslite.raft.messages import (
    NO_NODE,
    ConfChange,
    ConfChangeType,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
    SoftState,
    StateRole,
    entry_size_bytes,
)
from mesoslite.raft.progress import Progress, ProgressState
from mesoslite.raft.quorum import VoteResult
from mesoslite.raft.read_only import ReadOnly
from mesoslite.raft.tracker import ProgressTracker

__all__ = ["CampaignType", "RaftCore"]

# Local aliases: these are compared on every message.
_APPEND = MessageType.APPEND
_APPEND_RESPONSE = MessageType.APPEND_RESPONSE
_VOTE = MessageType.VOTE
_VOTE_RESPONSE = MessageType.VOTE_RESPONSE
_PRE_VOTE = MessageType.PRE_VOTE
_PRE_VOTE_RESPONSE = MessageType.PRE_VOTE_RESPONSE
_HEARTBEAT = MessageType.HEARTBEAT
_HEARTBEAT_RESPONSE = MessageType.HEARTBEAT_RESPONSE
_SNAPSHOT = MessageType.SNAPSHOT
_TRANSFER_LEADER = MessageType.TRANSFER_LEADER
_TIMEOUT_NOW = MessageType.TIMEOUT_NOW
_READ_INDEX = MessageType.READ_INDEX
_READ_INDEX_RESPONSE = MessageType.READ_INDEX_RESPONSE
_REPLICATE = ProgressState.REPLICATE
_PROBE = ProgressState.PROBE
_LEADER = StateRole.LEADER

# Vote requests of a leadership transfer carry this context: voters grant them even while
# they believe in a live leader (the leader itself asked for the transfer).
_TRANSFER_CONTEXT = b"raft:transfer"


class CampaignType(enum.Enum):
    PRE_ELECTION = "pre-election"
    ELECTION = "election"
    TRANSFER = "transfer"


class RaftCore:
    """One Raft node. Not thread-safe; drive it from one place (normally `RawNode`)."""

    __slots__ = (
        "_append_queue",
        "_appended_since_heartbeat",
        "_broadcast_queued",
        "_rng",
        "_step_role",
        "_tick_role",
        "broadcast_commit",
        "check_quorum",
        "election_elapsed_ticks",
        "election_ticks",
        "heartbeat_elapsed_ticks",
        "heartbeat_ticks",
        "id",
        "is_learner",
        "lead_transferee",
        "leader_id",
        "log",
        "max_msg_size_bytes",
        "max_uncommitted_bytes",
        "messages",
        "pending_conf_index",
        "pending_read_index_messages",
        "pre_vote",
        "quiet_heartbeats",
        "randomized_election_ticks",
        "read_only",
        "read_states",
        "role",
        "term",
        "tracker",
        "uncommitted_bytes",
        "vote",
    )

    def __init__(self, config: Config) -> None:
        config.validate()
        self.id = config.id
        self.election_ticks = config.election_ticks
        self.heartbeat_ticks = config.heartbeat_ticks
        self.check_quorum = config.check_quorum
        self.pre_vote = config.pre_vote
        self.broadcast_commit = config.broadcast_commit
        self.quiet_heartbeats = config.quiet_heartbeats
        self.max_msg_size_bytes = config.max_msg_size_bytes
        self.max_uncommitted_bytes = config.max_uncommitted_bytes
        # Entry bytes this leader appended that are not yet handed out as committed.
        self.uncommitted_bytes = 0
        self._rng = config.rng
        self.log = RaftLog(config.storage, config.max_apply_batch_bytes)
        self.tracker = ProgressTracker(config.max_inflight_msgs, config.max_inflight_bytes)
        self.term = 0
        self.vote = NO_NODE
        self.leader_id = NO_NODE
        self.role = StateRole.FOLLOWER
        self.is_learner = False
        self.messages: list[Message] = []
        self.read_states: list[ReadState] = []
        self.read_only = ReadOnly()
        self.pending_read_index_messages: list[Message] = []
        self.lead_transferee = NO_NODE
        # The index of the newest conf change the leader appended; no other may be
        # proposed until the log is applied up to it.
        self.pending_conf_index = 0
        self.election_elapsed_ticks = 0
        self.heartbeat_elapsed_ticks = 0
        self.randomized_election_ticks = self.election_ticks
        self._broadcast_queued = False
        self._append_queue: dict[int, bool] = {}  # follower -> may the append be empty
        # Followers sent an append since the last periodic heartbeat (quiet_heartbeats).
        self._appended_since_heartbeat: set[int] = set()
        self._step_role: Callable[[Message], None] = self._step_follower
        self._tick_role: Callable[[], None] = self._tick_election

        hard_state, conf_state = config.storage.initial_state()
        self.tracker.set_membership(
            Membership.from_conf_state(conf_state), self.log.last_index() + 1
        )
        self._after_membership_change()
        if hard_state != HardState():
            self._load_hard_state(hard_state)
        if config.applied_index > 0:
            self.log.applied_to(config.applied_index)
        self._become_follower(self.term, NO_NODE)

    # -- observation ---------------------------------------------------------------------

    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    def soft_state(self) -> SoftState:
        return SoftState(self.leader_id, self.role)

    def _load_hard_state(self, hard_state: HardState) -> None:
        if hard_state.commit > self.log.last_index():
            raise InvariantError(
                f"persisted commit {hard_state.commit} beyond last index {self.log.last_index()}"
            )
        # A snapshot may be newer than a commit index whose write was not yet synced.
        self.log.committed = max(hard_state.commit, self.log.committed)
        self.term = hard_state.term
        self.vote = hard_state.vote

    def _promotable(self) -> bool:
        """Whether this node may campaign: a voter, with no snapshot still to apply."""
        progress = self.tracker.progress.get(self.id)
        return (
            progress is not None and not progress.is_learner and self.log.unstable.snapshot is None
        )

    # -- role changes ----------------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NO_NODE
        self.leader_id = NO_NODE
        self.election_elapsed_ticks = 0
        self.heartbeat_elapsed_ticks = 0
        self.randomized_election_ticks = self.election_ticks + self._rng.randrange(
            self.election_ticks
        )
        self.lead_transferee = NO_NODE
        self.tracker.reset_votes()
        last_index = self.log.last_index()
        for node_id, progress in self.tracker.progress.items():
            progress.reset(last_index + 1, last_index if node_id == self.id else 0)
        self.pending_conf_index = 0
        self.uncommitted_bytes = 0
        self.read_only = ReadOnly()
        self.pending_read_index_messages = []
        self._broadcast_queued = False
        self._append_queue.clear()
        self._appended_since_heartbeat.clear()

    def _become_follower(self, term: int, leader_id: int) -> None:
        self._step_role = self._step_follower
        self._tick_role = self._tick_election
        self._reset(term)
        self.leader_id = leader_id
        self.role = StateRole.FOLLOWER

    def _become_pre_candidate(self) -> None:
        if self.role is _LEADER:
            raise InvariantError("a leader cannot become a pre-candidate")
        # Neither the term nor the vote changes: that is the point of a pre-vote.
        self._step_role = self._step_candidate
        self._tick_role = self._tick_election
        self.tracker.reset_votes()
        self.leader_id = NO_NODE
        self.role = StateRole.PRE_CANDIDATE

    def _become_candidate(self) -> None:
        if self.role is _LEADER:
            raise InvariantError("a leader cannot become a candidate")
        self._step_role = self._step_candidate
        self._tick_role = self._tick_election
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = StateRole.CANDIDATE

    def _become_leader(self) -> None:
        if self.role is StateRole.FOLLOWER:
            raise InvariantError("a follower cannot become leader without an election")
        self._step_role = self._step_leader
        self._tick_role = self._tick_heartbeat
        self._reset(self.term)
        self.leader_id = self.id
        self.role = _LEADER
        own = self.tracker.progress[self.id]
        own.become_replicate()
        own.recent_active = True
        # An entry of our own term lets us commit everything before it (Raft §5.4.2).
        self._append_entries([Entry(self.term, self.log.last_index() + 1)])
        # Conf changes appended by earlier leaders may be uncommitted: allow none until
        # this leader has applied its whole log, including its own entry (the fix to the
        # single-server change bug in Ongaro's dissertation errata).
        self.pending_conf_index = self.log.last_index()

    # -- time ------------------------------------------------------------------------------

    def tick(self) -> None:
        self._tick_role()

    def _tick_election(self) -> None:
        self.election_elapsed_ticks += 1
        if self.election_elapsed_ticks >= self.randomized_election_ticks and self._promotable():
            self.election_elapsed_ticks = 0
            self.hup(CampaignType.ELECTION)

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed_ticks += 1
        self.election_elapsed_ticks += 1
        if self.election_elapsed_ticks >= self.election_ticks:
            self.election_elapsed_ticks = 0
            if self.check_quorum and not self.tracker.quorum_active(self.id):
                # We may be on the minority side of a partition: stop acting as leader
                # rather than serve stale reads or accept writes that cannot commit.
                self._become_follower(self.term, NO_NODE)
                return
            # A transfer that did not finish within an election timeout is abandoned.
            self.lead_transferee = NO_NODE
        if self.heartbeat_elapsed_ticks >= self.heartbeat_ticks:
            self.heartbeat_elapsed_ticks = 0
            self._broadcast_heartbeat(None)

    # -- elections -------------------------------------------------------------------------

    def hup(self, campaign_type: CampaignType) -> None:
        """Start an election now if this node may (a pre-election first when enabled)."""
        if self.role is _LEADER or not self._promotable():
            return
        # A committed but unapplied conf change may remove or demote us: apply it first.
        if self.log.has_unapplied_conf_changes():
            return
        if campaign_type is CampaignType.ELECTION and self.pre_vote:
            campaign_type = CampaignType.PRE_ELECTION
        self._campaign(campaign_type)

    def _campaign(self, campaign_type: CampaignType) -> None:
        if campaign_type is CampaignType.PRE_ELECTION:
            self._become_pre_candidate()
            vote_type = _PRE_VOTE
            vote_term = self.term + 1  # the term we would campaign in
        else:
            self._become_candidate()
            vote_type = _VOTE
            vote_term = self.term
        self.tracker.record_vote(self.id, True)
        if self.tracker.vote_result() is VoteResult.WON:
            # A single voter wins on its own vote.
            if campaign_type is CampaignType.PRE_ELECTION:
                self._campaign(CampaignType.ELECTION)
            else:
                self._become_leader()
            return
        context = _TRANSFER_CONTEXT if campaign_type is CampaignType.TRANSFER else b""
        last_index = self.log.last_index()
        last_term = self.log.last_term()
        for voter_id in self.tracker.voters.sorted_ids():
            if voter_id == self.id:
                continue
            self.messages.append(
                Message(
                    vote_type,
                    to_id=voter_id,
                    from_id=self.id,
                    term=vote_term,
                    log_term=last_term,
                    index=last_index,
                    context=context,
                )
            )

    def _handle_vote_request(self, m: Message) -> None:
        is_pre_vote = m.type is _PRE_VOTE
        can_vote = (
            self.vote == m.from_id  # a repeated request we granted already
            or (self.vote == NO_NODE and self.leader_id == NO_NODE)
            # A pre-vote for a future term: we have not voted in that term yet.
            or (is_pre_vote and m.term > self.term)
        )
        response_type = _PRE_VOTE_RESPONSE if is_pre_vote else _VOTE_RESPONSE
        if can_vote and (
            self.log.is_up_to_date(m.index, m.log_term) or _faults.ACTIVE.vote_ignores_log
        ):
            # Grant with the term of the request, so that a pre-candidate does not take
            # the answer for a stale one.
            self.messages.append(
                Message(response_type, to_id=m.from_id, from_id=self.id, term=m.term)
            )
            if not is_pre_vote:
                self.election_elapsed_ticks = 0
                self.vote = m.from_id
        else:
            self.messages.append(
                Message(
                    response_type, to_id=m.from_id, from_id=self.id, term=self.term, reject=True
                )
            )

    # -- the message entry point -----------------------------------------------------------

    def step(self, m: Message) -> None:
        """Handle a message from a peer (or a local request with term 0)."""
        message_type = m.type
        if m.term == 0:
            pass  # a local request (read index, transfer): no term to compare
        elif m.term > self.term:
            if message_type is _VOTE or message_type is _PRE_VOTE:
                in_lease = (
                    self.check_quorum
                    and self.leader_id != NO_NODE
                    and self.election_elapsed_ticks < self.election_ticks
                )
                if in_lease and m.context != _TRANSFER_CONTEXT:
                    # We heard from a live leader within the election timeout: a node
                    # that wants a new term is probably partitioned from it. Ignore.
                    return
            if message_type is _PRE_VOTE:
                pass  # answering a pre-vote never changes our term
            elif message_type is _PRE_VOTE_RESPONSE and not m.reject:
                pass  # granted for the term we would campaign in; we move there on winning
            elif message_type is _APPEND or message_type is _HEARTBEAT or message_type is _SNAPSHOT:
                self._become_follower(m.term, m.from_id)
            elif message_type is _VOTE and not self.log.is_up_to_date(m.index, m.log_term):
                # Adopt the term but keep our election timer running (Raft §5.2: only a
                # granted vote resets it): a candidate that can never win, repeatedly
                # campaigning, must not keep an electable node from ever timing out.
                elapsed_ticks = self.election_elapsed_ticks
                self._become_follower(m.term, NO_NODE)
                self.election_elapsed_ticks = elapsed_ticks
            else:
                self._become_follower(m.term, NO_NODE)
        elif m.term < self.term:
            self._answer_stale_message(m)
            return

        if message_type is _VOTE or message_type is _PRE_VOTE:
            self._handle_vote_request(m)
        else:
            self._step_role(m)

    def _answer_stale_message(self, m: Message) -> None:
        message_type = m.type
        if (self.check_quorum or self.pre_vote) and (
            message_type is _APPEND or message_type is _HEARTBEAT
        ):
            # A leader of an older term is talking to us. With pre-vote or check-quorum
            # our higher term may never reach it through vote requests, so tell it: it
            # steps down, and the cluster can elect someone who reaches a majority.
            self.messages.append(
                Message(_APPEND_RESPONSE, to_id=m.from_id, from_id=self.id, term=self.term)
            )
        elif message_type is _PRE_VOTE:
            # Tell a pre-candidate with a stale term that it lost, and why.
            self.messages.append(
                Message(
                    _PRE_VOTE_RESPONSE,
                    to_id=m.from_id,
                    from_id=self.id,
                    term=self.term,
                    reject=True,
                )
            )

    # -- follower and candidate ------------------------------------------------------------

    def _step_follower(self, m: Message) -> None:
        message_type = m.type
        if message_type is _APPEND:
            self.election_elapsed_ticks = 0
            self.leader_id = m.from_id
            self._handle_append(m)
        elif message_type is _HEARTBEAT:
            self.election_elapsed_ticks = 0
            self.leader_id = m.from_id
            self._handle_heartbeat(m)
        elif message_type is _SNAPSHOT:
            self.election_elapsed_ticks = 0
            self.leader_id = m.from_id
            self._handle_snapshot(m)
        elif message_type is _TIMEOUT_NOW:
            self.hup(CampaignType.TRANSFER)
        elif message_type is _READ_INDEX:
            # Forward our own reads to the leader; drop reads forwarded to us.
            if self.leader_id != NO_NODE and m.from_id == self.id:
                self.messages.append(
                    Message(_READ_INDEX, to_id=self.leader_id, from_id=self.id, context=m.context)
                )
        elif message_type is _READ_INDEX_RESPONSE:
            self.read_states.append(ReadState(m.index, m.context))
        elif message_type is _TRANSFER_LEADER and self.leader_id != NO_NODE and m.term == 0:
            self.messages.append(
                Message(_TRANSFER_LEADER, to_id=self.leader_id, from_id=m.from_id, term=self.term)
            )

    def _step_candidate(self, m: Message) -> None:
        message_type = m.type
        if message_type is _APPEND:
            self._become_follower(m.term, m.from_id)  # someone won this term
            self._handle_append(m)
        elif message_type is _HEARTBEAT:
            self._become_follower(m.term, m.from_id)
            self._handle_heartbeat(m)
        elif message_type is _SNAPSHOT:
            self._become_follower(m.term, m.from_id)
            self._handle_snapshot(m)
        elif message_type is (
            _PRE_VOTE_RESPONSE if self.role is StateRole.PRE_CANDIDATE else _VOTE_RESPONSE
        ):
            self.tracker.record_vote(m.from_id, not m.reject)
            result = self.tracker.vote_result()
            if result is VoteResult.WON:
                if self.role is StateRole.PRE_CANDIDATE:
                    self._campaign(CampaignType.ELECTION)
                else:
                    self._become_leader()
            elif result is VoteResult.LOST:
                self._become_follower(self.term, NO_NODE)
        # Reads, transfers and TIMEOUT_NOW are dropped: there is no leader to serve them.

    def _handle_append(self, m: Message) -> None:
        log = self.log
        if m.index < log.committed:
            # Everything up to our commit index matches the leader's log already.
            self.messages.append(
                Message(
                    _APPEND_RESPONSE,
                    to_id=m.from_id,
                    from_id=self.id,
                    term=self.term,
                    index=log.committed,
                )
            )
            return
        last_new_index = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new_index is not None:
            self.messages.append(
                Message(
                    _APPEND_RESPONSE,
                    to_id=m.from_id,
                    from_id=self.id,
                    term=self.term,
                    index=last_new_index,
                )
            )
            return
        # Our log lacks (m.index, m.log_term). Point the leader at the last index that may
        # still match, skipping every entry of a term newer than the one it probed with.
        hint_index, hint_term = log.find_conflict_by_term(
            min(m.index, log.last_index()), m.log_term
        )
        self.messages.append(
            Message(
                _APPEND_RESPONSE,
                to_id=m.from_id,
                from_id=self.id,
                term=self.term,
                index=m.index,
                reject=True,
                reject_hint=hint_index,
                log_term=hint_term,
            )
        )

    def _handle_heartbeat(self, m: Message) -> None:
        self.log.commit_to(m.commit)
        self.messages.append(
            Message(
                _HEARTBEAT_RESPONSE,
                to_id=m.from_id,
                from_id=self.id,
                term=self.term,
                context=m.context,
            )
        )

    def _handle_snapshot(self, m: Message) -> None:
        snapshot = m.snapshot
        if snapshot is None:
            raise InvariantError("SNAPSHOT message without a snapshot")
        index = self.log.last_index() if self._restore(snapshot) else self.log.committed
        self.messages.append(
            Message(_APPEND_RESPONSE, to_id=m.from_id, from_id=self.id, term=self.term, index=index)
        )

    def _restore(self, snapshot: Snapshot) -> bool:
        """Install a leader's snapshot; False if our log already covers it."""
        metadata = snapshot.metadata
        if metadata.index <= self.log.committed:
            return False
        if self.role is not StateRole.FOLLOWER:
            raise InvariantError("only a follower installs a snapshot")
        if self.log.match_term(metadata.index, metadata.term):
            # Our log has the snapshot's last entry, hence everything before it (log
            # matching): just move the commit index forward, keeping later entries.
            self.log.commit_to(metadata.index)
            return False
        self.log.restore(snapshot)
        self.tracker.set_membership(
            Membership.from_conf_state(metadata.conf_state), self.log.last_index() + 1
        )
        self._after_membership_change()
        return True

    # -- leader ----------------------------------------------------------------------------

    def _step_leader(self, m: Message) -> None:
        message_type = m.type
        if message_type is _READ_INDEX:
            self._leader_read_index(m)
            return
        if message_type is _TRANSFER_LEADER:
            self._leader_transfer(m.from_id)
            return
        progress = self.tracker.progress.get(m.from_id)
        if progress is None:
            return  # not a member (any more)
        if message_type is _APPEND_RESPONSE:
            self._leader_append_response(m, progress)
        elif message_type is _HEARTBEAT_RESPONSE:
            self._leader_heartbeat_response(m, progress)

    def _leader_append_response(self, m: Message, progress: Progress) -> None:
        progress.recent_active = True
        if m.reject:
            next_probe_index = m.reject_hint
            if m.log_term > 0:
                # Skip our entries of terms newer than the follower's entry at the hint:
                # they cannot match there.
                next_probe_index, _ = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
            if progress.maybe_decrease_to(m.index, next_probe_index):
                if progress.state is _REPLICATE:
                    progress.become_probe()
                self._queue_append(m.from_id, True)
            return
        was_paused = progress.is_paused()
        if not (
            progress.maybe_update(m.index)
            or (progress.match == m.index and progress.state is _PROBE)
        ):
            return
        if progress.state is _PROBE:
            progress.become_replicate()
        elif progress.state is ProgressState.SNAPSHOT:
            if progress.match + 1 >= self.log.first_index():
                # The follower holds the snapshot (or caught up otherwise): resume appends.
                progress.become_probe()
                progress.become_replicate()
        else:
            progress.acknowledged_up_to(m.index)
        if self._maybe_commit() and self.broadcast_commit:
            self._broadcast_queued = True  # followers learn the new commit index
        else:
            self._queue_append(m.from_id, was_paused)
        if m.from_id == self.lead_transferee and progress.match == self.log.last_index():
            self._send_timeout_now(m.from_id)

    def _leader_heartbeat_response(self, m: Message, progress: Progress) -> None:
        progress.recent_active = True
        progress.msg_app_flow_paused = False
        if progress.match < self.log.last_index() or progress.state is _PROBE:
            self._queue_append(m.from_id, True)
        if not m.context:
            return
        acks = self.read_only.receive_ack(m.from_id, m.context)
        if acks is None:
            return
        if self.tracker.voters.vote_result(dict.fromkeys(acks, True)) is not VoteResult.WON:
            return
        for status in self.read_only.advance(m.context):
            self._answer_read_index(status.request, status.index)

    def _leader_transfer(self, transferee: int) -> None:
        progress = self.tracker.progress.get(transferee)
        if progress is None or progress.is_learner:
            return
        if self.lead_transferee != NO_NODE:
            if self.lead_transferee == transferee:
                return  # already under way
            self.lead_transferee = NO_NODE
        if transferee == self.id:
            return
        # The transfer must finish within one election timeout or it is abandoned.
        self.election_elapsed_ticks = 0
        self.lead_transferee = transferee
        if progress.match == self.log.last_index():
            self._send_timeout_now(transferee)
        else:
            self._queue_append(transferee, True)

    def _send_timeout_now(self, to_id: int) -> None:
        self.messages.append(Message(_TIMEOUT_NOW, to_id=to_id, from_id=self.id, term=self.term))

    def _leader_read_index(self, m: Message) -> None:
        if self.tracker.is_single_voter(self.id):
            self._answer_read_index(m, self.log.committed)
            return
        if self.log.term_or_zero(self.log.committed) != self.term:
            # Until an entry of our term commits, our commit index may lag behind what an
            # earlier leader committed; serve the read after that.
            self.pending_read_index_messages.append(m)
            return
        self._start_read_index(m)

    def _start_read_index(self, m: Message) -> None:
        self.read_only.add_request(self.log.committed, m)
        self.read_only.receive_ack(self.id, m.context)
        self._broadcast_heartbeat(m.context)

    def _answer_read_index(self, request: Message, index: int) -> None:
        if request.from_id == self.id:
            self.read_states.append(ReadState(index, request.context))
        else:
            self.messages.append(
                Message(
                    _READ_INDEX_RESPONSE,
                    to_id=request.from_id,
                    from_id=self.id,
                    term=self.term,
                    index=index,
                    context=request.context,
                )
            )

    def _maybe_commit(self, quorum_index: int | None = None) -> bool:
        if quorum_index is None:
            quorum_index = self.tracker.committed_index()
        if not self.log.maybe_commit(quorum_index, self.term):
            return False
        if (
            self.pending_read_index_messages
            and self.log.term_or_zero(self.log.committed) == self.term
        ):
            pending, self.pending_read_index_messages = self.pending_read_index_messages, []
            for request in pending:
                self._start_read_index(request)
        return True

    def _append_entries(self, entries: list[Entry]) -> None:
        last_index = self.log.append(entries)
        own = self.tracker.progress.get(self.id)
        if own is not None:
            own.maybe_update(last_index)
        if self.tracker.is_single_voter(self.id):
            self._maybe_commit(last_index)  # nobody else's acknowledgement is needed
        self._broadcast_queued = True

    # -- sending appends -------------------------------------------------------------------

    def _queue_append(self, to_id: int, allow_empty: bool) -> None:
        if allow_empty or to_id not in self._append_queue:
            self._append_queue[to_id] = allow_empty or self._append_queue.get(to_id, False)

    def has_queued_appends(self) -> bool:
        return self._broadcast_queued or bool(self._append_queue)

    def flush_appends(self) -> None:
        """Send the appends queued since the last flush (see the module docstring)."""
        if not self._broadcast_queued and not self._append_queue:
            return
        queue = self._append_queue
        if self.role is _LEADER:
            if self._broadcast_queued:
                for node_id in self.tracker.progress:
                    if node_id != self.id:
                        queue[node_id] = True
            for node_id in sorted(queue):
                if node_id in self.tracker.progress and node_id != self.id:
                    sent = self._maybe_send_append(node_id, queue[node_id])
                    while sent:
                        sent = self._maybe_send_append(node_id, False)
        self._broadcast_queued = False
        queue.clear()

    def _maybe_send_append(self, to_id: int, allow_empty: bool) -> bool:
        """Send the follower its next entries (one message). False if nothing was sent."""
        progress = self.tracker.progress[to_id]
        if progress.is_paused():
            return False
        log = self.log
        prev_index = progress.next - 1
        entries: list[Entry] = []
        try:
            prev_term = log.term(prev_index)
            # With a full window only an empty append goes out (see Progress.is_paused).
            if progress.state is not _REPLICATE or not progress.inflights.full():
                entries = log.entries_from(progress.next, self.max_msg_size_bytes)
        except CompactedError:
            return self._maybe_send_snapshot(to_id, progress)
        if not entries and not allow_empty:
            return False
        self.messages.append(
            Message(
                _APPEND,
                to_id=to_id,
                from_id=self.id,
                term=self.term,
                index=prev_index,
                log_term=prev_term,
                entries=entries,
                commit=log.committed,
            )
        )
        if self.quiet_heartbeats:
            self._appended_since_heartbeat.add(to_id)
        if entries:
            size_bytes = (
                sum(entry_size_bytes(entry) for entry in entries)
                if self.tracker.max_inflight_bytes
                else 0
            )
            progress.sent_append(entries[-1].index, size_bytes)
        else:
            progress.sent_append(None, 0)
        return True

    def _maybe_send_snapshot(self, to_id: int, progress: Progress) -> bool:
        if not progress.recent_active:
            return False  # do not ship a snapshot to a peer that may be down
        try:
            snapshot = self.log.snapshot()
        except SnapshotTemporarilyUnavailableError:
            return False
        if snapshot.metadata.index == 0:
            raise InvariantError("entries are compacted but there is no snapshot")
        self.messages.append(
            Message(_SNAPSHOT, to_id=to_id, from_id=self.id, term=self.term, snapshot=snapshot)
        )
        progress.become_snapshot(snapshot.metadata.index)
        return True

    def _broadcast_heartbeat(self, context: bytes | None) -> None:
        """`context` None: the periodic heartbeat (carrying the newest pending read, if
        any); with quiet_heartbeats, followers sent an append since the last one are
        skipped unless a read waits on their answer."""
        skipped: set[int] = set()
        if context is None:
            context = self.read_only.last_pending_context()
            skipped, self._appended_since_heartbeat = self._appended_since_heartbeat, set()
            if context:
                skipped = set()
        committed = self.log.committed
        for node_id, progress in self.tracker.progress.items():
            if node_id == self.id or node_id in skipped:
                continue
            # Never tell a follower to commit past what it is known to hold.
            self.messages.append(
                Message(
                    _HEARTBEAT,
                    to_id=node_id,
                    from_id=self.id,
                    term=self.term,
                    commit=min(progress.match, committed),
                    context=context,
                )
            )

    # -- requests from the shell -----------------------------------------------------------

    def _check_can_propose(self) -> None:
        if self.role is not _LEADER:
            raise ProposalDroppedError(f"node {self.id} is not the leader")
        if self.lead_transferee != NO_NODE:
            raise ProposalDroppedError("leadership transfer in progress")

    def _reserve_uncommitted(self, size_bytes: int) -> None:
        limit = self.max_uncommitted_bytes
        if (
            limit is not None
            and self.uncommitted_bytes > 0
            and (self.uncommitted_bytes + size_bytes > limit)
        ):
            raise ProposalDroppedError(
                f"{self.uncommitted_bytes} bytes are uncommitted (limit {limit}); retry later"
            )
        self.uncommitted_bytes += size_bytes

    def release_uncommitted(self, size_bytes: int) -> None:
        """Entries of this many bytes (`entry_size_bytes`) were handed out for applying."""
        self.uncommitted_bytes = max(0, self.uncommitted_bytes - size_bytes)

    def propose(self, data: bytes) -> int:
        """Append `data` to the log; returns its index. Committed once a majority has it.

        :raises ProposalDroppedError: not the leader, a transfer is in progress, or too
            much is uncommitted.
        """
        self._check_can_propose()
        entry = Entry(self.term, self.log.last_index() + 1, data)
        self._reserve_uncommitted(entry_size_bytes(entry))
        self._append_entries([entry])
        return entry.index

    def propose_batch(self, batch: list[bytes]) -> int:
        """Append several entries at once; returns the index of the last one."""
        self._check_can_propose()
        first_index = self.log.last_index() + 1
        term = self.term
        entries = [Entry(term, first_index + offset, data) for offset, data in enumerate(batch)]
        self._reserve_uncommitted(sum(entry_size_bytes(entry) for entry in entries))
        self._append_entries(entries)
        return first_index + len(batch) - 1

    def propose_conf_change(self, change: ConfChange) -> int:
        """Append a membership change; returns its index. It takes effect on each node as
        that node applies it.

        :raises ConfChangeError: invalid here, or a learner is not caught up yet.
        :raises ProposalDroppedError: not the leader, or another change is in flight.
        """
        self._check_can_propose()
        if self.pending_conf_index > self.log.applied:
            raise ProposalDroppedError(
                f"the membership change at {self.pending_conf_index} is not applied yet"
            )
        membership = self.tracker.membership()
        apply_conf_change(membership, change)
        node_id = change.node_id
        if change.type is ConfChangeType.ADD_VOTER and node_id in membership.learners:
            match = self.tracker.progress[node_id].match
            if match < self.log.committed:
                raise ConfChangeError(
                    f"learner {node_id} holds {match} of {self.log.committed} committed "
                    "entries; promote it once it has caught up"
                )
        entry = Entry(self.term, self.log.last_index() + 1, change.encode(), EntryType.CONF_CHANGE)
        self._reserve_uncommitted(entry_size_bytes(entry))
        index = entry.index
        self._append_entries([entry])
        self.pending_conf_index = index
        return index

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read; a ReadState with `context` answers it (or nothing,
        if leadership is lost meanwhile: the caller retries)."""
        if not context:
            raise ValueError("a read needs a non-empty, unique context")
        self.step(Message(_READ_INDEX, to_id=self.id, from_id=self.id, context=context))

    def transfer_leadership(self, transferee: int) -> None:
        """Ask the leader (directly or through this follower) to hand over to `transferee`."""
        self.step(Message(_TRANSFER_LEADER, to_id=self.id, from_id=transferee))

    def report_snapshot(self, to_id: int, *, failed: bool) -> None:
        """The shell's transport tells whether a SNAPSHOT message reached `to_id`."""
        progress = self.tracker.progress.get(to_id)
        if self.role is not _LEADER or progress is None:
            return
        if progress.state is not ProgressState.SNAPSHOT:
            return
        if failed:
            progress.pending_snapshot = 0
        progress.become_probe()
        # Wait for the follower's answer (or the next heartbeat's) before probing again.
        progress.msg_app_flow_paused = True

    def report_unreachable(self, to_id: int) -> None:
        """The transport could not deliver to `to_id`: stop streaming to it blindly."""
        progress = self.tracker.progress.get(to_id)
        if self.role is _LEADER and progress is not None and progress.state is _REPLICATE:
            progress.become_probe()

    # -- membership ------------------------------------------------------------------------

    def apply_conf_change(self, change: ConfChange) -> None:
        """Make a committed membership change take effect (called as it is applied).
        An invalid change is skipped by every node alike."""
        try:
            membership = apply_conf_change(self.tracker.membership(), change)
        except ConfChangeError:
            return
        self.tracker.set_membership(membership, self.log.last_index() + 1)
        self._after_membership_change()

    def _after_membership_change(self) -> None:
        own = self.tracker.progress.get(self.id)
        self.is_learner = own is not None and own.is_learner
        if self.role is not _LEADER:
            return
        if own is None or self.is_learner:
            # Removed or demoted: stop leading; the remaining voters elect a successor.
            self._become_follower(self.term, NO_NODE)
            return
        if self._maybe_commit():  # a smaller majority may commit more
            self._broadcast_queued = True
        else:
            for node_id in self.tracker.progress:
                if node_id != self.id:
                    self._queue_append(node_id, False)
        if self.lead_transferee != NO_NODE and self.lead_transferee not in self.tracker.voters:
            self.lead_transferee = NO_NODE
