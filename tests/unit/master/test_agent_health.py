"""Agents lost and found (wire contract 7.1, 2.8): pings, unreachable agents, their
tasks, re-registration, MARK_AGENT_GONE, a new agent at the same address."""

from __future__ import annotations

import anyio
import pytest

from mesoslite.master.task_state import AgentStanding
from mesoslite.proto import mesos_pb2
from tests.unit.master.harness import (
    FakeAgent,
    MasterHarness,
    Scheduler,
    command_task,
    running_master,
)

pytestmark = pytest.mark.anyio

FAST_HEALTH = {"agent_ping_interval_s": 0.02, "max_agent_ping_timeouts": 2}


async def running_task(cluster: MasterHarness, scheduler: Scheduler, agent: FakeAgent) -> None:
    [offer] = await scheduler.offers()
    await scheduler.launch(offer, command_task("t1", agent.agent_id), filters={"refuse_seconds": 0})
    await agent.expect("run_task")
    await agent.update(scheduler.framework_id, "t1", mesos_pb2.TASK_RUNNING)
    await scheduler.next_event("UPDATE")


async def wait_unreachable(cluster: MasterHarness, agent_id: str) -> None:
    with anyio.fail_after(10):
        while agent_id not in cluster.master.state.unreachable_agents:
            await anyio.sleep(0.01)


async def test_pings_are_answered_and_agent_stays() -> None:
    async with running_master(**FAST_HEALTH) as cluster:
        agent = await cluster.add_agent()
        for _ in range(10):
            await anyio.sleep(0.02)
        assert agent.agent_id in cluster.master.state.agents


@pytest.mark.parametrize(
    ("capabilities", "shown"),
    [([], "TASK_LOST"), ([{"type": "PARTITION_AWARE"}], "TASK_UNREACHABLE")],
)
async def test_silent_agent_becomes_unreachable(
    capabilities: list[dict[str, str]], shown: str
) -> None:
    async with running_master(**FAST_HEALTH) as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler(capabilities=capabilities)
        await running_task(cluster, scheduler, agent)
        agent.answer_pings = False
        await wait_unreachable(cluster, agent.agent_id)
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == shown
        assert status["reason"] == "REASON_AGENT_REMOVED"
        assert status["source"] == "SOURCE_MASTER"
        assert "unreachable_time" in status
        assert "uuid" not in status
        failure = await scheduler.next_event("FAILURE")
        assert failure["failure"] == {"agent_id": {"value": agent.agent_id}}
        framework = cluster.master.state.frameworks[scheduler.framework_id]
        assert "t1" in framework.unreachable_tasks and "t1" not in framework.tasks
        assert cluster.master.tasks.agent_standing(agent.agent_id) is AgentStanding.UNREACHABLE


async def test_disconnected_agent_that_does_not_return_becomes_unreachable() -> None:
    async with running_master(**FAST_HEALTH) as cluster:
        agent = await cluster.add_agent()
        await agent.disconnect()
        await wait_unreachable(cluster, agent.agent_id)
        assert agent.agent_id not in cluster.master.state.agents


async def test_reconnecting_agent_keeps_its_tasks() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        await running_task(cluster, scheduler, agent)
        task = cluster.master.state.frameworks[scheduler.framework_id].tasks["t1"]
        await agent.disconnect()
        await agent.connect()
        await agent.reregister(tasks=[task])
        master_agent = cluster.master.state.agents[agent.agent_id]
        assert master_agent.connected
        assert master_agent.get_task(scheduler.framework_id, "t1") is not None
        # Offers resume from the reconnected agent.
        assert await scheduler.offers()


async def test_task_unknown_to_reconnecting_agent_is_lost() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        await running_task(cluster, scheduler, agent)
        await agent.disconnect()
        await agent.connect()
        await agent.reregister(tasks=[])
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == "TASK_LOST"
        assert status["reason"] == "REASON_TASK_UNKNOWN"
        framework = cluster.master.state.frameworks[scheduler.framework_id]
        assert not framework.tasks


async def test_unreachable_agent_reregisters_with_its_tasks() -> None:
    async with running_master(**FAST_HEALTH) as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler(failover_timeout=60.0)
        await running_task(cluster, scheduler, agent)
        task = mesos_pb2.Task()
        task.CopyFrom(cluster.master.state.frameworks[scheduler.framework_id].tasks["t1"])
        framework_info = cluster.master.state.frameworks[scheduler.framework_id].info
        await agent.disconnect()
        await wait_unreachable(cluster, agent.agent_id)
        lost = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert lost["state"] == "TASK_LOST"

        await agent.connect()
        task.state = mesos_pb2.TASK_RUNNING
        await agent.reregister(tasks=[task], frameworks=[framework_info])
        back = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert back["state"] == "TASK_RUNNING"
        assert back["reason"] == "REASON_AGENT_REREGISTERED"
        assert "uuid" not in back
        framework = cluster.master.state.frameworks[scheduler.framework_id]
        assert "t1" in framework.tasks and "t1" not in framework.unreachable_tasks
        assert agent.agent_id not in cluster.master.state.unreachable_agents
        # Its resources are accounted as used again.
        assert cluster.master.allocator.free(agent.agent_id).scalar("cpus") == 3.0


async def test_mark_agent_gone() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler(capabilities=[{"type": "PARTITION_AWARE"}])
        await running_task(cluster, scheduler, agent)
        response = await cluster.operator(
            {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent.agent_id}}}
        )
        assert response.status_code == 200
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == "TASK_GONE_BY_OPERATOR"
        assert status["reason"] == "REASON_AGENT_REMOVED_BY_OPERATOR"
        assert agent.agent_id in cluster.master.state.gone_agents
        # It may never come back.
        await agent.disconnect()
        await agent.connect()
        await agent.send(_reregistration(agent))
        with anyio.fail_after(10):
            while agent.agent_id not in cluster.master.state.gone_agents:
                await anyio.sleep(0.01)
        assert agent.agent_id not in cluster.master.state.agents


def _reregistration(agent: FakeAgent) -> object:
    from mesoslite.proto import internal_pb2

    message = internal_pb2.AgentToMaster()
    message.reregister_agent.agent_info.CopyFrom(agent.agent_info())
    message.reregister_agent.version = "1.12.0"
    message.reregister_agent.endpoint = agent.endpoint
    return message


async def test_mark_unknown_agent_gone_is_404() -> None:
    async with running_master() as cluster:
        response = await cluster.operator(
            {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": "nope"}}}
        )
        assert response.status_code == 404


async def test_new_agent_at_same_address_replaces_the_old_one() -> None:
    async with running_master() as cluster:
        old = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        await running_task(cluster, scheduler, old)
        new = await cluster.add_agent(endpoint=old.endpoint)
        assert new.agent_id != old.agent_id
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == "TASK_LOST"
        assert old.agent_id not in cluster.master.state.agents
        assert new.agent_id in cluster.master.state.agents


async def test_messages_before_registration_are_ignored() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent(register=False)
        await agent.update("fw", "t1", mesos_pb2.TASK_RUNNING)
        await agent.register()
        assert agent.agent_id in cluster.master.state.agents
