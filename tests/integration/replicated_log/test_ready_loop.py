"""The Raft core driven over DurableStorage and the registry, across a restart: the
pieces the master's Ready loop will join, joined the way it will."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest

from mesoslite.proto import mesos_pb2, registry_pb2
from mesoslite.raft import Config, EntryType, RawNode, bootstrap_snapshot
from mesoslite.replicated_log.durable_storage import DurableStorage, open_durable_storage
from mesoslite.replicated_log.registry import OperationRejected, Registry

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def admit(number: int) -> bytes:
    info = mesos_pb2.AgentInfo(hostname=f"host-{number}")
    info.id.value = f"c1-S{number}"
    return registry_pb2.RegistryOperation(
        admit_agent=registry_pb2.AdmitAgent(info=info)
    ).SerializeToString()


async def drain_ready(node: RawNode, storage: DurableStorage, registry: Registry) -> Registry:
    """Persist, (send: one node has no peers), apply, advance, until nothing is ready."""
    while node.has_ready():
        ready = node.ready()
        await storage.persist(
            hard_state=ready.hard_state,
            entries=ready.entries,
            snapshot=ready.snapshot,
            must_sync=ready.must_sync,
        )
        assert ready.messages == []
        if ready.snapshot is not None:
            registry = Registry.restore(ready.snapshot.data)
        for entry in ready.committed_entries:
            if entry.type == EntryType.NORMAL and entry.data:
                # A rejection would be told to the proposer; every replica rejects alike.
                with contextlib.suppress(OperationRejected):
                    registry.apply_entry(entry.data)
        node.advance(ready)
    return registry


async def test_a_single_node_commits_snapshots_and_recovers(tmp_path: Path) -> None:
    founding = Registry()
    founding.apply(
        registry_pb2.RegistryOperation(
            initialize_cluster=registry_pb2.InitializeCluster(
                cluster_id="c1",
                members=[registry_pb2.Member(id=1, address="127.0.0.1:5050", role=1)],
            )
        )
    )
    async with open_durable_storage(tmp_path, segment_size_bytes=4096) as storage:
        await storage.persist(snapshot=bootstrap_snapshot([1], data=founding.snapshot()))
        node = RawNode(Config(id=1, storage=storage, rng=random.Random(1)))
        registry = Registry.restore(storage.snapshot().data)
        node.campaign()
        registry = await drain_ready(node, storage, registry)
        assert node.is_leader
        for number in range(1, 41):
            node.propose(admit(number))
            if number % 10 == 0:
                registry = await drain_ready(node, storage, registry)
        node.propose(admit(1))  # rejected on apply: already admitted
        registry = await drain_ready(node, storage, registry)
        assert len(registry.agents) == 40

        applied = node.applied_index
        # An older snapshot, superseded by the next one: recovery must pick the newest.
        await storage.create_snapshot(applied - 5, node.conf_state(), b"")
        snapshot_index = applied
        await storage.create_snapshot(snapshot_index, node.conf_state(), registry.snapshot())
        storage.compact(snapshot_index - 3)
        for number in range(41, 46):
            node.propose(admit(number))
        registry = await drain_ready(node, storage, registry)
        expected = registry.snapshot()
        hard_state = storage.hard_state

    async with open_durable_storage(tmp_path, segment_size_bytes=4096) as storage:
        assert storage.hard_state == hard_state
        assert storage.snapshot().metadata.index == snapshot_index
        recovered = Registry.restore(storage.snapshot().data)
        node = RawNode(
            Config(id=1, storage=storage, rng=random.Random(2), applied_index=snapshot_index)
        )
        recovered = await drain_ready(node, storage, recovered)
        assert recovered.snapshot() == expected
        assert len(recovered.agents) == 45
