"""ACCEPT validation: offer ids, tasks, task groups (Mesos' order and messages)."""

from __future__ import annotations

from typing import Any

import pytest

from mesoslite.master.agent_link import AgentLink
from mesoslite.master.state import Agent, Framework
from mesoslite.master.task_validation import (
    validate_executor_info,
    validate_offer_ids,
    validate_task,
    validate_task_group,
)
from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources, parse_resources
from mesoslite.transport.channel import memory_channel_pair
from mesoslite.wire.json_codec import from_json

AGENT_ID = "m-S0"
FRAMEWORK_ID = "m-0000"


def make_framework() -> Framework:
    info = mesos_pb2.FrameworkInfo(user="u", name="n")
    info.id.value = FRAMEWORK_ID
    return Framework(info, registered_time=0.0, max_completed_tasks=10, max_unreachable_tasks=10)


def make_agent() -> Agent:
    channel, _ = memory_channel_pair("master", "agent")  # type: ignore[var-annotated]
    info = mesos_pb2.AgentInfo(hostname="h")
    info.id.value = AGENT_ID
    return Agent(
        info,
        endpoint="127.0.0.1:5051",
        version="1.12.0",
        capabilities=[],
        link=AgentLink(channel),
        registered_time=0.0,
    )


def allocated(text: str) -> Resources:
    return Resources(parse_resources(text).with_allocation_role("*"))


def resources(cpus: float = 1, mem: float = 64) -> list[dict[str, Any]]:
    return [
        {
            "name": "cpus",
            "type": "SCALAR",
            "scalar": {"value": cpus},
            "allocation_info": {"role": "*"},
        },
        {
            "name": "mem",
            "type": "SCALAR",
            "scalar": {"value": mem},
            "allocation_info": {"role": "*"},
        },
    ]


def task(**overrides: Any) -> mesos_pb2.TaskInfo:
    body: dict[str, Any] = {
        "name": "t",
        "task_id": {"value": "t1"},
        "agent_id": {"value": AGENT_ID},
        "resources": resources(),
        "command": {"value": "true"},
    }
    body.update(overrides)
    return from_json({k: v for k, v in body.items() if v is not None}, mesos_pb2.TaskInfo)


def executor(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "executor_id": {"value": "e1"},
        "framework_id": {"value": FRAMEWORK_ID},
        "command": {"value": "run-executor"},
        "resources": resources(0.1, 32),
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


OFFERED = "cpus:4;mem:1024;disk:1000"


def check(info: mesos_pb2.TaskInfo, offered: str = OFFERED) -> str | None:
    return validate_task(
        info, framework=make_framework(), agent=make_agent(), offered=allocated(offered)
    )


def test_valid_command_task() -> None:
    assert check(task()) is None


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"task_id": {"value": "a/b"}}, "'a/b' contains invalid characters"),
        (
            {"agent_id": {"value": "other"}},
            f"Task uses invalid agent other while agent {AGENT_ID} is expected",
        ),
        (
            {"kill_policy": {"grace_period": {"nanoseconds": -1}}},
            "Task's 'kill_policy.grace_period' must be non-negative",
        ),
        (
            {"max_completion_time": {"nanoseconds": -1}},
            "Task's `max_completion_time` must be non-negative",
        ),
        ({"resources": None}, "Task uses no resources"),
        ({"health_check": {}}, "Task uses invalid health check: HealthCheck must specify 'type'"),
        (
            {"health_check": {"type": "HTTP"}},
            "Task uses invalid health check: Expecting 'http' to be set for HTTP health check",
        ),
        (
            {"check": {"type": "TCP"}},
            "Task uses invalid check: Expecting 'tcp' to be set for TCP check",
        ),
        (
            {"command": None},
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
        ),
        (
            {"executor": executor()},
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
        ),
        (
            {"command": {"value": "x", "environment": {"variables": [{"name": "A"}]}}},
            "Task's `CommandInfo` is invalid: Environment variable 'A' of type 'VALUE' must have a"
            " value set",
        ),
        (
            {"resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}}]},
            "Invalid task resources: The resources are not allocated to a role",
        ),
        (
            {"limits": {"cpus": {"value": 2}}},
            "Agent is not capable of handling task resource limits",
        ),
    ],
)
def test_invalid_tasks(overrides: dict[str, Any], error: str) -> None:
    assert check(task(**overrides)) == error


def test_task_needs_enough_offered() -> None:
    error = check(task(resources=resources(cpus=8)))
    assert error is not None
    assert "required by task and its executor is more than available" in error


def test_unique_task_id_against_live_and_unreachable_tasks() -> None:
    framework = make_framework()
    framework.tasks["t1"] = mesos_pb2.Task()
    error = validate_task(
        task(), framework=framework, agent=make_agent(), offered=allocated(OFFERED)
    )
    assert error == "Task has duplicate ID: t1"
    framework = make_framework()
    framework.unreachable_tasks["t1"] = mesos_pb2.Task()
    error = validate_task(
        task(), framework=framework, agent=make_agent(), offered=allocated(OFFERED)
    )
    assert error == "Task reuses the ID of an unreachable task: t1"


def test_custom_executor_rules() -> None:
    assert check(task(command=None, executor=executor())) is None
    assert check(task(command=None, executor=executor(type="DEFAULT", command=None))) == (
        "'ExecutorInfo.type' must be 'CUSTOM'"
    )
    assert check(task(command=None, executor=executor(command=None))) == (
        "'ExecutorInfo.command' must be set"
    )
    assert check(task(command=None, executor=executor(framework_id={"value": "x"}))) == (
        f"ExecutorInfo has an invalid FrameworkID (Actual: x vs Expected: {FRAMEWORK_ID})"
    )


def test_executor_resources_count_only_when_new() -> None:
    info = task(command=None, executor=executor(resources=resources(1, 32)))
    framework, agent = make_framework(), make_agent()
    tight = allocated("cpus:1;mem:64")
    error = validate_task(info, framework=framework, agent=agent, offered=tight)
    assert error is not None and "more than available" in error
    agent.add_executor(FRAMEWORK_ID, info.executor)
    assert validate_task(info, framework=framework, agent=agent, offered=tight) is None


def test_incompatible_executor_info() -> None:
    info = task(command=None, executor=executor())
    agent = make_agent()
    other = mesos_pb2.ExecutorInfo()
    other.CopyFrom(info.executor)
    other.name = "different"
    agent.add_executor(FRAMEWORK_ID, other)
    error = validate_task(info, framework=make_framework(), agent=agent, offered=allocated(OFFERED))
    assert error is not None
    assert error.startswith("ExecutorInfo is not compatible with existing ExecutorInfo")


def group_executor(**overrides: Any) -> mesos_pb2.ExecutorInfo:
    body = executor(type="DEFAULT", command=None)
    body["resources"] = [
        *resources(0.1, 32),
        {
            "name": "disk",
            "type": "SCALAR",
            "scalar": {"value": 10},
            "allocation_info": {"role": "*"},
        },
    ]
    body.update(overrides)
    return from_json({k: v for k, v in body.items() if v is not None}, mesos_pb2.ExecutorInfo)


def group(
    *infos: mesos_pb2.TaskInfo, executor_info: mesos_pb2.ExecutorInfo
) -> mesos_pb2.TaskGroupInfo:
    task_group = mesos_pb2.TaskGroupInfo()
    for info in infos:
        member = task_group.tasks.add()
        member.CopyFrom(info)
        member.ClearField("command")
        member.executor.CopyFrom(executor_info)
    return task_group


def check_group(
    task_group: mesos_pb2.TaskGroupInfo, executor_info: mesos_pb2.ExecutorInfo
) -> str | None:
    return validate_task_group(
        task_group,
        executor_info,
        framework=make_framework(),
        agent=make_agent(),
        offered=allocated(OFFERED),
    )


def test_valid_task_group() -> None:
    executor_info = group_executor()
    assert (
        check_group(
            group(task(), task(task_id={"value": "t2"}), executor_info=executor_info), executor_info
        )
        is None
    )


def test_task_group_executor_minimums() -> None:
    small = group_executor(resources=resources(0.001, 32))
    error = check_group(group(task(), executor_info=small), small)
    assert error == "Executor 'e1' uses less CPUs (0.001) than the minimum required (0.01)"
    no_disk = group_executor(resources=resources(0.1, 32))
    assert (
        check_group(group(task(), executor_info=no_disk), no_disk) == "Executor 'e1' uses no disk"
    )


def test_task_group_needs_executor_type() -> None:
    untyped = group_executor(type=None, command={"value": "x"})
    assert (
        check_group(group(task(), executor_info=untyped), untyped)
        == "'ExecutorInfo.type' must be set"
    )


def test_task_group_task_errors_name_the_task() -> None:
    executor_info = group_executor()
    bad = task(kill_policy={"grace_period": {"nanoseconds": -5}})
    assert check_group(group(bad, executor_info=executor_info), executor_info) == (
        "Task 't1' is invalid: Task's 'kill_policy.grace_period' must be non-negative"
    )


def test_executor_info_validation() -> None:
    info = from_json({"executor_id": {"value": "e"}, "type": "CUSTOM"}, mesos_pb2.ExecutorInfo)
    assert (
        validate_executor_info(info) == "'ExecutorInfo.command' must be set for 'CUSTOM' executor"
    )


def offer(
    offer_id: str, framework_id: str = FRAMEWORK_ID, agent_id: str = AGENT_ID, role: str = "*"
) -> mesos_pb2.Offer:
    message = mesos_pb2.Offer(hostname="h")
    message.id.value = offer_id
    message.framework_id.value = framework_id
    message.agent_id.value = agent_id
    message.allocation_info.role = role
    return message


def test_offer_id_validation_order() -> None:
    offers = {
        "o1": offer("o1"),
        "o2": offer("o2", framework_id="other"),
        "o3": offer("o3", role="eng"),
        "o4": offer("o4", agent_id="m-S9"),
    }
    assert (
        validate_offer_ids(["o1", "o1"], offers, FRAMEWORK_ID) == "Duplicate offer o1 in offer list"
    )
    assert validate_offer_ids(["o1", "zz"], offers, FRAMEWORK_ID) == "Offer zz is no longer valid"
    assert validate_offer_ids(["o1", "o2"], offers, FRAMEWORK_ID) == (
        f"Offer o2 has invalid framework other while framework {FRAMEWORK_ID} is expected"
    )
    assert validate_offer_ids(["o1", "o3"], offers, FRAMEWORK_ID) == (
        "Aggregated offers must be allocated to the same role. Offer o3 uses role 'eng but"
        " another is using role '*"
    )
    assert validate_offer_ids(["o1", "o4"], offers, FRAMEWORK_ID) == (
        "Aggregated offers must belong to one single agent. Offer o4 uses agent m-S9"
        f" and agent {AGENT_ID}"
    )
    assert validate_offer_ids(["o1"], offers, FRAMEWORK_ID) is None
