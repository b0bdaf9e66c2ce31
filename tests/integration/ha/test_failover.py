"""Three real masters and an agent on 127.0.0.1: kill -9 the leader while registry
writes and a scheduler's launches are in flight, restart it. Nothing acknowledged is
lost, the tasks survive (none lost or duplicated), the registry history is
linearizable, and the cluster heals."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import anyio
import httpx
import pytest

from tests.integration.ha.cluster import HaCluster, free_port_base
from tests.integration.ha.linearizability import check_registers
from tests.integration.ha.workload import HaScheduler, RegistryClients

pytestmark = pytest.mark.slow

KEYS = ["r0", "r1", "r2"]
TASKS_BEFORE = 4
TASKS_AFTER = 4


def running_on_agent(agent_address: str) -> list[str]:
    with urllib.request.urlopen(f"http://{agent_address}/state", timeout=5) as response:
        state = json.load(response)
    return [
        task["id"]
        for framework in state.get("frameworks", [])
        for executor in framework.get("executors", [])
        for task in executor.get("tasks", [])
        if task.get("state") == "TASK_RUNNING"
    ]


def test_killing_the_leader_loses_nothing_acknowledged(tmp_path: Path) -> None:
    cluster = HaCluster(
        tmp_path, ["127.0.0.1"] * 3, base_port=free_port_base(), netns=[None, None, None]
    )
    try:
        cluster.start(agent_ip="127.0.0.1")
        masters = [node.master_address for node in cluster.masters]
        clients = RegistryClients(masters, KEYS)
        scheduler = HaScheduler(masters)
        agent = cluster.agents[0]

        async def wait_for(condition: object, what: str) -> None:
            with anyio.fail_after(60):  # a guard against hanging, not a timing check
                while not condition():  # type: ignore[operator]
                    await anyio.sleep(0.05)

        async def scenario() -> None:
            stop = anyio.Event()
            async with anyio.create_task_group() as group:
                for index in range(3):
                    group.start_soon(clients.run_writer, index, stop)
                group.start_soon(clients.run_reader, stop)
                group.start_soon(scheduler.run)
                scheduler.to_launch = TASKS_BEFORE
                await wait_for(lambda: len(scheduler.running()) >= TASKS_BEFORE, "tasks")
                await wait_for(lambda: clients.acknowledged_writes >= 20, "writes")
                # Launch more and kill the leader while they and the writes are in flight.
                scheduler.to_launch += TASKS_AFTER
                victim = cluster.leader()
                assert victim is not None
                await anyio.sleep(0.01)
                victim.kill()
                await wait_for(lambda: scheduler.subscriptions >= 2, "re-subscription")
                acknowledged_before = clients.acknowledged_writes
                await wait_for(
                    lambda: clients.acknowledged_writes >= acknowledged_before + 20, "writes"
                )
                cluster.restart(victim)
                await anyio.to_thread.run_sync(
                    lambda: cluster.wait_until(cluster.healed, "the cluster to heal")
                )

                def settled() -> bool:
                    return (
                        len(scheduler.running()) >= TASKS_BEFORE + TASKS_AFTER
                        and scheduler.to_launch == 0
                    )

                with anyio.fail_after(60):
                    while not settled():
                        await scheduler.reconcile()
                        await anyio.sleep(0.3)
                stop.set()
                await anyio.sleep(0.2)
                async with httpx.AsyncClient(timeout=5) as client:
                    final = await clients.read(client)
                assert final is not None
                group.cancel_scope.cancel()

        anyio.run(scenario)

        # Registry: the history of writes and reads is linearizable (which includes:
        # every acknowledged write is visible to reads that follow it).
        assert clients.acknowledged_writes >= 40
        assert check_registers(clients.history) == []
        # Tasks: every task the scheduler saw RUNNING runs on the agent, exactly once.
        on_agent = running_on_agent(f"{agent.ip}:{agent.agent_port}")
        assert len(on_agent) == len(set(on_agent))
        assert set(on_agent) == scheduler.running()
        assert len(scheduler.running()) == TASKS_BEFORE + TASKS_AFTER
        # The agent admitted once: its re-registration with the new leader is no new agent.
        assert cluster.admitted_agents() == 1
    finally:
        cluster.close()
