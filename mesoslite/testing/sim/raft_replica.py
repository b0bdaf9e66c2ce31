"""`SimReplica`: one Raft replica in the simulation, i.e. the I/O shell around `RawNode`
running on simulated time, network and disk.

It runs the Ready loop in the documented order (persist, fsync, send, apply, advance),
keeps a tiny state machine (a digest chained over applied commands), takes snapshots and
compacts its WAL, and reports everything it does to the checker and the client history.
A crash loses the process and whatever the disk had not synced; a restart recovers from
the WAL alone.
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from mesoslite.raft import (
    Config,
    Entry,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    ProposalDroppedError,
    RawNode,
    ReadState,
    Ready,
    Snapshot,
    StateRole,
)
from mesoslite.testing.sim.clock import SimClock
from mesoslite.testing.sim.disk import SimDisk
from mesoslite.testing.sim.network import SimNetwork
from mesoslite.testing.sim.raft_checker import INITIAL_DIGEST, LogView, RaftSafetyChecker
from mesoslite.testing.sim.raft_history import ClientHistory
from mesoslite.testing.sim.raft_wal import SimWal

__all__ = ["ReplicaOptions", "SimReplica", "SimStateMachine"]

_LEADER_ONLY = frozenset(
    {MessageType.APPEND, MessageType.HEARTBEAT, MessageType.SNAPSHOT, MessageType.TIMEOUT_NOW}
)
_SNAPSHOT = MessageType.SNAPSHOT
_STATE = struct.Struct(">QI")


@dataclass(slots=True, frozen=True)
class ReplicaOptions:
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    tick_steps: int = 10  # simulated steps per Raft tick on this replica's clock
    pre_vote: bool = True
    check_quorum: bool = True
    broadcast_commit: bool = True
    quiet_heartbeats: bool = False
    # A leader sends its Ready's messages before persisting it (as etcd's leader and the
    # ReplicaService do): its fsync overlaps its followers'.
    leader_sends_before_sync: bool = False
    max_msg_size_bytes: int = 1 << 20
    max_inflight_msgs: int = 256
    max_uncommitted_bytes: int | None = 4096
    snapshot_interval_entries: int = 100  # take a snapshot every this many applied
    compaction_keep_entries: int = 20  # entries kept before the snapshot for slow peers
    # The chance, per Ready that must be synced, of crashing after the writes and before
    # the fsync: the writes may then be lost or torn.
    crash_before_sync_probability: float = 0.0
    # A deliberately broken shell (test-of-the-test): send before persisting.
    bug_send_before_sync: bool = False


class SimStateMachine:
    """A state machine whose whole state is a digest of the commands it applied."""

    __slots__ = ("applied_index", "digest")

    def __init__(self) -> None:
        self.applied_index = 0
        self.digest = INITIAL_DIGEST

    def apply(self, entry: Entry) -> int:
        if entry.index != self.applied_index + 1:
            raise AssertionError(
                f"applying {entry.index} after {self.applied_index}: entries must be contiguous"
            )
        self.applied_index = entry.index
        self.digest = zlib.crc32(entry.data, self.digest)
        return self.digest

    def snapshot_data(self) -> bytes:
        return _STATE.pack(self.applied_index, self.digest)

    def restore(self, snapshot: Snapshot) -> None:
        if snapshot.data:
            self.applied_index, self.digest = _STATE.unpack(snapshot.data)
        else:  # the bootstrap snapshot (or none)
            self.applied_index, self.digest = snapshot.metadata.index, INITIAL_DIGEST
        if self.applied_index != snapshot.metadata.index:
            raise AssertionError("snapshot data and metadata disagree on the index")


class SimReplica:
    __slots__ = (
        "_checker",
        "_clock",
        "_history",
        "_network",
        "_pending_reads",
        "_ready_scheduled",
        "_rng",
        "crash_before_sync_probability",
        "crash_listener",
        "crashes",
        "disk",
        "id",
        "incarnation",
        "node",
        "options",
        "snapshots_installed",
        "snapshots_taken",
        "state_machine",
        "storage",
        "tick_interval_steps",
        "wal",
        "wal_bytes_discarded",
    )

    def __init__(
        self,
        node_id: int,
        *,
        clock: SimClock,
        network: SimNetwork[Message],
        disk: SimDisk,
        rng: random.Random,
        options: ReplicaOptions,
        checker: RaftSafetyChecker,
        history: ClientHistory,
        tick_interval_steps: int,
    ) -> None:
        self.id = node_id
        self._clock = clock
        self._network = network
        self.disk = disk
        self.wal = SimWal(disk)
        self._rng = rng
        self.options = options
        self._checker = checker
        self._history = history
        self.tick_interval_steps = tick_interval_steps
        self.node: RawNode | None = None
        self.storage = MemoryStorage()
        self.state_machine = SimStateMachine()
        self.incarnation = 0
        self._ready_scheduled = False
        self._pending_reads: list[ReadState] = []
        self.crash_listener: Callable[[SimReplica], None] | None = None
        self.crash_before_sync_probability = options.crash_before_sync_probability
        self.crashes = 0
        self.snapshots_taken = 0
        self.snapshots_installed = 0
        self.wal_bytes_discarded = 0

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.node is not None

    def create(self, initial: Snapshot, hard_state: HardState) -> None:
        """Write the replica's first WAL: a founding member's bootstrap snapshot, or an
        empty log for a node that joins later."""
        self.wal.create(initial, hard_state)

    def start(self) -> None:
        """Recover from the WAL and start ticking and receiving."""
        if self.node is not None:
            raise AssertionError(f"replica {self.id} is already running")
        recovered = self.wal.recover()
        self.wal_bytes_discarded += recovered.bytes_discarded
        self.storage = recovered.storage
        snapshot = self.storage.snapshot()
        self.state_machine = SimStateMachine()
        self.state_machine.restore(snapshot)
        options = self.options
        self.node = RawNode(
            Config(
                id=self.id,
                storage=self.storage,
                rng=random.Random(self._rng.getrandbits(64)),
                election_ticks=options.election_ticks,
                heartbeat_ticks=options.heartbeat_ticks,
                applied_index=snapshot.metadata.index,
                max_msg_size_bytes=options.max_msg_size_bytes,
                max_inflight_msgs=options.max_inflight_msgs,
                max_uncommitted_bytes=options.max_uncommitted_bytes,
                pre_vote=options.pre_vote,
                check_quorum=options.check_quorum,
                broadcast_commit=options.broadcast_commit,
                quiet_heartbeats=options.quiet_heartbeats,
            )
        )
        self.incarnation += 1
        self._ready_scheduled = False
        self._pending_reads = []
        self._network.attach(self.id, self._receive)
        self._clock.call_later(
            self._rng.randint(1, self.tick_interval_steps), self._tick_callback()
        )
        self._schedule_ready()

    def crash(self) -> None:
        """The process dies: memory is gone, unsynced writes may be lost or torn."""
        if self.node is None:
            return
        self.node = None
        self.incarnation += 1
        self.crashes += 1
        self._network.detach(self.id)
        self.disk.crash()
        self._history.replica_crashed(self.id)
        if self.crash_listener is not None:
            self.crash_listener(self)

    def stop(self) -> None:
        """Shut down for good (a removed member): like a crash, without restart."""
        listener, self.crash_listener = self.crash_listener, None
        self.crash()
        self.crash_listener = listener

    # -- inputs ----------------------------------------------------------------------------

    def _tick_callback(self) -> Callable[[], None]:
        incarnation = self.incarnation

        def tick() -> None:
            node = self.node
            if node is None or self.incarnation != incarnation:
                return
            node.tick()
            self._schedule_ready()
            self._clock.call_later(self.tick_interval_steps, tick)

        return tick

    def _receive(self, from_id: int, message: Message) -> None:
        node = self.node
        if node is None:
            return
        node.step(message)
        self._schedule_ready()

    def _schedule_ready(self) -> None:
        # Handle Readies once per instant, after everything that happens at this instant:
        # messages arriving together are persisted and answered together.
        if not self._ready_scheduled:
            self._ready_scheduled = True
            incarnation = self.incarnation

            def process() -> None:
                if self.incarnation == incarnation:
                    self._ready_scheduled = False
                    self.process_readies()

            self._clock.call_later(0, process)

    def propose(self, op: bytes) -> bool:
        node = self.node
        if node is None or not node.is_leader:
            return False
        try:
            index = node.propose(op)
        except ProposalDroppedError:
            return False  # e.g. a leadership transfer is under way; the client retries
        self._history.write_invoked(self.id, op, index, self._clock.now_steps)
        self._schedule_ready()
        return True

    def read(self, context: bytes) -> None:
        node = self.node
        if node is None:
            return
        self._history.read_invoked(self.id, context, self._clock.now_steps)
        node.read_index(context)
        self._schedule_ready()

    def poke(self) -> None:
        """Something was requested of the node from outside: process its Readies."""
        self._schedule_ready()

    # -- the Ready loop --------------------------------------------------------------------

    def process_readies(self) -> None:
        while True:
            node = self.node
            if node is None or not node.has_ready():
                return
            if not self._handle_ready(node, node.ready()):
                return  # crashed mid-way

    def _handle_ready(self, node: RawNode, ready: Ready) -> bool:
        if ready.soft_state is not None and ready.soft_state.role is StateRole.LEADER:
            storage = self.storage
            self._checker.on_became_leader(
                self.id,
                node.term,
                LogView(node.log_term, storage.first_index(), node.last_index),
            )
        options = self.options
        early = options.bug_send_before_sync or (
            options.leader_sends_before_sync and node.is_leader
        )
        if early:
            self._send(ready.messages)
        if not self._persist(ready):
            return False
        if not early:
            self._send(ready.messages)
        self._apply(ready)
        node.advance(ready)
        self._maybe_compact(node)
        return True

    def _persist(self, ready: Ready) -> bool:
        wal = self.wal
        storage = self.storage
        snapshot = ready.snapshot
        if snapshot is not None:
            wal.append_snapshot(snapshot)
        if ready.entries:
            wal.append_entries(ready.entries)
        if ready.hard_state is not None:
            wal.append_hard_state(ready.hard_state)
        if ready.must_sync:
            if self._rng.random() < self.crash_before_sync_probability:
                self.crash()
                return False
            wal.sync()
        # Durable now: mirror into the storage the core reads.
        if snapshot is not None:
            storage.apply_snapshot(snapshot)
            self.state_machine.restore(snapshot)
            self.snapshots_installed += 1
            metadata = snapshot.metadata
            self._checker.on_snapshot_installed(
                self.id, metadata.index, metadata.term, self.state_machine.digest
            )
        if ready.entries:
            first = ready.entries[0]
            previous_term = storage.term(first.index - 1) if first.index > 0 else 0
            storage.append(ready.entries)
            self._checker.on_entries_persisted(self.id, previous_term, ready.entries)
        if ready.hard_state is not None:
            storage.set_hard_state(ready.hard_state)
        return True

    def _send(self, messages: list[Message]) -> None:
        network = self._network
        checker = self._checker
        for message in messages:
            if message.type in _LEADER_ONLY:
                checker.on_leader_message(message.from_id, message.term)
            on_outcome = (
                self._snapshot_outcome(message.to_id) if message.type is _SNAPSHOT else None
            )
            network.send(self.id, message.to_id, message, on_outcome)

    def _snapshot_outcome(self, to_id: int) -> Callable[[bool], None]:
        incarnation = self.incarnation

        def report(delivered: bool) -> None:
            node = self.node
            if node is not None and self.incarnation == incarnation:
                node.report_snapshot(to_id, failed=not delivered)
                self._schedule_ready()

        return report

    def _apply(self, ready: Ready) -> None:
        state_machine = self.state_machine
        checker = self._checker
        history = self._history
        now_steps = self._clock.now_steps
        for entry in ready.committed_entries:
            digest = state_machine.apply(entry)
            checker.on_applied(self.id, entry, digest)
            history.on_applied(self.id, entry, now_steps)
        if ready.read_states:
            self._pending_reads.extend(ready.read_states)
        if self._pending_reads:
            applied_index = state_machine.applied_index
            waiting: list[ReadState] = []
            for read_state in self._pending_reads:
                if read_state.index <= applied_index:
                    history.read_served(
                        self.id,
                        read_state.request_context,
                        read_state.index,
                        applied_index,
                        now_steps,
                    )
                else:
                    waiting.append(read_state)
            self._pending_reads = waiting

    def _maybe_compact(self, node: RawNode) -> None:
        storage = self.storage
        applied_index = node.applied_index
        snapshot_index = storage.snapshot().metadata.index
        if applied_index - snapshot_index < self.options.snapshot_interval_entries:
            return
        if self.state_machine.applied_index != applied_index:
            raise AssertionError("the state machine and the node disagree on what is applied")
        storage.create_snapshot(
            applied_index, node.conf_state(), self.state_machine.snapshot_data()
        )
        compact_index = applied_index - self.options.compaction_keep_entries
        if compact_index >= storage.first_index():
            storage.compact(compact_index)
        self.wal.rewrite(storage)
        self.snapshots_taken += 1
