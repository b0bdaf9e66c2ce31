"""Tasks through the master (wire contract 2.7-2.12): launch validation, kills,
reconciliation, task groups, executors, messages."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from mesoslite.proto import internal_pb2, mesos_pb2
from tests.unit.master.harness import FakeAgent, Scheduler, command_task, running_master

pytestmark = pytest.mark.anyio


def custom_executor(executor_id: str = "exec1") -> dict[str, Any]:
    return {
        "executor_id": {"value": executor_id},
        "command": {"value": "python -m my.executor"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
        ],
    }


async def start_task(
    scheduler: Scheduler,
    agent: FakeAgent,
    task: dict[str, Any],
    state: int = mesos_pb2.TASK_RUNNING,
) -> None:
    [offer] = await scheduler.offers()
    await scheduler.launch(offer, task, filters={"refuse_seconds": 0})
    await agent.expect("run_task")
    await agent.update(scheduler.framework_id, task["task_id"]["value"], state)
    await scheduler.next_event("UPDATE")


async def test_task_without_command_or_executor_is_task_error() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        task = command_task("t1", agent.agent_id)
        del task["command"]
        await scheduler.launch(offer, task)
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == "TASK_ERROR"
        assert status["reason"] == "REASON_TASK_INVALID"
        assert status["source"] == "SOURCE_MASTER"
        assert status["message"] == (
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
        )
        assert "uuid" not in status
        assert not agent.pending()


async def test_task_asking_too_much_is_task_error_and_resources_return() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent(resources="cpus:1;mem:128")
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        await scheduler.launch(
            offer, command_task("t1", agent.agent_id, cpus=2), filters={"refuse_seconds": 0}
        )
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == "TASK_ERROR"
        assert "is more than available" in status["message"]
        assert await scheduler.offers()


async def test_duplicate_task_id_is_task_error() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        await scheduler.launch(
            offer,
            command_task("same", agent.agent_id),
            command_task("same", agent.agent_id),
        )
        await agent.expect("run_task")
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == "TASK_ERROR"
        assert status["message"] == "Task has duplicate ID: same"


async def test_wrong_agent_id_is_task_error() -> None:
    async with running_master() as cluster:
        await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        await scheduler.launch(offer, command_task("t1", "elsewhere"))
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["message"].startswith("Task uses invalid agent elsewhere while agent ")


async def test_kill_known_task_is_sent_to_agent() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        await start_task(scheduler, agent, command_task("t1", agent.agent_id))
        response = await scheduler.call(
            {
                "type": "KILL",
                "kill": {
                    "task_id": {"value": "t1"},
                    "kill_policy": {"grace_period": {"nanoseconds": 1000}},
                },
            }
        )
        assert response.status_code == 202
        kill = await agent.expect("kill_task")
        assert kill.task_id.value == "t1"
        assert kill.framework_id.value == scheduler.framework_id
        assert kill.kill_policy.grace_period.nanoseconds == 1000


@pytest.mark.parametrize(
    ("capabilities", "expected"),
    [([], "TASK_LOST"), ([{"type": "PARTITION_AWARE"}], "TASK_UNKNOWN")],
)
async def test_kill_unknown_task_answers_like_reconciliation(
    capabilities: list[dict[str, str]], expected: str
) -> None:
    async with running_master() as cluster:
        scheduler = await cluster.scheduler(capabilities=capabilities)
        await scheduler.call({"type": "KILL", "kill": {"task_id": {"value": "ghost"}}})
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == expected
        assert status["reason"] == "REASON_RECONCILIATION"
        assert "uuid" not in status


async def test_implicit_reconciliation_reports_every_task() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        await start_task(scheduler, agent, command_task("t1", agent.agent_id))
        await scheduler.call({"type": "RECONCILE", "reconcile": {}})
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["task_id"] == {"value": "t1"}
        assert status["state"] == "TASK_RUNNING"
        assert status["reason"] == "REASON_RECONCILIATION"
        assert status["message"] == "Reconciliation: Latest task state"
        assert status["source"] == "SOURCE_MASTER"
        assert status["agent_id"] == {"value": agent.agent_id}
        assert "uuid" not in status


@pytest.mark.parametrize(
    ("capabilities", "agent_known", "expected"),
    [
        ([], True, "TASK_LOST"),
        ([{"type": "PARTITION_AWARE"}], True, "TASK_GONE"),
        ([{"type": "PARTITION_AWARE"}], False, "TASK_UNKNOWN"),
    ],
)
async def test_explicit_reconciliation_of_unknown_task(
    capabilities: list[dict[str, str]], agent_known: bool, expected: str
) -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler(capabilities=capabilities)
        agent_id = agent.agent_id if agent_known else "unknown-agent"
        await scheduler.call(
            {
                "type": "RECONCILE",
                "reconcile": {
                    "tasks": [{"task_id": {"value": "ghost"}, "agent_id": {"value": agent_id}}]
                },
            }
        )
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == expected
        assert status["reason"] == "REASON_RECONCILIATION"
        assert status["agent_id"] == {"value": agent_id}


async def test_status_updates_fill_executor_id_and_drop_data_from_history() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        task = command_task("t1", agent.agent_id)
        del task["command"]
        task["executor"] = custom_executor()
        [offer] = await scheduler.offers()
        await scheduler.launch(offer, task)
        await agent.expect("run_task")
        await agent.update(scheduler.framework_id, "t1", mesos_pb2.TASK_RUNNING, data=b"payload")
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["executor_id"] == {"value": "exec1"}
        assert base64.b64decode(status["data"]) == b"payload"
        stored = cluster.master.state.frameworks[scheduler.framework_id].tasks["t1"]
        assert not stored.statuses[-1].HasField("data")


async def test_state_changes_after_terminal_are_ignored() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        await start_task(
            scheduler, agent, command_task("t1", agent.agent_id), mesos_pb2.TASK_FAILED
        )
        await agent.update(scheduler.framework_id, "t1", mesos_pb2.TASK_RUNNING)
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        # Forwarded (the agent needs its acknowledgement) but the task stays failed.
        assert status["state"] == "TASK_RUNNING"
        task = cluster.master.state.frameworks[scheduler.framework_id].tasks["t1"]
        assert task.state == mesos_pb2.TASK_FAILED


async def test_custom_executor_is_tracked_offered_and_reported_on_exit() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        task = command_task("t1", agent.agent_id)
        del task["command"]
        task["executor"] = custom_executor()
        await start_task(scheduler, agent, task)
        [offer] = await scheduler.offers()
        assert offer["executor_ids"] == [{"value": "exec1"}]

        exited = internal_pb2.AgentToMaster()
        body = exited.exited_executor
        body.agent_id.value = agent.agent_id
        body.framework_id.value = scheduler.framework_id
        body.executor_id.value = "exec1"
        body.status = 9
        await agent.send(exited)
        failure = await scheduler.next_event("FAILURE")
        assert failure["failure"] == {
            "agent_id": {"value": agent.agent_id},
            "executor_id": {"value": "exec1"},
            "status": 9,
        }
        assert not cluster.master.state.agents[agent.agent_id].executors


async def test_messages_both_ways() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        data = base64.b64encode(b"hello").decode()
        response = await scheduler.call(
            {
                "type": "MESSAGE",
                "message": {
                    "agent_id": {"value": agent.agent_id},
                    "executor_id": {"value": "exec1"},
                    "data": data,
                },
            }
        )
        assert response.status_code == 202
        to_executor = await agent.expect("framework_to_executor")
        assert to_executor.data == b"hello" and to_executor.executor_id.value == "exec1"

        from_executor = internal_pb2.AgentToMaster()
        body = from_executor.executor_to_framework
        body.agent_id.value = agent.agent_id
        body.framework_id.value = scheduler.framework_id
        body.executor_id.value = "exec1"
        body.data = b"world"
        await agent.send(from_executor)
        event = await scheduler.next_event("MESSAGE")
        assert base64.b64decode(event["message"]["data"]) == b"world"
        assert event["message"]["agent_id"] == {"value": agent.agent_id}


async def test_shutdown_executor_goes_to_agent() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        await scheduler.call(
            {
                "type": "SHUTDOWN",
                "shutdown": {
                    "executor_id": {"value": "exec1"},
                    "agent_id": {"value": agent.agent_id},
                },
            }
        )
        shutdown = await agent.expect("shutdown_executor")
        assert shutdown.executor_id.value == "exec1"


async def test_launch_group_is_delivered_whole() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        executor = {
            "executor_id": {"value": "default"},
            "type": "DEFAULT",
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
                {"name": "disk", "type": "SCALAR", "scalar": {"value": 32}},
            ],
        }
        tasks = []
        for name in ("a", "b"):
            task = command_task(name, agent.agent_id, cpus=0.5, mem=64)
            del task["command"]
            tasks.append(task)
        response = await scheduler.call(
            {
                "type": "ACCEPT",
                "accept": {
                    "offer_ids": [offer["id"]],
                    "operations": [
                        {
                            "type": "LAUNCH_GROUP",
                            "launch_group": {
                                "executor": executor,
                                "task_group": {"tasks": tasks},
                            },
                        }
                    ],
                },
            }
        )
        assert response.status_code == 202
        group = await agent.expect("run_task_group")
        assert [t.task_id.value for t in group.task_group.tasks] == ["a", "b"]
        assert group.executor_info.framework_id.value == scheduler.framework_id
        assert all(t.executor.executor_id.value == "default" for t in group.task_group.tasks)
        framework = cluster.master.state.frameworks[scheduler.framework_id]
        assert set(framework.tasks) == {"a", "b"}


async def test_launch_group_with_small_executor_is_refused_whole() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        executor = {"executor_id": {"value": "default"}, "type": "DEFAULT"}
        task = command_task("a", agent.agent_id)
        del task["command"]
        await scheduler.call(
            {
                "type": "ACCEPT",
                "accept": {
                    "offer_ids": [offer["id"]],
                    "operations": [
                        {
                            "type": "LAUNCH_GROUP",
                            "launch_group": {"executor": executor, "task_group": {"tasks": [task]}},
                        }
                    ],
                },
            }
        )
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == "TASK_ERROR"
        assert status["reason"] == "REASON_TASK_GROUP_INVALID"
        assert "uses less CPUs (None) than the minimum required (0.01)" in status["message"]


async def test_acknowledgement_for_unknown_agent_is_dropped() -> None:
    async with running_master() as cluster:
        scheduler = await cluster.scheduler()
        response = await scheduler.acknowledge(
            {
                "agent_id": {"value": "nope"},
                "task_id": {"value": "t"},
                "uuid": base64.b64encode(b"0123456789abcdef").decode(),
            }
        )
        assert response.status_code == 202


async def test_reconciliation_is_silent_about_recovered_agents() -> None:
    """After a failover, a task that may be on an agent the registry admitted but that
    has not re-registered yet gets no answer (the scheduler must ask again later); an
    unknown agent still gets one."""
    async with running_master() as cluster:
        cluster.master.state.recovered_agents["recovered-agent"] = mesos_pb2.AgentInfo(
            hostname="elsewhere"
        )
        scheduler = await cluster.scheduler()
        tasks = [
            {"task_id": {"value": "maybe-there"}, "agent_id": {"value": "recovered-agent"}},
            {"task_id": {"value": "no-agent-named"}},
            {"task_id": {"value": "ghost"}, "agent_id": {"value": "unknown-agent"}},
        ]
        await scheduler.call({"type": "RECONCILE", "reconcile": {"tasks": tasks}})
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["task_id"] == {"value": "ghost"}
        assert status["state"] == "TASK_LOST"
        slaves = (await cluster.http.get("/master/slaves")).json()
        assert [agent["id"] for agent in slaves["recovered_slaves"]] == ["recovered-agent"]
