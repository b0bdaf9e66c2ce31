"""Odd but well-formed input gets a 2xx/4xx/501 answer, never a 500, and the master keeps
working afterwards."""

from __future__ import annotations

from typing import Any

import pytest

from mesoslite.proto import internal_pb2, mesos_pb2
from tests.unit.master.harness import running_master

pytestmark = pytest.mark.anyio

ODD_RESOURCES: list[dict[str, Any]] = [
    {"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}},
    {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 5, "end": 1}]}},
    {"name": "", "type": "SCALAR", "scalar": {"value": 1}},
    {"name": "cpus", "type": "SET", "set": {"item": ["a"]}},
    {
        "name": "cpus",
        "type": "SCALAR",
        "scalar": {"value": 1},
        "role": "eng",
        "reservations": [{"type": "DYNAMIC", "role": "other"}],
    },
    {
        "name": "disk",
        "type": "SCALAR",
        "scalar": {"value": 1},
        "disk": {"persistence": {"id": "v"}, "volume": {"mode": "RW", "container_path": "p"}},
    },
]


def odd_scheduler_calls(agent_id: str) -> list[dict[str, Any]]:
    task: dict[str, Any] = {"name": "t", "task_id": {"value": "t"}, "agent_id": {"value": agent_id}}
    calls: list[dict[str, Any]] = [
        {"type": "ACCEPT", "accept": {}},
        {"type": "ACCEPT", "accept": {"offer_ids": [{"value": "x"}, {"value": "x"}]}},
        {"type": "DECLINE", "decline": {"offer_ids": [{"value": "x"}]}},
        {"type": "REVIVE", "revive": {"roles": ["/bad", "not-mine"]}},
        {"type": "SUPPRESS", "suppress": {"roles": ["", "*"]}},
        {"type": "KILL", "kill": {"task_id": {"value": "nope"}, "agent_id": {"value": "x"}}},
        {
            "type": "SHUTDOWN",
            "shutdown": {"executor_id": {"value": "e"}, "agent_id": {"value": "x"}},
        },
        {"type": "RECONCILE", "reconcile": {"tasks": [{"task_id": {"value": "a/b"}}]}},
        {
            "type": "RECONCILE_OPERATIONS",
            "reconcile_operations": {
                "operations": [{"operation_id": {"value": "o"}, "agent_id": {"value": agent_id}}]
            },
        },
        {
            "type": "MESSAGE",
            "message": {"agent_id": {"value": "x"}, "executor_id": {"value": "e"}, "data": ""},
        },
        {"type": "REQUEST", "request": {"requests": [{}]}},
        {
            "type": "ACCEPT_INVERSE_OFFERS",
            "accept_inverse_offers": {"inverse_offer_ids": [{"value": "i"}]},
        },
        {"type": "DECLINE_INVERSE_OFFERS", "decline_inverse_offers": {}},
        {
            "type": "ACKNOWLEDGE_OPERATION_STATUS",
            "acknowledge_operation_status": {
                "agent_id": {"value": agent_id},
                "uuid": "AAAAAAAAAAAAAAAAAAAAAA==",
                "operation_id": {"value": "o"},
            },
        },
    ]
    for resource in ODD_RESOURCES:
        calls.append(
            {
                "type": "ACCEPT",
                "accept": {
                    "offer_ids": [{"value": "nope"}],
                    "operations": [
                        {
                            "type": "LAUNCH",
                            "launch": {
                                "task_infos": [
                                    {**task, "resources": [resource], "command": {"value": "x"}}
                                ]
                            },
                        },
                        {"type": "RESERVE", "reserve": {"resources": [resource]}},
                        {"type": "UNKNOWN"},
                    ],
                },
            }
        )
    return calls


ODD_OPERATOR_CALLS: list[dict[str, Any]] = [
    {"type": "LIST_FILES", "list_files": {"path": ""}},
    {"type": "LIST_FILES", "list_files": {"path": "/../../etc"}},
    {"type": "READ_FILE", "read_file": {"path": "/master/log", "offset": 10**15}},
    {
        "type": "SET_LOGGING_LEVEL",
        "set_logging_level": {"level": 3, "duration": {"nanoseconds": 1}},
    },
    {"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"weight": 1.0}]}},
    {
        "type": "UPDATE_WEIGHTS",
        "update_weights": {"weight_infos": [{"role": "a", "weight": "Infinity"}]},
    },
    {"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": {"value": "x"}}},
    {"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": "x"}}},
    {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": "x"}}},
    {"type": "START_MAINTENANCE", "start_maintenance": {"machines": [{"hostname": "h"}]}},
    {"type": "GET_OPERATIONS"},
    {"type": "GET_MAINTENANCE_STATUS"},
    {"type": "GET_MAINTENANCE_SCHEDULE"},
    {"type": "GET_EXECUTORS"},
    {"type": "GET_ROLES"},
    *[
        {"type": kind, kind.lower(): {"agent_id": {"value": "x"}, "resources": [resource]}}
        for kind in ("RESERVE_RESOURCES", "UNRESERVE_RESOURCES")
        for resource in ODD_RESOURCES
    ],
]


async def test_odd_calls_never_fail_with_500() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        for body in odd_scheduler_calls(agent.agent_id):
            response = await scheduler.call(body)
            assert response.status_code < 500 or response.status_code == 501, (body, response.text)
        for body in ODD_OPERATOR_CALLS:
            response = await cluster.http.post("/api/v1", json=body)
            assert response.status_code < 500 or response.status_code == 501, (body, response.text)
        # Still serving.
        assert (await scheduler.call({"type": "REVIVE"})).status_code == 202
        assert await scheduler.offers()


async def test_odd_agent_messages_are_survived() -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        odd = internal_pb2.AgentToMaster()
        odd.exited_executor.agent_id.value = agent.agent_id
        odd.exited_executor.framework_id.value = "nope"
        odd.exited_executor.executor_id.value = "nope"
        odd.exited_executor.status = 0
        await agent.send(odd)
        await agent.send(internal_pb2.AgentToMaster())  # an empty envelope
        await agent.update("unknown-framework", "t", mesos_pb2.TASK_RUNNING)
        await agent.update(scheduler.framework_id, "unknown-task", mesos_pb2.TASK_RUNNING)
        update = await scheduler.next_event("UPDATE")
        assert update["update"]["status"]["task_id"] == {"value": "unknown-task"}
        assert agent.agent_id in cluster.master.state.agents


@pytest.mark.parametrize("resource", ODD_RESOURCES)
async def test_odd_task_resources_are_task_errors(resource: dict[str, Any]) -> None:
    async with running_master() as cluster:
        agent = await cluster.add_agent()
        scheduler = await cluster.scheduler()
        [offer] = await scheduler.offers()
        task = {
            "name": "t",
            "task_id": {"value": "t"},
            "agent_id": {"value": agent.agent_id},
            "resources": [resource],
            "command": {"value": "x"},
        }
        response = await scheduler.launch(offer, task)
        assert response.status_code == 202
        status = (await scheduler.next_event("UPDATE"))["update"]["status"]
        assert status["state"] == "TASK_ERROR"
        assert status["message"]
