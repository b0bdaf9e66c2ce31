"""The master operator API (wire contract 4.1, 4.3, 8.6 item 8), including pymesos'
operator driver making its exact requests."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from pymesos.operator_v1 import MesosOperatorMasterDriver

from mesoslite.proto import mesos_pb2
from tests.unit.master.harness import EventReader, MasterHarness, command_task, running_master

pytestmark = pytest.mark.anyio


async def call(cluster: MasterHarness, body: dict[str, Any], path: str = "/api/v1") -> Any:
    response = await cluster.http.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json() if response.content else None


async def test_get_health_flags_version_master() -> None:
    async with running_master() as cluster:
        assert await call(cluster, {"type": "GET_HEALTH"}) == {
            "type": "GET_HEALTH",
            "get_health": {"healthy": True},
        }
        flags = await call(cluster, {"type": "GET_FLAGS"})
        names = {flag["name"] for flag in flags["get_flags"]["flags"]}
        assert {"allocation_interval", "max_agent_ping_timeouts"} <= names
        version = await call(cluster, {"type": "GET_VERSION"})
        assert version["get_version"]["version_info"]["version"] == "1.12.0"
        info = await call(cluster, {"type": "GET_MASTER"})
        assert info["get_master"]["master_info"]["id"] == cluster.master.info.id


async def test_operator_prefix_path_works() -> None:
    async with running_master() as cluster:
        answer = await call(cluster, {"type": "GET_HEALTH"}, path="/api/v1/operator")
        assert answer["get_health"]["healthy"] is True


async def test_get_state_shows_agents_frameworks_tasks() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        await scheduler.launch(offer, command_task("t1", agent.agent_id))
        await agent.expect("run_task")
        state = (await call(cluster, {"type": "GET_STATE"}))["get_state"]
        [agent_entry] = state["get_agents"]["agents"]
        assert agent_entry["agent_info"]["id"]["value"] == agent.agent_id
        assert agent_entry["pid"] == f"slave(1)@{agent.endpoint}"
        assert agent_entry["active"] is True
        [framework] = state["get_frameworks"]["frameworks"]
        assert framework["framework_info"]["id"]["value"] == scheduler.framework_id
        assert framework["connected"] is True and framework["recovered"] is False
        [task] = state["get_tasks"]["tasks"]
        assert task["state"] == "TASK_STAGING"
        # Endpoint format: both `role` and `reservations` styles present when possible.
        assert all(r["role"] == "*" for r in task["resources"])


async def test_get_metrics_and_roles_and_weights() -> None:
    async with running_master() as cluster:
        await cluster.add_agent()
        await cluster.scheduler(role="eng")
        metrics = await call(
            cluster, {"type": "GET_METRICS", "get_metrics": {"timeout": {"nanoseconds": 10**9}}}
        )
        values = {m["name"]: m.get("value") for m in metrics["get_metrics"]["metrics"]}
        assert values["master/elected"] == 1.0
        assert values["master/slaves_active"] == 1.0
        assert values["master/cpus_total"] == 4.0
        response = await cluster.http.post(
            "/api/v1",
            json={
                "type": "UPDATE_WEIGHTS",
                "update_weights": {"weight_infos": [{"role": "eng", "weight": 2.5}]},
            },
        )
        assert response.status_code == 200
        weights = await call(cluster, {"type": "GET_WEIGHTS"})
        assert weights["get_weights"]["weight_infos"] == [{"weight": 2.5, "role": "eng"}]
        roles = await call(cluster, {"type": "GET_ROLES"})
        eng = next(r for r in roles["get_roles"]["roles"] if r["name"] == "eng")
        assert eng["weight"] == 2.5 and len(eng["frameworks"]) == 1


async def test_update_weights_rejects_bad_weight() -> None:
    async with running_master() as cluster:
        response = await cluster.http.post(
            "/api/v1",
            json={
                "type": "UPDATE_WEIGHTS",
                "update_weights": {"weight_infos": [{"role": "eng", "weight": 0}]},
            },
        )
        assert response.status_code == 400


async def test_teardown() -> None:
    async with running_master() as cluster:
        scheduler = await cluster.scheduler(failover_timeout=60.0)
        response = await cluster.http.post(
            "/api/v1",
            json={
                "type": "TEARDOWN",
                "teardown": {"framework_id": {"value": scheduler.framework_id}},
            },
        )
        assert response.status_code == 200
        await scheduler.wait_closed()
        again = await cluster.http.post(
            "/api/v1",
            json={
                "type": "TEARDOWN",
                "teardown": {"framework_id": {"value": scheduler.framework_id}},
            },
        )
        assert again.status_code == 400


async def test_refused_calls_answer_with_a_reason() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        reserve = await cluster.http.post(
            "/api/v1",
            json={
                "type": "RESERVE_RESOURCES",
                "reserve_resources": {"agent_id": {"value": agent.agent_id}, "resources": []},
            },
        )
        assert reserve.status_code == 409
        assert "not supported" in reserve.text
        quota = await cluster.http.post(
            "/api/v1", json={"type": "UPDATE_QUOTA", "update_quota": {}}
        )
        assert quota.status_code == 501
        assert (await call(cluster, {"type": "GET_QUOTA"}))["get_quota"] == {"status": {}}
        missing = await cluster.http.post("/api/v1", json={"type": "TEARDOWN"})
        assert missing.status_code == 400
        assert missing.text.endswith("Expecting 'teardown' to be present")
        unknown = await cluster.http.post("/api/v1", json={"type": "UNKNOWN"})
        assert unknown.status_code == 501


async def test_deactivate_and_reactivate_agent() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        body = {"agent_id": {"value": agent.agent_id}}
        await call(cluster, {"type": "DEACTIVATE_AGENT", "deactivate_agent": body})
        rescind = await scheduler.next_event("RESCIND")
        assert rescind["rescind"]["offer_id"] == offer["id"]
        await call(cluster, {"type": "REACTIVATE_AGENT", "reactivate_agent": body})
        assert await scheduler.offers()


async def test_protobuf_answers_when_asked() -> None:
    async with running_master() as cluster:
        response = await cluster.http.post(
            "/api/v1",
            json={"type": "GET_HEALTH"},
            headers={"Accept": "application/x-protobuf"},
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-protobuf"
        from mesoslite.proto import master_pb2

        answer = master_pb2.Response.FromString(response.content)
        assert answer.get_health.healthy


async def test_subscribe_streams_events_in_order() -> None:
    async with running_master() as cluster:
        subscriber = EventReader(cluster)
        await subscriber.open("/api/v1", {"type": "SUBSCRIBE"}, {})
        assert subscriber.headers is not None
        assert subscriber.headers["transfer-encoding"] == "chunked"
        assert "mesos-stream-id" not in subscriber.headers
        first = await subscriber.next_event(skip_heartbeats=False)
        assert first["type"] == "SUBSCRIBED"
        assert first["subscribed"]["heartbeat_interval_seconds"] == 15.0
        assert (await subscriber.next_event(skip_heartbeats=False))["type"] == "HEARTBEAT"

        agent = await cluster.add_agent()
        added = await subscriber.next_event("AGENT_ADDED")
        assert added["agent_added"]["agent"]["agent_info"]["id"]["value"] == agent.agent_id
        scheduler = await cluster.scheduler()
        framework = await subscriber.next_event("FRAMEWORK_ADDED")
        assert framework["framework_added"]["framework"]["framework_info"]["id"] == {
            "value": scheduler.framework_id
        }
        [offer] = await scheduler.offers()
        await scheduler.launch(offer, command_task("t1", agent.agent_id))
        task_added = await subscriber.next_event("TASK_ADDED")
        assert task_added["task_added"]["task"]["state"] == "TASK_STAGING"
        await agent.update(scheduler.framework_id, "t1", mesos_pb2.TASK_RUNNING)
        updated = await subscriber.next_event("TASK_UPDATED")
        assert updated["task_updated"]["state"] == "TASK_RUNNING"
        assert updated["task_updated"]["framework_id"] == {"value": scheduler.framework_id}
        await scheduler.call({"type": "TEARDOWN"})
        removed = await subscriber.next_event("FRAMEWORK_REMOVED")
        assert removed["framework_removed"]["framework_info"]["id"] == {
            "value": scheduler.framework_id
        }


async def test_pymesos_operator_driver_getters() -> None:
    async with running_master() as cluster:
        await cluster.add_agent()
        # The master driver (not started: no event stream) makes the same calls.
        driver = MesosOperatorMasterDriver(cluster.base_url.removeprefix("http://"))

        def use_driver() -> dict[str, Any]:
            return {
                "health": driver.getHealth(),
                "flags": driver.getFlags(),
                "version": driver.getVersion(),
                "metrics": driver.getMetrics(10**9),
                "level": driver.getLoggingLevel(),
                "set_level": driver.setLoggingLevel(1, 10**9),
                "state": driver.getState(),
                "frameworks": driver.getFrameworks(),
                "executors": driver.getExecutors(),
                "tasks": driver.getTasks(),
            }

        answers = await anyio.to_thread.run_sync(use_driver)
        assert answers["health"]["get_health"]["healthy"] is True
        assert answers["version"]["get_version"]["version_info"]["version"] == "1.12.0"
        assert answers["set_level"] == {}
        assert answers["state"]["type"] == "GET_STATE"
        assert len(answers["state"]["get_state"]["get_agents"]["agents"]) == 1
        assert answers["tasks"]["type"] == "GET_TASKS"
