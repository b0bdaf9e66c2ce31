"""Legacy JSON endpoints in their legacy shapes (wire contract 4.4), and the paths
tools use to reach them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesoslite.proto import mesos_pb2
from tests.unit.master.harness import MasterHarness, command_task, running_master

pytestmark = pytest.mark.anyio


async def cluster_with_task(cluster: MasterHarness) -> str:
    agent = await cluster.add_agent(resources="cpus:4;mem:4096;disk:100;ports:[31000-31005]")
    scheduler = await cluster.scheduler(principal="p", labels={"labels": [{"key": "k"}]})
    [offer] = await scheduler.offers()
    await scheduler.launch(offer, command_task("t1", agent.agent_id))
    await agent.expect("run_task")
    await agent.update(scheduler.framework_id, "t1", mesos_pb2.TASK_RUNNING)
    await scheduler.next_event("UPDATE")
    return scheduler.framework_id


async def test_version_is_numeric_and_unauthenticated() -> None:
    async with running_master() as cluster:
        version = await cluster.get_json("/version")
        assert version["version"] == "1.12.0"
        assert tuple(int(n) for n in version["version"].split(".")) == (1, 12, 0)


async def test_health_and_redirect() -> None:
    async with running_master() as cluster:
        health = await cluster.http.get("/master/health")
        assert health.status_code == 200 and health.content == b""
        for path in ("/redirect", "/master/redirect"):
            redirect = await cluster.http.get(path)
            assert redirect.status_code == 307
            assert redirect.headers["location"] == f"//127.0.0.1:{cluster.master.info.port}"
        assert (await cluster.http.get("/redirect/x")).status_code == 404


async def test_slaves_shape() -> None:
    async with running_master() as cluster:
        await cluster_with_task(cluster)
        for path in ("/master/slaves", "/slaves", "/master/slaves/", "/master/slaves.json"):
            body = await cluster.get_json(path)
            [agent] = body["slaves"]
            assert agent["pid"] == f"slave(1)@{cluster.agents[0].endpoint}"
            assert agent["resources"] == {
                "cpus": 4.0,
                "gpus": 0.0,
                "mem": 4096.0,
                "disk": 100.0,
                "ports": "[31000-31005]",
            }
            assert agent["used_resources"]["cpus"] == 1.0
            assert agent["active"] is True
            assert body["recovered_slaves"] == []


async def test_frameworks_and_tasks_shapes() -> None:
    async with running_master() as cluster:
        framework_id = await cluster_with_task(cluster)
        body = await cluster.get_json("/master/frameworks/")
        [framework] = body["frameworks"]
        assert framework["id"] == framework_id
        assert framework["role"] == "*" and "roles" not in framework
        assert framework["principal"] == "p"
        assert framework["labels"] == [{"key": "k"}]
        [task] = framework["tasks"]
        assert task["id"] == "t1"
        assert task["slave_id"] == cluster.agents[0].agent_id
        assert task["executor_id"] == ""
        assert task["state"] == "TASK_RUNNING"
        assert [s["state"] for s in task["statuses"]] == ["TASK_RUNNING"]
        assert body["completed_frameworks"] == [] and body["unregistered_frameworks"] == []
        tasks = await cluster.get_json("/tasks", limit=10)
        assert [t["id"] for t in tasks["tasks"]] == ["t1"]
        assert (await cluster.get_json("/tasks", framework_id="other"))["tasks"] == []


async def test_state_and_state_summary() -> None:
    async with running_master() as cluster:
        await cluster_with_task(cluster)
        state = await cluster.get_json("/master/state")
        master = cluster.master
        assert state["id"] == master.info.id
        assert state["pid"] == master.info.pid == state["leader"]
        assert state["leader_info"]["hostname"] == "127.0.0.1"
        assert state["activated_slaves"] == 1
        assert len(state["slaves"]) == 1 and len(state["frameworks"]) == 1
        assert state["capabilities"] == ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"]
        assert state["flags"]["max_agent_ping_timeouts"] == "5"
        summary = await cluster.get_json("/master/state-summary")
        assert summary["slaves"][0]["TASK_RUNNING"] == 1
        assert summary["frameworks"][0]["TASK_RUNNING"] == 1


async def test_jsonp() -> None:
    async with running_master() as cluster:
        response = await cluster.http.get("/flags", params={"jsonp": "cb"})
        assert response.status_code == 200
        assert response.text.startswith("cb({") and response.text.endswith(");")


async def test_metrics_snapshot_and_roles() -> None:
    async with running_master() as cluster:
        await cluster_with_task(cluster)
        metrics = await cluster.get_json("/metrics/snapshot")
        assert metrics["master/tasks_running"] == 1.0
        assert metrics["master/frameworks_active"] == 1.0
        assert metrics["master/cpus_used"] == 1.0
        roles = await cluster.get_json("/master/roles")
        [star] = roles["roles"]
        assert star["name"] == "*" and star["allocated"]["cpus"] == 1.0


async def test_teardown_form() -> None:
    async with running_master() as cluster:
        scheduler = await cluster.scheduler(failover_timeout=60.0)
        bad = await cluster.http.post(
            "/master/teardown",
            content=b"frameworkId=nope",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert bad.status_code == 400
        ok = await cluster.http.post(
            "/master/teardown",
            content=f"frameworkId={scheduler.framework_id}".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert ok.status_code == 200
        assert scheduler.framework_id in cluster.master.state.completed_frameworks


async def test_files_serve_the_master_log(tmp_path: Path) -> None:
    log = tmp_path / "mesoslite-master.log"
    log.write_text("line one\nline two\n")
    async with running_master(log_file=log) as cluster:
        debug = await cluster.get_json("/files/debug")
        assert debug == {"/master/log": str(log)}
        listing = await cluster.get_json("/files/browse", path="/master/log")
        assert listing[0]["path"] == "/master/log" and listing[0]["mode"].startswith("-rw")
        size = await cluster.get_json("/files/read", path="/master/log", offset=-1)
        assert size == {"offset": 18, "data": ""}
        read = await cluster.get_json("/files/read", path="/master/log", offset=5, length=3)
        assert read == {"offset": 5, "data": "one"}
        download = await cluster.http.get("/files/download", params={"path": "/master/log"})
        assert download.content == b"line one\nline two\n"
        missing = await cluster.http.get("/files/read", params={"path": "/nope", "offset": 0})
        assert missing.status_code == 404
        no_path = await cluster.http.get("/files/browse")
        assert no_path.status_code == 400


async def test_weights_endpoint() -> None:
    async with running_master() as cluster:
        response = await cluster.http.put("/weights", json=[{"role": "eng", "weight": 3.0}])
        assert response.status_code == 200
        assert await cluster.get_json("/weights") == [{"weight": 3.0, "role": "eng"}]
        bad = await cluster.http.put("/weights", content=b"{")
        assert bad.status_code == 400


async def test_wrong_method_and_unknown_path() -> None:
    async with running_master() as cluster:
        assert (await cluster.http.post("/master/state")).status_code == 405
        assert (await cluster.http.get("/no/such/path")).status_code == 404
