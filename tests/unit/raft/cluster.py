"""A tiny in-memory harness for Raft unit tests: nodes with `MemoryStorage`, a mailbox of
messages in flight, and controls to cut links, isolate nodes and drop messages (in the
spirit of etcd's raft_test `network`). Everything is explicit and synchronous: tests
decide when time passes (`tick`) and when messages move (`deliver`, `stabilize`)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mesoslite.raft import (
    Config,
    Entry,
    EntryType,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    RawNode,
    ReadState,
    StateRole,
    bootstrap_snapshot,
)

MessageFilter = Callable[[Message], bool]


@dataclass
class NodeState:
    node: RawNode
    storage: MemoryStorage
    applied: list[Entry] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)
    snapshot_data: bytes = b""


def make_storage(
    voters: Sequence[int],
    learners: Sequence[int] = (),
    log_terms: Sequence[int] = (),
    term: int = 1,
) -> MemoryStorage:
    """Storage of a founding member whose log holds entries of `log_terms` after the
    bootstrap snapshot (at index 1), with hard state `term`."""
    storage = MemoryStorage()
    storage.apply_snapshot(bootstrap_snapshot(voters, learners))
    entries = [
        Entry(term=log_term, index=2 + offset, data=f"e{2 + offset}@{log_term}".encode())
        for offset, log_term in enumerate(log_terms)
    ]
    storage.append(entries)
    storage.set_hard_state(HardState(term=max([term, *log_terms]), commit=1))
    return storage


class Cluster:
    def __init__(
        self,
        voters: Sequence[int] = (1, 2, 3),
        learners: Sequence[int] = (),
        *,
        logs: dict[int, Sequence[int]] | None = None,
        terms: dict[int, int] | None = None,
        seed: int = 0,
        **config: object,
    ) -> None:
        self.config = config
        self.seed = seed
        self.states: dict[int, NodeState] = {}
        self.mailbox: list[Message] = []
        self.cut_links: set[tuple[int, int]] = set()
        self.drop_filters: list[MessageFilter] = []
        self.sent: list[Message] = []
        for node_id in [*voters, *learners]:
            log_terms = (logs or {}).get(node_id, ())
            term = (terms or {}).get(node_id, 1)
            storage = make_storage(voters, learners, log_terms, term)
            self.add_node(node_id, storage, applied_index=1)

    def add_node(self, node_id: int, storage: MemoryStorage, applied_index: int = 0) -> RawNode:
        options: dict[str, object] = {"election_ticks": 10, "heartbeat_ticks": 1}
        options.update(self.config)
        node = RawNode(
            Config(
                id=node_id,
                storage=storage,
                rng=random.Random(self.seed * 1000 + node_id),
                applied_index=applied_index,
                **options,  # type: ignore[arg-type]
            )
        )
        self.states[node_id] = NodeState(node, storage)
        return node

    def add_empty_node(self, node_id: int) -> RawNode:
        """A node joining an existing cluster: no log, no membership."""
        return self.add_node(node_id, MemoryStorage())

    def restart(self, node_id: int) -> RawNode:
        """Crash and restart from storage (MemoryStorage plays the durable disk here)."""
        state = self.states[node_id]
        applied_index = state.storage.snapshot().metadata.index
        old_applied = state.applied
        node = self.add_node(node_id, state.storage, applied_index)
        self.states[node_id].applied = [e for e in old_applied if e.index <= applied_index]
        return node

    def node(self, node_id: int) -> RawNode:
        return self.states[node_id].node

    def nodes(self) -> Iterable[RawNode]:
        return (state.node for state in self.states.values())

    # -- the Ready loop --------------------------------------------------------------------

    def process_ready(self, node_id: int) -> bool:
        state = self.states[node_id]
        node = state.node
        if not node.has_ready():
            return False
        ready = node.ready()
        if ready.snapshot is not None:
            state.storage.apply_snapshot(ready.snapshot)
            state.snapshot_data = ready.snapshot.data
            state.applied = [e for e in state.applied if e.index <= ready.snapshot.metadata.index]
        state.storage.append(ready.entries)
        if ready.hard_state is not None:
            state.storage.set_hard_state(ready.hard_state)
        self.mailbox.extend(ready.messages)
        self.sent.extend(ready.messages)
        state.applied.extend(ready.committed_entries)
        state.read_states.extend(ready.read_states)
        node.advance(ready)
        return True

    def process_all_readies(self) -> None:
        progress = True
        while progress:
            progress = False
            for node_id in list(self.states):
                progress |= self.process_ready(node_id)

    def _dropped(self, message: Message) -> bool:
        if message.to_id not in self.states:
            return True
        if (message.from_id, message.to_id) in self.cut_links:
            return True
        return any(drop(message) for drop in self.drop_filters)

    def deliver(self, keep: MessageFilter | None = None) -> int:
        """Deliver the messages in flight (those `keep` accepts; others stay queued)."""
        in_flight, self.mailbox = self.mailbox, []
        delivered = 0
        for message in in_flight:
            if keep is not None and not keep(message):
                self.mailbox.append(message)
                continue
            if self._dropped(message):
                continue
            self.states[message.to_id].node.step(message)
            delivered += 1
        return delivered

    def stabilize(self, max_rounds: int = 1000) -> None:
        for _ in range(max_rounds):
            self.process_all_readies()
            if not self.mailbox:
                return
            self.deliver()
        raise AssertionError("the cluster did not stabilize")

    def tick(self, node_ids: Iterable[int] | None = None, ticks: int = 1) -> None:
        for _ in range(ticks):
            for node_id in list(node_ids if node_ids is not None else self.states):
                self.states[node_id].node.tick()
            self.stabilize()

    def elect(self, node_id: int) -> RawNode:
        self.node(node_id).campaign()
        self.stabilize()
        node = self.node(node_id)
        assert node.role is StateRole.LEADER, f"node {node_id} is {node.role}"
        return node

    def compact(self, node_id: int) -> int:
        """Snapshot the node's state machine at its applied index and drop the log before.
        The snapshot data is the list of applied payloads, so a restore can be checked."""
        state = self.states[node_id]
        index = state.node.applied_index
        data = b"|".join(self.applied_data(node_id))
        state.storage.create_snapshot(index, state.node.conf_state(), data)
        state.storage.compact(index)
        return index

    # -- faults ----------------------------------------------------------------------------

    def cut(self, a: int, b: int) -> None:
        self.cut_links |= {(a, b), (b, a)}

    def isolate(self, node_id: int) -> None:
        for other in self.states:
            if other != node_id:
                self.cut(node_id, other)

    def heal(self) -> None:
        self.cut_links.clear()
        self.drop_filters.clear()

    def drop(self, message_filter: MessageFilter) -> None:
        self.drop_filters.append(message_filter)

    # -- observation -----------------------------------------------------------------------

    def leaders(self) -> list[int]:
        return [node_id for node_id, s in self.states.items() if s.node.is_leader]

    def applied_data(self, node_id: int) -> list[bytes]:
        return [
            e.data for e in self.states[node_id].applied if e.type is EntryType.NORMAL and e.data
        ]

    def log_entries(self, node_id: int) -> list[tuple[int, int]]:
        """(index, term) of every entry the node's storage holds after its snapshot."""
        storage = self.states[node_id].storage
        return [
            (index, storage.term(index))
            for index in range(storage.first_index(), storage.last_index() + 1)
        ]

    def sent_of_type(self, message_type: MessageType) -> list[Message]:
        return [m for m in self.sent if m.type is message_type]
