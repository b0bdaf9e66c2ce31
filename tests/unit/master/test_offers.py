"""Offers and filters as schedulers observe them (wire contract 2.6, 2.7, 8.6 item 3)."""

from __future__ import annotations

import anyio
import pytest

from mesoslite.master.offer_manager import refuse_seconds_of
from mesoslite.proto import mesos_pb2
from tests.unit.master.harness import command_task, running_master, settle

pytestmark = pytest.mark.anyio


def test_refuse_seconds_rules() -> None:
    assert refuse_seconds_of(None) == 5.0
    assert refuse_seconds_of(mesos_pb2.Filters()) == 5.0
    assert refuse_seconds_of(mesos_pb2.Filters(refuse_seconds=0)) == 0.0
    assert refuse_seconds_of(mesos_pb2.Filters(refuse_seconds=-1)) == 5.0
    assert refuse_seconds_of(mesos_pb2.Filters(refuse_seconds=float("nan"))) == 5.0
    assert refuse_seconds_of(mesos_pb2.Filters(refuse_seconds=1e12)) == 365 * 24 * 3600.0


async def test_decline_filters_until_revive() -> None:
    async with running_master() as cluster:
        await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        response = await scheduler.call(
            {
                "type": "DECLINE",
                "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 3600}},
            }
        )
        assert response.status_code == 202
        # Several allocation passes go by without a new offer.
        await settle()
        assert not [e for e in scheduler.pending_events() if e["type"] == "OFFERS"]
        assert (await scheduler.call({"type": "REVIVE"})).status_code == 202
        [again] = await scheduler.offers()
        assert again["id"] != offer["id"]


async def test_decline_with_zero_refuse_seconds_reoffers() -> None:
    async with running_master() as cluster:
        await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        await scheduler.call(
            {
                "type": "DECLINE",
                "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0}},
            }
        )
        [again] = await scheduler.offers()
        assert again["agent_id"] == offer["agent_id"]


async def test_suppress_stops_offers_and_revive_resumes() -> None:
    async with running_master() as cluster:
        await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        await scheduler.call({"type": "SUPPRESS"})
        await scheduler.call(
            {
                "type": "DECLINE",
                "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0}},
            }
        )
        await settle()
        assert not [e for e in scheduler.pending_events() if e["type"] == "OFFERS"]
        await scheduler.call({"type": "REVIVE"})
        assert await scheduler.offers()


async def test_offer_used_twice_is_invalid() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler(capabilities=[{"type": "PARTITION_AWARE"}])
        [offer] = await scheduler.offers()
        await scheduler.call(
            {
                "type": "DECLINE",
                "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 60}},
            }
        )
        await scheduler.launch(offer, command_task("t1", agent.agent_id))
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == "TASK_DROPPED"
        assert status["reason"] == "REASON_INVALID_OFFERS"
        assert status["source"] == "SOURCE_MASTER"
        assert "uuid" not in status
        assert status["message"].startswith("Task launched with invalid offers: Offer ")


async def test_invalid_offers_are_task_lost_for_non_partition_aware() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        fake_offer = {"id": {"value": "no-such-offer"}}
        await scheduler.launch(fake_offer, command_task("t1", agent.agent_id))
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == "TASK_LOST"
        assert status["message"] == (
            "Task launched with invalid offers: Offer no-such-offer is no longer valid"
        )


async def test_accept_leftovers_are_reoffered_after_filter() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        await scheduler.launch(
            offer, command_task("t1", agent.agent_id, cpus=1), filters={"refuse_seconds": 0}
        )
        await agent.expect("run_task")
        [rest] = await scheduler.offers()
        cpus = next(r for r in rest["resources"] if r["name"] == "cpus")
        assert cpus["scalar"]["value"] == 3.0


async def test_task_resources_come_back_when_task_ends() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent(resources="cpus:1;mem:256")
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        await scheduler.launch(offer, command_task("t1", agent.agent_id, cpus=1, mem=256))
        await agent.expect("run_task")
        await agent.update(scheduler.framework_id, "t1", mesos_pb2.TASK_FINISHED)
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == "TASK_FINISHED"
        # Resources are released when the master learns the terminal state, before the ack.
        [again] = await scheduler.offers()
        assert again["agent_id"]["value"] == agent.agent_id


async def test_latest_state_terminal_releases_resources_early() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent(resources="cpus:1;mem:256")
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        await scheduler.launch(offer, command_task("t1", agent.agent_id, cpus=1, mem=256))
        await agent.expect("run_task")
        await agent.update(
            scheduler.framework_id,
            "t1",
            mesos_pb2.TASK_RUNNING,
            latest_state=mesos_pb2.TASK_FINISHED,
        )
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == "TASK_RUNNING"
        task = cluster.master.state.frameworks[scheduler.framework_id].tasks["t1"]
        assert task.state == mesos_pb2.TASK_FINISHED
        assert task.status_update_state == mesos_pb2.TASK_RUNNING
        assert await scheduler.offers()


async def test_offer_timeout_rescinds() -> None:
    async with running_master(offer_timeout_s=0.05) as cluster:
        await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        rescind = await scheduler.next_event("RESCIND")
        assert rescind["rescind"]["offer_id"] == offer["id"]
        # The resources are offered again.
        assert await scheduler.offers()


async def test_agent_disconnect_rescinds_offers() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        await agent.disconnect()
        rescind = await scheduler.next_event("RESCIND")
        assert rescind["rescind"]["offer_id"] == offer["id"]
        assert not cluster.master.state.offers


async def test_offers_go_to_each_framework_fairly() -> None:
    async with running_master() as cluster:
        await cluster.add_agent("a1")
        await cluster.add_agent("a2")
        first = await cluster.scheduler()
        offers = await first.offers()
        while len(offers) < 2:
            offers += await first.offers()
        for offer in offers:
            await first.call(
                {
                    "type": "DECLINE",
                    "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 3600}},
                }
            )
        second = await cluster.scheduler()
        got = await second.offers()
        assert got


async def test_gpu_agents_are_not_offered_to_frameworks_without_gpu_capability() -> None:
    async with running_master() as cluster:
        await cluster.add_agent(resources="cpus:2;mem:1024;gpus:1")
        plain = await cluster.scheduler()
        gpu = await cluster.scheduler(capabilities=[{"type": "GPU_RESOURCES"}])
        [offer] = await gpu.offers()
        assert any(r["name"] == "gpus" for r in offer["resources"])
        await settle()
        assert not [e for e in plain.pending_events() if e["type"] == "OFFERS"]


async def test_reservation_refinement_frameworks_get_post_refinement_format() -> None:
    async with running_master() as cluster:
        await cluster.add_agent(resources="cpus(eng):2;mem(eng):512")
        scheduler = await cluster.scheduler(
            roles=["eng"],
            capabilities=[{"type": "MULTI_ROLE"}, {"type": "RESERVATION_REFINEMENT"}],
        )
        [offer] = await scheduler.offers()
        for resource in offer["resources"]:
            assert "role" not in resource
            assert resource["reservations"] == [{"type": "STATIC", "role": "eng"}]


async def test_unsupported_operation_with_id_gets_operation_error() -> None:
    async with running_master() as cluster:
        await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        response = await scheduler.call(
            {
                "type": "ACCEPT",
                "accept": {
                    "offer_ids": [offer["id"]],
                    "operations": [
                        {
                            "type": "RESERVE",
                            "id": {"value": "op1"},
                            "reserve": {"resources": []},
                        }
                    ],
                },
            }
        )
        assert response.status_code == 202
        event = await scheduler.next_event("UPDATE_OPERATION_STATUS")
        status = event["update_operation_status"]["status"]
        assert status["operation_id"] == {"value": "op1"}
        assert status["state"] == "OPERATION_ERROR"
        assert "not supported" in status["message"]
        assert "uuid" not in status


async def test_many_offers_each_accepted_once() -> None:
    """Offer bookkeeping stays consistent over many launches on one agent."""
    # The scripted agent reports none of its tasks: no launch flow control here.
    async with running_master(max_staging_tasks_per_agent=None) as cluster:
        agent = await cluster.add_agent(resources="cpus:64;mem:65536")
        scheduler = await cluster.scheduler()
        launched = 0
        with anyio.fail_after(20):
            while launched < 32:
                for offer in await scheduler.offers():
                    task = command_task(f"t{launched}", agent.agent_id, cpus=1, mem=32)
                    await scheduler.launch(offer, task, filters={"refuse_seconds": 0})
                    launched += 1
        master = cluster.master
        framework = master.state.frameworks[scheduler.framework_id]
        assert len(framework.tasks) == 32
        allocated = master.allocator.allocated(agent.agent_id)
        used = sum(r.scalar("cpus") for r in allocated.values())
        assert used >= 32.0


async def test_an_agent_with_launches_to_start_is_offered_once_they_report() -> None:
    """Launch flow control: while a launched task is still TASK_STAGING the agent's
    remaining resources wait; its first update brings them back at once."""
    async with running_master(launch_pause_max_s=60.0) as cluster:
        agent = await cluster.add_agent(resources="cpus:8;mem:8192")
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        task = command_task("t1", agent.agent_id, cpus=1, mem=32)
        await scheduler.launch(offer, task, filters={"refuse_seconds": 0})
        await settle()
        assert not [e for e in scheduler.pending_events() if e["type"] == "OFFERS"]
        await agent.update(scheduler.framework_id, "t1", mesos_pb2.TASK_STARTING)
        with anyio.fail_after(5):
            [again] = await scheduler.offers()
        cpus = sum(r["scalar"]["value"] for r in again["resources"] if r["name"] == "cpus")
        assert cpus == 7.0


async def test_a_launch_pause_ends_by_itself() -> None:
    """An agent that reports nothing is offered again after `launch_pause_max_s`."""
    async with running_master(launch_pause_max_s=0.2) as cluster:
        agent = await cluster.add_agent(resources="cpus:8;mem:8192")
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        task = command_task("t1", agent.agent_id, cpus=1, mem=32)
        await scheduler.launch(offer, task, filters={"refuse_seconds": 0})
        with anyio.fail_after(5):
            [again] = await scheduler.offers()
        assert again["agent_id"]["value"] == agent.agent_id
        assert cluster.master.state.agents[agent.agent_id].launch_pause is None


async def test_launches_below_the_limit_do_not_pause() -> None:
    async with running_master(max_staging_tasks_per_agent=2, launch_pause_max_s=60.0) as cluster:
        agent = await cluster.add_agent(resources="cpus:8;mem:8192")
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        task = command_task("t1", agent.agent_id, cpus=1, mem=32)
        await scheduler.launch(offer, task, filters={"refuse_seconds": 0})
        with anyio.fail_after(5):
            [again] = await scheduler.offers()
        task = command_task("t2", agent.agent_id, cpus=1, mem=32)
        await scheduler.launch(again, task, filters={"refuse_seconds": 0})
        await settle()
        # Two tasks staging: the limit is reached until one of them reports.
        assert not [e for e in scheduler.pending_events() if e["type"] == "OFFERS"]
        await agent.update(scheduler.framework_id, "t2", mesos_pb2.TASK_RUNNING)
        with anyio.fail_after(5):
            await scheduler.offers()


async def test_tasks_still_starting_count_against_the_launch_limit() -> None:
    """STARTING is not yet RUNNING: with two tasks launched and starting the agent's
    remaining resources wait until one of them runs."""
    async with running_master(
        max_staging_tasks_per_agent=None, max_launching_tasks_per_agent=2, launch_pause_max_s=60.0
    ) as cluster:
        agent = await cluster.add_agent(resources="cpus:8;mem:8192")
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        tasks = [command_task(name, agent.agent_id, cpus=1, mem=32) for name in ("t1", "t2")]
        await scheduler.launch(offer, *tasks, filters={"refuse_seconds": 0})
        for name in ("t1", "t2"):
            await agent.update(scheduler.framework_id, name, mesos_pb2.TASK_STARTING)
        await settle()
        assert not [e for e in scheduler.pending_events() if e["type"] == "OFFERS"]
        await agent.update(scheduler.framework_id, "t1", mesos_pb2.TASK_RUNNING)
        with anyio.fail_after(5):
            [again] = await scheduler.offers()
        cpus = sum(r["scalar"]["value"] for r in again["resources"] if r["name"] == "cpus")
        assert cpus == 6.0


async def test_a_launching_pause_ends_once_half_of_them_run() -> None:
    """Resuming at the first task to run would offer one task's room at a time."""
    async with running_master(
        max_staging_tasks_per_agent=None, max_launching_tasks_per_agent=4, launch_pause_max_s=60.0
    ) as cluster:
        agent = await cluster.add_agent(resources="cpus:8;mem:8192")
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        names = ["t1", "t2", "t3", "t4"]
        tasks = [command_task(name, agent.agent_id, cpus=1, mem=32) for name in names]
        await scheduler.launch(offer, *tasks, filters={"refuse_seconds": 0})
        for name in names:
            await agent.update(scheduler.framework_id, name, mesos_pb2.TASK_STARTING)
        await agent.update(scheduler.framework_id, "t1", mesos_pb2.TASK_RUNNING)
        await settle()
        assert not [e for e in scheduler.pending_events() if e["type"] == "OFFERS"]
        await agent.update(scheduler.framework_id, "t2", mesos_pb2.TASK_RUNNING)
        with anyio.fail_after(5):
            [again] = await scheduler.offers()
        cpus = sum(r["scalar"]["value"] for r in again["resources"] if r["name"] == "cpus")
        assert cpus == 4.0
