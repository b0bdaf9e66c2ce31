"""Framework lifecycle (wire contract 2.4, 8.6 items 5-6): failover to a new connection,
disconnection and failover_timeout, TEARDOWN, UPDATE_FRAMEWORK."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mesoslite.master.state import Framework
from mesoslite.proto import mesos_pb2
from tests.unit.master.harness import MasterHarness, Scheduler, command_task, running_master

pytestmark = pytest.mark.anyio


async def wait_until_removed(cluster: MasterHarness, framework_id: str) -> Framework:
    with anyio.fail_after(10):
        while framework_id not in cluster.master.state.completed_frameworks:
            await anyio.sleep(0.01)
    return cluster.master.state.completed_frameworks[framework_id]


async def launch_running_task(
    cluster: MasterHarness, scheduler: Scheduler, task_id: str = "t1"
) -> dict[str, Any]:
    agent = cluster.agents[0]
    [offer] = await scheduler.offers()
    await scheduler.launch(offer, command_task(task_id, agent.agent_id))
    await agent.expect("run_task")
    await agent.update(scheduler.framework_id, task_id, mesos_pb2.TASK_RUNNING)
    status: dict[str, Any] = (await scheduler.next_event("UPDATE"))["update"]["status"]
    return status


async def test_resubscribe_fails_over_the_old_stream() -> None:
    async with running_master() as cluster:
        first = await cluster.scheduler(failover_timeout=60.0)
        second = Scheduler(cluster)
        await second.subscribe({"failover_timeout": 60.0, "id": {"value": first.framework_id}})
        assert second.framework_id == first.framework_id
        assert second.stream_id != first.stream_id
        error = await first.next_event("ERROR")
        assert error["error"]["message"] == "Framework failed over"
        await first.wait_closed()
        stale = await first.call({"type": "REVIVE"})
        assert stale.status_code == 400
        assert (await second.call({"type": "REVIVE"})).status_code == 202


async def test_reconnect_within_failover_timeout_keeps_tasks() -> None:
    async with running_master() as cluster:
        await cluster.add_agent()
        scheduler = await cluster.scheduler(failover_timeout=60.0)
        await launch_running_task(cluster, scheduler)
        scheduler.disconnect()
        await scheduler.wait_closed()
        again = Scheduler(cluster)
        await again.subscribe({"failover_timeout": 60.0, "id": {"value": scheduler.framework_id}})
        framework = cluster.master.state.frameworks[scheduler.framework_id]
        assert framework.connected and "t1" in framework.tasks
        assert framework.reregistered_time is not None


async def test_zero_failover_timeout_removes_framework_on_disconnect() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        await launch_running_task(cluster, scheduler)
        scheduler.disconnect()
        framework = await wait_until_removed(cluster, scheduler.framework_id)
        assert [t.state for t in framework.completed_tasks] == [mesos_pb2.TASK_KILLED]
        last = framework.completed_tasks[0].statuses[-1]
        assert last.reason == mesos_pb2.TaskStatus.REASON_FRAMEWORK_REMOVED
        shutdown = await agent.expect("shutdown_framework")
        assert shutdown.framework_id.value == scheduler.framework_id
        # The framework's resources are free again.
        assert cluster.master.allocator.free(agent.agent_id).scalar("cpus") == 4.0

        again = Scheduler(cluster)
        await again.subscribe({"id": {"value": scheduler.framework_id}}, expect_subscribed=False)
        error = await again.next_event("ERROR")
        assert error["error"]["message"] == "Framework has been removed"
        await again.wait_closed()


async def test_teardown_removes_framework_and_closes_stream() -> None:
    async with running_master() as cluster:
        await cluster.add_agent()
        scheduler = await cluster.scheduler(failover_timeout=60.0)
        await launch_running_task(cluster, scheduler)
        response = await scheduler.call({"type": "TEARDOWN"})
        assert response.status_code == 202
        await scheduler.wait_closed()
        framework = cluster.master.state.completed_frameworks[scheduler.framework_id]
        assert not framework.active and not framework.connected
        assert framework.unregistered_time is not None
        frameworks = await cluster.get_json("/master/frameworks")
        assert frameworks["frameworks"] == []
        [completed] = frameworks["completed_frameworks"]
        assert completed["id"] == scheduler.framework_id
        assert completed["completed_tasks"][0]["state"] == "TASK_KILLED"


async def test_principal_change_on_resubscribe_is_refused() -> None:
    async with running_master() as cluster:
        first = await cluster.scheduler(failover_timeout=60.0, principal="alice")
        second = Scheduler(cluster)
        await second.subscribe(
            {"id": {"value": first.framework_id}, "principal": "bob"}, expect_subscribed=False
        )
        error = await second.next_event("ERROR")
        assert error["error"]["message"] == "Changing framework's principal is not allowed."
        # The original connection is untouched.
        assert (await first.call({"type": "REVIVE"})).status_code == 202


async def test_resubscribe_keeps_user_and_checkpoint() -> None:
    async with running_master() as cluster:
        first = await cluster.scheduler(failover_timeout=60.0, user="alice", checkpoint=True)
        second = Scheduler(cluster)
        await second.subscribe(
            {"id": {"value": first.framework_id}, "user": "mallory", "name": "renamed"}
        )
        info = cluster.master.state.frameworks[first.framework_id].info
        assert info.user == "alice" and info.checkpoint and info.name == "renamed"


async def test_unknown_framework_id_is_accepted_on_subscribe() -> None:
    """After a master restart, schedulers come back with ids this master never saw."""
    async with running_master() as cluster:
        scheduler = Scheduler(cluster)
        await scheduler.subscribe({"id": {"value": "from-another-master-0007"}})
        assert scheduler.framework_id == "from-another-master-0007"


async def test_update_framework_changes_roles_and_rescinds_offers() -> None:
    async with running_master() as cluster:
        await cluster.add_agent()
        scheduler = await cluster.scheduler(
            roles=["a"], capabilities=[{"type": "MULTI_ROLE"}], failover_timeout=60.0
        )
        [offer] = await scheduler.offers()
        assert offer["allocation_info"]["role"] == "a"
        info = {
            "user": "tester",
            "name": "test-framework",
            "id": {"value": scheduler.framework_id},
            "roles": ["b"],
            "capabilities": [{"type": "MULTI_ROLE"}],
            "failover_timeout": 60.0,
        }
        response = await scheduler.call(
            {"type": "UPDATE_FRAMEWORK", "update_framework": {"framework_info": info}}
        )
        assert response.status_code == 200
        rescind = await scheduler.next_event("RESCIND")
        assert rescind["rescind"]["offer_id"] == offer["id"]
        [new_offer] = await scheduler.offers()
        assert new_offer["allocation_info"]["role"] == "b"


async def test_update_framework_cannot_change_user() -> None:
    async with running_master() as cluster:
        scheduler = await cluster.scheduler()
        info = {"user": "other", "name": "n", "id": {"value": scheduler.framework_id}}
        response = await scheduler.call(
            {"type": "UPDATE_FRAMEWORK", "update_framework": {"framework_info": info}}
        )
        assert response.status_code == 400
        assert "Updating 'FrameworkInfo.user' is unsupported" in response.text


async def test_update_framework_id_mismatch_is_400() -> None:
    async with running_master() as cluster:
        scheduler = await cluster.scheduler()
        info = {"user": "tester", "name": "n", "id": {"value": "other"}}
        response = await scheduler.call(
            {"type": "UPDATE_FRAMEWORK", "update_framework": {"framework_info": info}}
        )
        assert response.status_code == 400
        assert "'framework_id' differs from 'update_framework.framework_info.id'" in response.text


async def test_roles_whitelist() -> None:
    async with running_master(roles=frozenset({"allowed"})) as cluster:
        scheduler = Scheduler(cluster)
        await scheduler.subscribe({"role": "other"}, expect_subscribed=False)
        error = await scheduler.next_event("ERROR")
        assert error["error"]["message"] == "Roles { other } are not present in master's --roles"
        ok = await cluster.scheduler(role="allowed")
        assert ok.framework_id


async def test_completed_frameworks_are_bounded() -> None:
    async with running_master(max_completed_frameworks=2) as cluster:
        ids = []
        for _ in range(3):
            scheduler = await cluster.scheduler(failover_timeout=60.0)
            await scheduler.call({"type": "TEARDOWN"})
            ids.append(scheduler.framework_id)
        assert list(cluster.master.state.completed_frameworks) == ids[1:]
