"""Three masters, each in a network namespace of its own on a test bridge: cut the
leader off, keep writing through the majority, heal. Nothing acknowledged is lost, the
history is linearizable, and the old leader rejoins as a follower."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import require, require_root
from tests.integration.ha.cluster import HaCluster
from tests.integration.ha.linearizability import check_registers
from tests.integration.ha.network import BridgeNetwork
from tests.integration.ha.workload import RegistryClients

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.kernel]

KEYS = ["r0", "r1", "r2"]


def test_an_isolated_leader_loses_nothing_and_rejoins(tmp_path: Path) -> None:
    require_root()
    require(subprocess.run(["ip", "-V"], capture_output=True).returncode == 0, "needs iproute2")
    network = BridgeNetwork(3)
    cluster: HaCluster | None = None
    try:
        network.create()
        cluster = HaCluster(tmp_path, network.node_ips, base_port=5050, netns=network.node_ns)
        # Distinct namespaces: every master may use the same ports.
        for node in cluster.masters:
            node.port = 5050
        cluster.start()
        masters = [node.master_address for node in cluster.masters]
        clients = RegistryClients(masters, KEYS)

        async def scenario() -> None:
            stop = anyio.Event()
            async with anyio.create_task_group() as group:
                for index in range(3):
                    group.start_soon(clients.run_writer, index, stop)
                group.start_soon(clients.run_reader, stop)
                with anyio.fail_after(60):  # guards against hanging, not timing checks
                    while clients.acknowledged_writes < 20:
                        await anyio.sleep(0.05)
                    victim = cluster.leader()
                    assert victim is not None
                    network.isolate(cluster.masters.index(victim))
                    before = clients.acknowledged_writes
                    while clients.acknowledged_writes < before + 30:
                        await anyio.sleep(0.05)
                    new_leader = cluster.leader()
                    assert new_leader is not None and new_leader is not victim
                    network.heal(cluster.masters.index(victim))
                    # The old leader rejoins while writes go on...
                    before = clients.acknowledged_writes
                    while clients.acknowledged_writes < before + 20:
                        await anyio.sleep(0.05)
                    # ...and catches up once they stop (every master at the same index).
                    stop.set()
                    await anyio.to_thread.run_sync(
                        lambda: cluster.wait_until(cluster.healed, "the cluster to heal")
                    )
                async with httpx.AsyncClient(timeout=5) as client:
                    assert await clients.read(client) is not None
                group.cancel_scope.cancel()

        anyio.run(scenario)
        assert check_registers(clients.history) == []
        status = cluster.status()
        assert status is not None
        assert sorted(m["role"] for m in status["members"]) == ["voter"] * 3
    finally:
        try:
            if cluster is not None:
                cluster.close()
        finally:  # even when stopping the nodes fails or times out
            network.close()
