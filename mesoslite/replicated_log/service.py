"""`ReplicaService`: the Ready loop that drives one Raft node over durable storage, the
peer transport and the registry state machine.

One task owns the `RawNode`. Everything else reaches it through this service, on the
event loop: peers' messages (`deliver`), proposals (`propose_nowait` / `propose`),
linearizable reads (`read_barrier`) and membership changes. The loop takes each Ready
in the order `mesoslite.raft.ready` prescribes: persist (one write and one fdatasync per
Ready, which holds every proposal made since the last: group commit), then send, then
apply committed entries to the registry, then answer reads, then advance. A leader sends
while it persists, as etcd's does (see `_handle_ready_now`); a commit index alone is
written after the answers it released (`_defer_hard_state`).

A proposal is answered once its entry is applied: with the registry's verdict
(`OperationRejected`), or `ProposalLostError` when another leader's entry took its
index. Membership changes are CONF_CHANGE entries whose context carries the registry
`Member`, so the registry's member list and the Raft configuration change together.

Time is a tick every `ReplicaTiming.tick_s`. Besides Raft's own timeouts, a follower
that hears nothing from its leader for a few ticks probes the leader's peer port; a
refused connection means the leader's process is gone (as a ZooKeeper follower reacts to
its leader's closed connection), so the followers campaign at once, one after another
by rank to avoid split votes, instead of waiting out the election timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskStatus

from mesoslite.proto import registry_pb2
from mesoslite.raft import (
    NO_NODE,
    ConfChange,
    ConfChangeType,
    Config,
    Entry,
    EntryType,
    HardState,
    Message,
    ProposalDroppedError,
    RawNode,
    ReadState,
    Ready,
    Snapshot,
    StateRole,
)
from mesoslite.replicated_log.durable_storage import DurableStorage
from mesoslite.replicated_log.peer_transport import PeerTransport, open_peer_transport
from mesoslite.replicated_log.registry import OperationRejected, Registry

__all__ = [
    "NotLeaderError",
    "Proposal",
    "ProposalLostError",
    "ReplicaService",
    "ReplicaTiming",
    "new_node_id",
]

log = logging.getLogger(__name__)

_NORMAL = EntryType.NORMAL
_CONF_CHANGE = EntryType.CONF_CHANGE
# Node ids stay below 2**53 so that they survive JSON numbers everywhere.
_MAX_NODE_ID = (1 << 53) - 1


def new_node_id() -> int:
    return secrets.randbelow(_MAX_NODE_ID) + 1


class NotLeaderError(Exception):
    """This replica does not lead; `leader_id` is the one it knows of (0: none)."""

    def __init__(self, leader_id: int, detail: str = "") -> None:
        super().__init__(detail or f"not the leader (leader: {leader_id or 'unknown'})")
        self.leader_id = leader_id


class ProposalLostError(Exception):
    """The proposal did not commit (another leader's entry took its index, or leadership
    moved before it was known). Its outcome may be unknown: retry where it is
    idempotent."""


@dataclass(frozen=True, slots=True)
class ReplicaTiming:
    tick_s: float = 0.02
    heartbeat_ticks: int = 1
    # 0.5 to 1 s of silence before an election where the leader may still be alive
    # (a partition); a dead leader is found sooner by the probe below.
    election_ticks: int = 25
    # A leader unheard for this many ticks gets a TCP connect to its peer port.
    probe_after_ticks: int = 3
    probe_timeout_s: float = 0.25
    # Between campaigns of followers of a dead leader, by rank (lowest id first).
    campaign_stagger_ticks: int = 3
    # A snapshot of the registry every this many applied entries; this many entries
    # stay in memory after it for followers that lag a little.
    snapshot_every_entries: int = 10_000
    entries_kept_after_snapshot: int = 5_000


class _Deadlines:
    """Timeouts of proposal waiters, expired by the service's tick loop (a tick late at
    most) rather than by a timer each: every registry write of the master waits on one."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: dict[asyncio.Future[None], float] = {}

    def add(self, waiter: asyncio.Future[None], deadline: float) -> None:
        self._waiters[waiter] = deadline

    def discard(self, waiter: asyncio.Future[None]) -> None:
        self._waiters.pop(waiter, None)

    def expire(self, now: float) -> None:
        if not self._waiters:
            return
        for waiter, deadline in list(self._waiters.items()):
            if deadline <= now:
                del self._waiters[waiter]
                if not waiter.done():
                    waiter.set_exception(TimeoutError())


class Proposal:
    """One proposed entry; done once applied (or lost).

    Waiting costs a future, and a timeout an entry in the service's deadlines: no event
    objects, cancel scopes or timers, since every registry write of the master waits
    on one."""

    __slots__ = ("_callbacks", "_deadlines", "_waiters", "done", "error", "index", "term")

    def __init__(self, index: int, term: int, deadlines: _Deadlines | None = None) -> None:
        self.index = index
        self.term = term
        self.done = False
        self.error: BaseException | None = None
        self._callbacks: list[Callable[[BaseException | None], None]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._deadlines = deadlines

    def add_done_callback(self, callback: Callable[[BaseException | None], None]) -> None:
        if self.done:
            callback(self.error)
        else:
            self._callbacks.append(callback)

    def finish(self, error: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        self.error = error
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(error)
            except Exception:
                log.exception("a proposal callback failed")

    async def wait(self, timeout_s: float | None = None) -> None:
        """Return once applied; raise its rejection or loss, or TimeoutError when it is
        not done within `timeout_s`."""
        if not self.done:
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            deadlines = self._deadlines
            timer = None
            if timeout_s is not None:
                if deadlines is not None:
                    deadlines.add(waiter, loop.time() + timeout_s)
                else:
                    timer = loop.call_later(timeout_s, _expire, waiter)
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
                if deadlines is not None and timeout_s is not None:
                    deadlines.discard(waiter)
                if not self.done:
                    self._waiters.remove(waiter)
        if self.error is not None:
            raise self.error


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


@dataclass(slots=True)
class _Read:
    done: anyio.Event = field(default_factory=anyio.Event)
    index: int = 0


class ReplicaService:
    """Use `run()` in a task group; call everything else from the event loop."""

    def __init__(
        self,
        *,
        node_id: int,
        storage: DurableStorage,
        client_ssl: ssl.SSLContext,
        timing: ReplicaTiming = ReplicaTiming(),
        rng: random.Random | None = None,
        seed_peers: dict[int, str] | None = None,
    ) -> None:
        self.node_id = node_id
        # Where the members were when this replica joined: whom to answer until the
        # leader's snapshot brings the registry (and its member list).
        self._seed_peers = dict(seed_peers or {})
        self.timing = timing
        self._storage = storage
        self._client_ssl = client_ssl
        snapshot = storage.snapshot()
        self._registry = Registry.restore(snapshot.data) if snapshot.data else Registry()
        self._snapshot_index = snapshot.metadata.index
        self._applied_index = snapshot.metadata.index
        self._node = RawNode(
            Config(
                id=node_id,
                storage=storage,
                rng=rng or random.Random(),
                election_ticks=timing.election_ticks,
                heartbeat_ticks=timing.heartbeat_ticks,
                applied_index=snapshot.metadata.index,
                # Followers learn a commit from the next append or heartbeat (a tick at
                # most): only the leader answers clients, so an extra round of messages
                # per commit would buy nothing but CPU.
                broadcast_commit=False,
                # Appends carry what heartbeats do: under writes, no heartbeat rounds.
                quiet_heartbeats=True,
            )
        )
        self._transport: PeerTransport | None = None
        # asyncio's events rather than anyio's: the loop waits on one per Ready and the
        # registry changes with every applied batch (anyio's cost a backend lookup each).
        self._wakeup = asyncio.Event()
        self._proposals: dict[int, Proposal] = {}
        self._reads: dict[bytes, _Read] = {}
        self._applied_waiters: dict[int, list[anyio.Event]] = {}
        self._changed = asyncio.Event()
        self._leadership_changed = asyncio.Event()
        self._leader_id = NO_NODE
        self._role = StateRole.FOLLOWER
        self._term = self._node.term
        self._silent_ticks = 0
        self._probing = False
        self._dead_leader = NO_NODE
        self._ticks_since_death = 0
        self._peer_addresses: dict[int, str] = {}
        self._task_group: anyio.abc.TaskGroup | None = None
        self._deadlines = _Deadlines()
        # Readies are being handled (by the loop's task or in a transport callback).
        self._in_ready = False
        # A Ready taken in a callback that needs waiting for: the loop's task does it.
        self._deferred: Ready | None = None
        self._fatal: BaseException | None = None
        # The latest hard state when only its commit index moved, not written yet: it
        # goes to disk after the answers of that Ready (see `_defer_hard_state`).
        self._unwritten_hard_state: HardState | None = None

    # ------------------------------------------------------------------ observation

    @property
    def registry(self) -> Registry:
        """The registry as applied here (callers must not mutate it)."""
        return self._registry

    @property
    def leader_id(self) -> int:
        return self._leader_id

    @property
    def is_leader(self) -> bool:
        return self._role is StateRole.LEADER

    @property
    def term(self) -> int:
        return self._term

    @property
    def applied_index(self) -> int:
        return self._applied_index

    @property
    def committed_index(self) -> int:
        return self._node.committed_index

    def is_voter(self) -> bool:
        return self.node_id in self._node.conf_state().voters

    def leader_member(self) -> registry_pb2.Member | None:
        return self._registry.members.get(self._leader_id)

    async def wait_leadership_changed(self) -> None:
        """Return at the next change of leader, role or term (not at every write)."""
        await self._leadership_changed.wait()

    async def wait_changed(self) -> None:
        """Return at the next change of leader, role or applied registry."""
        await self._changed.wait()

    def status(self) -> dict[str, Any]:
        """What `mesoslite status` shows, as JSON-ready values."""
        node = self._node
        raft_status = node.status()
        conf = raft_status.conf_state
        members = []
        for member_id, member in sorted(self._registry.members.items()):
            entry: dict[str, Any] = {
                "id": member_id,
                "name": member.name,
                "peer_address": member.address,
                "master_address": member.master_address,
                "role": "voter" if member_id in conf.voters else "learner",
                "leader": member_id == self._leader_id,
            }
            progress = raft_status.progress.get(member_id)
            if progress is not None:
                entry["match_index"] = progress.match
                entry["active"] = progress.recent_active or member_id == self.node_id
            members.append(entry)
        return {
            "cluster_id": self._registry.cluster_id,
            "node_id": self.node_id,
            "role": self._role.value,
            "leader_id": self._leader_id,
            "term": self._term,
            "commit_index": node.committed_index,
            "applied_index": self._applied_index,
            "last_index": node.last_index,
            "members": members,
            "agents": {
                "admitted": len(self._registry.agents),
                "unreachable": len(self._registry.unreachable),
                "gone": len(self._registry.gone),
            },
        }

    def follower_match(self, member_id: int) -> int | None:
        """How far `member_id`'s log matches ours (leader only)."""
        progress = self._node.status().progress.get(member_id)
        return None if progress is None else progress.match

    # ------------------------------------------------------------------ inputs

    def deliver(self, messages: list[Message]) -> None:
        """Messages from peers (the Raft endpoint's callback, in the transport's)."""
        node = self._node
        leader_id = self._leader_id
        for message in messages:
            if message.from_id == leader_id:
                self._silent_ticks = 0
            try:
                node.step(message)
            except Exception:
                log.exception("stepping a %s from %d failed", message.type.name, message.from_id)
        self._process_readies_now()

    def report_unreachable(self, to_id: int) -> None:
        self._node.report_unreachable(to_id)
        self._wake()

    def report_snapshot(self, to_id: int, *, failed: bool) -> None:
        self._node.report_snapshot(to_id, failed=failed)
        self._wake()

    def propose_nowait(self, operation: registry_pb2.RegistryOperation) -> Proposal:
        """Append a registry operation to the log now (so proposals keep call order);
        the returned proposal is done once it is applied.

        :raises NotLeaderError: this replica does not lead.
        """
        return self._propose(operation.SerializeToString())

    async def propose(
        self, operation: registry_pb2.RegistryOperation, *, timeout_s: float = 10.0
    ) -> None:
        """Propose and wait until applied.

        :raises NotLeaderError, OperationRejected, ProposalLostError, TimeoutError:
        """
        await self.propose_nowait(operation).wait(timeout_s)

    def _propose(self, data: bytes) -> Proposal:
        try:
            index = self._node.propose(data)
        except ProposalDroppedError as error:
            raise NotLeaderError(self._leader_id, str(error)) from None
        proposal = Proposal(index, self._node.term, self._deadlines)
        self._proposals[index] = proposal
        self._wake()
        return proposal

    async def change_membership(
        self,
        change_type: ConfChangeType,
        member: registry_pb2.Member,
        *,
        timeout_s: float = 10.0,
    ) -> None:
        """Add a learner, promote it to voter, or remove a member, through the log.

        :raises NotLeaderError: not the leader, or another change is still in flight.
        :raises ConfChangeError: the change does not apply (e.g. a lagging learner).
        """
        change = ConfChange(change_type, member.id, member.SerializeToString())
        try:
            index = self._node.propose_conf_change(change)
        except ProposalDroppedError as error:
            if type(error) is ProposalDroppedError:
                raise NotLeaderError(self._leader_id, str(error)) from None
            raise
        proposal = Proposal(index, self._node.term, self._deadlines)
        self._proposals[index] = proposal
        self._wake()
        await proposal.wait(timeout_s)

    def transfer_leadership(self, to_id: int) -> None:
        self._node.transfer_leadership(to_id)
        self._wake()

    async def read_barrier(self, *, timeout_s: float = 5.0) -> int:
        """Wait until the registry here reflects every write acknowledged anywhere before
        this call (Raft ReadIndex); returns the index it waited for.

        :raises TimeoutError: no leader answered in time.
        """
        context = secrets.token_bytes(16)
        read = _Read()
        self._reads[context] = read
        try:
            with anyio.fail_after(timeout_s):
                while True:
                    self._node.read_index(context)
                    self._wake()
                    # A read the core dropped (no leader yet) is asked again.
                    with anyio.move_on_after(self.timing.tick_s * 5):
                        await read.done.wait()
                    if read.done.is_set():
                        break
                await self.wait_applied(read.index)
        finally:
            self._reads.pop(context, None)
        return read.index

    async def wait_applied(self, index: int) -> None:
        if self._applied_index >= index:
            return
        event = anyio.Event()
        self._applied_waiters.setdefault(index, []).append(event)
        await event.wait()

    def campaign(self) -> None:
        self._node.campaign()
        self._wake()

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with (
            open_peer_transport(self._client_ssl, self) as transport,
            anyio.create_task_group() as group,
        ):
            self._transport = transport
            self._task_group = group
            self._sync_peers()
            group.start_soon(self._ready_loop)
            group.start_soon(self._tick_loop)
            if self._node.conf_state().voters == (self.node_id,):
                # A lone voter needs nobody's vote: lead at once (fast `mesoslite up`).
                self._node.campaign()
                self._wake()
            task_status.started()

    def _wake(self) -> None:
        self._wakeup.set()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _tick_loop(self) -> None:
        timing = self.timing
        loop = asyncio.get_running_loop()
        while True:
            await anyio.sleep(timing.tick_s)
            self._write_unwritten_hard_state()
            self._deadlines.expire(loop.time())
            self._node.tick()
            self._watch_leader()
            self._wake()

    def _watch_leader(self) -> None:
        """Probe a silent leader; after a refused probe, campaign by rank."""
        timing = self.timing
        if self._dead_leader != NO_NODE:
            if self._leader_id not in (NO_NODE, self._dead_leader) or self.is_leader:
                self._dead_leader = NO_NODE
                return
            self._ticks_since_death += 1
            voters = [v for v in self._node.conf_state().voters if v != self._dead_leader]
            if self.node_id not in voters:
                return
            rank = sorted(voters).index(self.node_id)
            start = rank * timing.campaign_stagger_ticks
            elapsed = self._ticks_since_death - start
            if elapsed >= 0 and elapsed % (len(voters) * timing.campaign_stagger_ticks) == 0:
                self._node.campaign()
            return
        if self._role is not StateRole.FOLLOWER or self._leader_id == NO_NODE:
            self._silent_ticks = 0
            return
        self._silent_ticks += 1
        if self._silent_ticks >= timing.probe_after_ticks and not self._probing:
            member = self._registry.members.get(self._leader_id)
            if member is not None and self._task_group is not None:
                self._probing = True
                self._task_group.start_soon(self._probe_leader, self._leader_id, member.address)

    async def _probe_leader(self, leader_id: int, address: str) -> None:
        host, _, port = address.rpartition(":")

        def connect() -> None:
            # A plain connect tells a refusal apart (anyio's folds it into OSError).
            socket.create_connection(
                (host.strip("[]"), int(port)), timeout=self.timing.probe_timeout_s
            ).close()

        try:
            await anyio.to_thread.run_sync(connect)
        except ConnectionRefusedError:
            if self._leader_id == leader_id and not self.is_leader:
                log.info("leader %d refuses connections: campaigning without waiting", leader_id)
                self._dead_leader = leader_id
                self._ticks_since_death = -1
                # Our lease on the dead leader ends now, so that we grant votes at once.
                for _ in range(self.timing.election_ticks):
                    self._node.tick()
                self._watch_leader()
                self._wake()
        except (OSError, TimeoutError, ValueError):
            pass  # alive but slow, or unreachable: Raft's own timeouts decide
        finally:
            self._probing = False
            self._silent_ticks = 0

    async def _ready_loop(self) -> None:
        node = self._node
        while True:
            await self._wakeup.wait()
            # Cleared before looking: a wake after this finds has_ready() true or sets
            # it again for the next round.
            self._wakeup.clear()
            if self._fatal is not None:
                raise self._fatal
            self._in_ready = True
            try:
                ready, self._deferred = self._deferred, None
                while ready is not None or node.has_ready():
                    if ready is None:
                        ready = node.ready()
                    if not self._handle_ready_now(ready):
                        await self._handle_ready_waiting(ready)
                    ready = None
                if self._snapshot_due():
                    await self._maybe_snapshot()
            finally:
                self._in_ready = False

    def _process_readies_now(self) -> None:
        """Handle the Readies a peer's messages made in the caller (the transport's
        callback) rather than in the loop's task, when nothing needs waiting for: one
        task hand-off less on every hop of a write. Anything else goes to the loop."""
        if self._in_ready or self._deferred is not None or self._fatal is not None:
            self._wake()
            return
        node = self._node
        self._in_ready = True
        try:
            while node.has_ready():
                ready = node.ready()
                if not self._handle_ready_now(ready):
                    self._deferred = ready
                    self._wake()
                    return
            if self._snapshot_due():
                self._wake()
        except BaseException as error:  # the loop's task raises it (WAL failures end it)
            self._fatal = error
            self._wake()
        finally:
            self._in_ready = False

    def _handle_ready_now(self, ready: Ready) -> bool:
        """Handle `ready` without waiting if it needs none (no snapshot to install, the
        disk writer idle); False, with nothing done, otherwise."""
        storage = self._storage
        if ready.snapshot is not None or not storage.can_write_now():
            return False
        node = self._node
        # A leader's messages (appends, heartbeats) need nothing of its own disk: they
        # go out while its fsync runs, so that its fsync and its followers' overlap
        # (Raft thesis 10.2.1). Its entries count toward a commit before they are
        # durable here, but nothing shows that commit (no answer, no commit index
        # sent, nothing applied) before the next Ready, which comes only after this
        # one's writes are durable. Anyone else's messages (votes, acknowledgements)
        # wait for the disk.
        early = bool(ready.messages) and node.is_leader
        messages = ready.messages
        hard_state = ready.hard_state
        if not ready.entries and not ready.must_sync and hard_state is not None:
            # Only the commit index moved, which needs no fsync and may be lost: apply
            # (and answer) first, write it after the answers.
            if early:
                self._send(messages)
            conf_changed = self._apply(ready.committed_entries)
            self._defer_hard_state(hard_state)
            if messages and not early:
                self._send(messages)
        else:
            hard_state = self._hard_state_to_write(ready)
            if hard_state is not None or ready.entries:
                # The leader's sends run once its records are written, while the
                # fdatasync runs in the WAL's sync thread: sent before the sync, they
                # woke followers that often took this CPU before the sync had started,
                # and the leader's sync was then the last thing the commit waited for.
                storage.try_persist_now(
                    hard_state=hard_state,
                    entries=ready.entries,
                    must_sync=ready.must_sync,
                    meanwhile=partial(self._send, messages) if early else None,
                )
            elif early:
                self._send(messages)
            if messages and not early:
                self._send(messages)
            conf_changed = self._apply(ready.committed_entries)
        self._finish_ready(ready, conf_changed)
        return True

    async def _handle_ready_waiting(self, ready: Ready) -> None:
        """`ready` through the writer task: a snapshot to install, or writes queued."""
        early = bool(ready.messages) and self._node.is_leader
        if early:
            self._send(ready.messages)
        hard_state = self._hard_state_to_write(ready)
        if ready.snapshot is not None or hard_state is not None or ready.entries:
            await self._storage.persist(
                hard_state=hard_state,
                entries=ready.entries,
                snapshot=ready.snapshot,
                must_sync=ready.must_sync,
            )
        if ready.snapshot is not None:
            self._restore(ready.snapshot)
        if ready.messages and not early:
            self._send(ready.messages)
        self._finish_ready(ready, self._apply(ready.committed_entries))

    def _defer_hard_state(self, hard_state: HardState) -> None:
        """Write a hard state whose commit index alone moved after the callbacks already
        scheduled (the answers its commit released): it needs no fsync and may be lost,
        so it need not hold them up. Until then it rides along with the next write."""
        if self._unwritten_hard_state is None:
            asyncio.get_running_loop().call_soon(self._write_unwritten_hard_state)
        self._unwritten_hard_state = hard_state

    def _hard_state_to_write(self, ready: Ready) -> HardState | None:
        """The hard state a Ready's write carries: its own (newer than any deferred
        one, which it replaces), else the deferred one, still the latest."""
        hard_state = ready.hard_state
        if hard_state is None:
            hard_state = self._unwritten_hard_state
        self._unwritten_hard_state = None
        return hard_state

    def _write_unwritten_hard_state(self) -> None:
        hard_state = self._unwritten_hard_state
        if hard_state is None or self._fatal is not None:
            return
        if self._in_ready or not self._storage.can_write_now():
            return  # the Ready being written takes it along, or the next tick writes it
        self._unwritten_hard_state = None
        try:
            self._storage.try_persist_now(hard_state=hard_state, must_sync=False)
        except BaseException as error:  # the loop's task raises it (WAL failures end it)
            self._fatal = error
            self._wake()

    def _finish_ready(self, ready: Ready, conf_changed: bool) -> None:
        if ready.read_states:
            self._answer_reads(ready.read_states)
        self._node.advance(ready)
        if conf_changed:
            self._sync_peers()
        self._observe(ready.soft_state is not None or conf_changed)

    def _snapshot_due(self) -> bool:
        return self._applied_index - self._snapshot_index >= self.timing.snapshot_every_entries

    def _send(self, messages: list[Message]) -> None:
        assert self._transport is not None
        self._transport.send(messages)

    def _observe(self, changed: bool) -> None:
        node = self._node
        leadership_changed = False
        if node.term != self._term:
            self._term = node.term
            leadership_changed = True
        if node.leader_id != self._leader_id or node.role is not self._role:
            was_leader = self.is_leader
            self._leader_id = node.leader_id
            self._role = node.role
            leadership_changed = True
            if self._role is StateRole.LEADER:
                log.info("replica %d leads in term %d", self.node_id, self._term)
            elif was_leader:
                log.info("replica %d no longer leads (term %d)", self.node_id, self._term)
        if leadership_changed:
            self._leadership_changed.set()
            self._leadership_changed = asyncio.Event()
        if changed or leadership_changed:
            self._notify()

    def _restore(self, snapshot: Snapshot) -> None:
        index = snapshot.metadata.index
        self._registry = Registry.restore(snapshot.data) if snapshot.data else Registry()
        self._snapshot_index = index
        self._set_applied(index)
        # Proposals the snapshot covers may or may not be in it.
        for proposal_index in [i for i in self._proposals if i <= index]:
            self._proposals.pop(proposal_index).finish(
                ProposalLostError("a snapshot replaced the log; the outcome is unknown")
            )
        self._sync_peers()
        self._notify()

    def _apply(self, entries: Iterable[Entry]) -> bool:
        registry = self._registry
        conf_changed = False
        last_index = 0
        for entry in entries:
            error: BaseException | None = None
            if entry.type is _NORMAL:
                if entry.data:
                    try:
                        registry.apply_entry(entry.data)
                    except OperationRejected as rejection:
                        error = rejection
            else:
                conf_changed = True
                self._apply_member_change(ConfChange.decode(entry.data))
            proposal = self._proposals.pop(entry.index, None)
            if proposal is not None:
                if proposal.term != entry.term:
                    error = ProposalLostError(
                        f"entry {entry.index} was replaced by a later leader's; retry"
                    )
                proposal.finish(error)
            last_index = entry.index
        if last_index:
            self._set_applied(last_index)
            if registry is self._registry:
                self._notify()
        return conf_changed

    def _apply_member_change(self, change: ConfChange) -> None:
        registry = self._registry
        if change.type is ConfChangeType.REMOVE_NODE:
            operation = registry_pb2.RegistryOperation()
            operation.remove_member.id = change.node_id
        else:
            member = registry_pb2.Member()
            with contextlib.suppress(Exception):
                member.ParseFromString(change.context)
            if not member.IsInitialized() or member.id != change.node_id:
                log.warning("membership change of %d carries no member", change.node_id)
                return
            member.role = (
                registry_pb2.Member.VOTER
                if change.type is ConfChangeType.ADD_VOTER
                else registry_pb2.Member.LEARNER
            )
            operation = registry_pb2.RegistryOperation()
            operation.add_member.member.CopyFrom(member)
        try:
            registry.apply(operation)
        except OperationRejected as rejection:
            log.warning("membership change not recorded in the registry: %s", rejection)

    def _set_applied(self, index: int) -> None:
        self._applied_index = index
        if not self._applied_waiters:
            return
        for waiting_index in [i for i in self._applied_waiters if i <= index]:
            for event in self._applied_waiters.pop(waiting_index):
                event.set()

    def _answer_reads(self, read_states: list[ReadState]) -> None:
        for state in read_states:
            read = self._reads.get(state.request_context)
            if read is not None and not read.done.is_set():
                read.index = state.index
                read.done.set()

    def _sync_peers(self) -> None:
        transport = self._transport
        if transport is None:
            return
        members = {member_id: m.address for member_id, m in self._registry.members.items()}
        wanted = {
            member_id: address
            for member_id, address in (members or self._seed_peers).items()
            if member_id != self.node_id
        }
        for member_id in set(self._peer_addresses) - set(wanted):
            transport.remove_peer(member_id)
        for member_id, address in wanted.items():
            if self._peer_addresses.get(member_id) != address:
                transport.set_peer(member_id, address)
        self._peer_addresses = wanted

    async def _maybe_snapshot(self) -> None:
        timing = self.timing
        applied = self._applied_index
        if applied - self._snapshot_index < timing.snapshot_every_entries:
            return
        if applied > self._storage.hard_state.commit:
            return  # the commit index covering it is not persisted yet: next time
        await self._storage.create_snapshot(
            applied, self._node.conf_state(), self._registry.snapshot()
        )
        self._snapshot_index = applied
        compact_index = applied - timing.entries_kept_after_snapshot
        if compact_index >= self._storage.first_index():
            self._storage.compact(compact_index)
