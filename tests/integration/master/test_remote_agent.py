"""A master and a real agent in separate nodes, talking over the HTTP transport, with a
scheduler launching real command tasks: the master's side of deliverable 4."""

from __future__ import annotations

import contextlib
import getpass
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.abc import TaskGroup

from mesoslite.agent.config import AgentConfig
from mesoslite.master.config import MasterConfig
from mesoslite.node import Node
from tests.unit.master.harness import MasterHarness, Scheduler, command_task

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TwoNodes:
    harness: MasterHarness
    group: TaskGroup
    work_dir: Path
    master_address: str
    agent_port: int

    async def start_agent(self) -> None:
        config = AgentConfig(
            work_dir=self.work_dir,
            ip="127.0.0.1",
            port=self.agent_port,
            hostname="127.0.0.1",
            resources="cpus:2;mem:1024;disk:1024",
            registration_backoff_factor_s=0.05,
            registration_backoff_max_s=0.2,
        )
        node = Node(agent_config=config, master_address=self.master_address)
        await self.group.start(node.run)


@contextlib.asynccontextmanager
async def two_nodes(tmp_path: Path) -> AsyncIterator[TwoNodes]:
    master_port = free_port()
    config = MasterConfig(
        ip="127.0.0.1",
        port=master_port,
        hostname="127.0.0.1",
        allocation_interval_s=0.1,
        agent_ping_interval_s=0.2,
        max_agent_ping_timeouts=50,
    )
    master_node = Node(master_config=config)
    address = f"127.0.0.1:{master_port}"
    async with (
        anyio.create_task_group() as group,
        httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http,
    ):
        await group.start(master_node.run)
        assert master_node.master is not None
        harness = MasterHarness(master_node.master, f"http://{address}", group, http)
        nodes = TwoNodes(harness, group, tmp_path / "agent", address, free_port())
        try:
            yield nodes
        finally:
            group.cancel_scope.cancel()


async def wait_for(condition: Callable[[], object], what: str) -> None:
    with anyio.fail_after(20, reason=f"waiting for {what}"):
        while not condition():
            await anyio.sleep(0.02)


async def test_command_task_runs_through_a_remote_agent(tmp_path: Path) -> None:
    async with two_nodes(tmp_path) as nodes:
        await nodes.start_agent()
        master = nodes.harness.master
        await wait_for(lambda: master.state.agents, "agent registration")
        [agent_id] = master.state.agents
        assert master.state.agents[agent_id].pid == f"slave(1)@127.0.0.1:{nodes.agent_port}"

        scheduler = Scheduler(nodes.harness)
        await scheduler.subscribe({"user": getpass.getuser()})
        [offer] = await scheduler.offers()
        assert offer["url"]["address"]["port"] == nodes.agent_port
        await scheduler.launch(
            offer, command_task("t1", agent_id, cpus=0.1, mem=32, command="true")
        )
        states = []
        while not states or states[-1] not in ("TASK_FINISHED", "TASK_FAILED"):
            status = (await scheduler.next_event("UPDATE"))["update"]["status"]
            states.append(status["state"])
            assert "uuid" in status and status["agent_id"]["value"] == agent_id
            await scheduler.acknowledge(status)
        assert states[-1] == "TASK_FINISHED"
        framework = master.state.frameworks[scheduler.framework_id]
        await wait_for(lambda: not framework.tasks, "the terminal acknowledgement")
        assert [t.state for t in framework.completed_tasks] == [2]  # TASK_FINISHED
        scheduler.disconnect()


async def test_agent_reconnects_with_its_running_task(tmp_path: Path) -> None:
    """The HTTP connection breaks (here: the master drops it); the agent comes back on a
    new one, re-registers with its running task, and a kill still reaches it."""
    async with two_nodes(tmp_path) as nodes:
        await nodes.start_agent()
        master = nodes.harness.master
        await wait_for(lambda: master.state.agents, "agent registration")
        [agent_id] = master.state.agents
        scheduler = Scheduler(nodes.harness)
        await scheduler.subscribe({"user": getpass.getuser(), "failover_timeout": 60.0})
        [offer] = await scheduler.offers()
        await scheduler.launch(
            offer, command_task("sleeper", agent_id, cpus=0.1, mem=32, command="sleep 60")
        )
        while True:
            status = (await scheduler.next_event("UPDATE"))["update"]["status"]
            await scheduler.acknowledge(status)
            if status["state"] == "TASK_RUNNING":
                break

        agent = master.state.agents[agent_id]
        assert agent.link is not None
        agent.link.close()
        await wait_for(lambda: agent.reregistered_time is not None and agent.connected, "return")
        framework = master.state.frameworks[scheduler.framework_id]
        assert "sleeper" in framework.tasks
        await scheduler.call({"type": "KILL", "kill": {"task_id": {"value": "sleeper"}}})
        while True:
            status = (await scheduler.next_event("UPDATE"))["update"]["status"]
            if "uuid" in status:
                await scheduler.acknowledge(status)
            if status["state"] == "TASK_KILLED":
                break
        scheduler.disconnect()
