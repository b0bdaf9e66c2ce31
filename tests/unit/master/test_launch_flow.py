"""The first milestone, end to end over HTTP: an agent registers, a framework
subscribes, gets offers, launches a task, and sees its updates through to completion."""

from __future__ import annotations

import base64

import pytest

from tests.unit.master.harness import command_task, running_master

pytestmark = pytest.mark.anyio


async def test_register_subscribe_offer_launch_finish() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        assert agent.agent_id.startswith(cluster.master.info.id + "-S")

        scheduler = await cluster.scheduler()
        assert scheduler.status_code == 200
        assert scheduler.headers is not None
        assert scheduler.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in scheduler.headers
        assert scheduler.stream_id
        assert scheduler.framework_id == cluster.master.info.id + "-0000"

        [offer] = await scheduler.offers()
        assert offer["agent_id"]["value"] == agent.agent_id
        assert offer["url"]["path"] == "/slave(1)"
        assert offer["allocation_info"] == {"role": "*"}
        names = {r["name"] for r in offer["resources"]}
        assert names == {"cpus", "mem", "disk", "ports"}
        assert all(r["allocation_info"] == {"role": "*"} for r in offer["resources"])
        assert all(r["role"] == "*" for r in offer["resources"])

        response = await scheduler.launch(offer, command_task("t1", agent.agent_id))
        assert response.status_code == 202
        run = await agent.expect("run_task")
        assert run.task.task_id.value == "t1"
        assert run.role == "*"
        assert run.framework_info.id.value == scheduler.framework_id

        uuid = await agent.update(scheduler.framework_id, "t1", 1)  # TASK_RUNNING
        update = await scheduler.next_event("UPDATE")
        status = update["update"]["status"]
        assert status["state"] == "TASK_RUNNING"
        assert base64.b64decode(status["uuid"]) == uuid
        assert status["agent_id"]["value"] == agent.agent_id

        assert (await scheduler.acknowledge(status)).status_code == 202
        ack = await agent.expect("status_update_acknowledgement")
        assert ack.uuid == uuid and ack.task_id.value == "t1"

        uuid = await agent.update(scheduler.framework_id, "t1", 2)  # TASK_FINISHED
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == "TASK_FINISHED"
        await scheduler.acknowledge(status)
        await agent.expect("status_update_acknowledgement")

        tasks = await cluster.get_json("/master/tasks")
        [task] = tasks["tasks"]
        assert task["id"] == "t1" and task["state"] == "TASK_FINISHED"
        framework = cluster.master.state.frameworks[scheduler.framework_id]
        assert not framework.tasks and [t.task_id.value for t in framework.completed_tasks] == [
            "t1"
        ]
