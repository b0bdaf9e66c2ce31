"""Containers of tasks launched by a scheduler: the default executor's tasks are nested
containers inside the executor's container (which runs the pause program) and share its
namespaces and cgroups as Mesos' do; a task launched with a TTY can be attached to."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from mesoslite.client.scheduler import SchedulerClient
from mesoslite.proto import mesos_pb2, scheduler_pb2
from mesoslite.runtime.pause import PAUSE_PROGRAM_NAME
from tests.support.up_node import UpNode

from .agent_api import AgentApi, container_id, stdin_record

pytestmark = pytest.mark.anyio

_TS = mesos_pb2.TaskState
MB = 1024 * 1024


def _scalar(name: str, value: float, role: str) -> mesos_pb2.Resource:
    resource = mesos_pb2.Resource(name=name, type=mesos_pb2.Value.SCALAR)
    resource.scalar.value = value
    resource.allocation_info.role = role
    return resource


def _namespace(pid: int, name: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{name}")


def _memory_cgroup(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(",") or controllers == "":
            return path
    raise AssertionError(f"{pid} has no memory cgroup")


async def _next(events: AsyncIterator[scheduler_pb2.Event], kind: int) -> scheduler_pb2.Event:
    async for event in events:
        if event.type == kind:
            return event
    raise AssertionError("the event stream ended")


async def _until_states(
    client: SchedulerClient,
    events: AsyncIterator[scheduler_pb2.Event],
    wanted: dict[str, int],
) -> dict[str, mesos_pb2.TaskStatus]:
    """Acknowledge updates until every task in `wanted` has reached its state."""
    reached: dict[str, mesos_pb2.TaskStatus] = {}
    while set(reached) != set(wanted):
        update = (await _next(events, scheduler_pb2.Event.UPDATE)).update.status
        await client.acknowledge(update)
        task_id = update.task_id.value
        if wanted.get(task_id) == update.state:
            reached[task_id] = update
        assert update.state not in (_TS.TASK_FAILED, _TS.TASK_ERROR), update.message
    return reached


def _group(offer: mesos_pb2.Offer) -> mesos_pb2.Offer.Operation:
    role = offer.allocation_info.role
    operation = mesos_pb2.Offer.Operation(type=mesos_pb2.Offer.Operation.LAUNCH_GROUP)
    executor = operation.launch_group.executor
    executor.type = mesos_pb2.ExecutorInfo.DEFAULT
    executor.executor_id.value = "group-executor"
    executor.framework_id.CopyFrom(offer.framework_id)
    executor.resources.extend(
        [_scalar("cpus", 0.1, role), _scalar("mem", 32, role), _scalar("disk", 10, role)]
    )
    for name, share_pid in (("plain", False), ("shares-pid", True)):
        task = operation.launch_group.task_group.tasks.add(name=name)
        task.task_id.value = name
        task.agent_id.CopyFrom(offer.agent_id)
        task.command.value = "sleep 600"
        task.resources.extend([_scalar("cpus", 0.1, role), _scalar("mem", 64, role)])
        if share_pid:
            task.container.type = mesos_pb2.ContainerInfo.MESOS
            task.container.linux_info.share_pid_namespace = True
    return operation


async def test_task_group_tasks_nest_in_the_executor_container(
    agent: AgentApi, node: UpNode
) -> None:
    framework = mesos_pb2.FrameworkInfo(user="root", name="task-groups")
    async with SchedulerClient(node.master, framework) as client, client.subscription() as stream:
        events = stream.__aiter__()
        subscribed = await _next(events, scheduler_pb2.Event.SUBSCRIBED)
        client.framework_info.id.CopyFrom(subscribed.subscribed.framework_id)
        offer = (await _next(events, scheduler_pb2.Event.OFFERS)).offers.offers[0]
        await client.accept([offer.id], [_group(offer)])
        running = await _until_states(
            client, events, {"plain": _TS.TASK_RUNNING, "shares-pid": _TS.TASK_RUNNING}
        )

        containers = await agent.containers()
        executors = [c for c in containers if c.get("executor_id", {}).get("value")]
        executor_entry = next(c for c in executors if "parent" not in c["container_id"])
        executor_container = executor_entry["container_id"]["value"]
        pause_pid = int(executor_entry["container_status"]["executor_pid"])
        assert Path(f"/proc/{pause_pid}/comm").read_text().strip() == PAUSE_PROGRAM_NAME
        for status in running.values():
            nested_id = status.container_status.container_id
            assert nested_id.parent.value == executor_container
        plain_pid = running["plain"].container_status.executor_pid
        sharing_pid = running["shares-pid"].container_status.executor_pid
        for pid in (plain_pid, sharing_pid):
            for shared in ("net", "ipc", "uts"):
                assert _namespace(pid, shared) == _namespace(pause_pid, shared)
            assert _memory_cgroup(pid) == _memory_cgroup(pause_pid)
        assert _namespace(plain_pid, "pid") != _namespace(pause_pid, "pid")
        assert _namespace(sharing_pid, "pid") == _namespace(pause_pid, "pid")
        # The executor container's limit covers the executor and both tasks.
        statistics = executor_entry["resource_statistics"]
        assert statistics["mem_limit_bytes"] == (32 + 64 + 64) * MB
        assert statistics["processes"] >= 3

        # Killing one task kills its group; the executor and its container then end.
        await client.kill("plain", offer.agent_id)
        killed = await _until_states(
            client, events, {"plain": _TS.TASK_KILLED, "shares-pid": _TS.TASK_KILLED}
        )
        assert killed["plain"].container_status.container_id.parent.value == executor_container
        await client.teardown()
    # The executor's container goes once its tasks are done.
    with anyio.fail_after(60):
        while await agent.containers():
            await anyio.sleep(0.01)
    assert not Path(f"/proc/{pause_pid}").exists() or (
        Path(f"/proc/{pause_pid}/comm").read_text().strip() != PAUSE_PROGRAM_NAME
    )


async def test_attach_to_a_task_launched_with_a_tty(agent: AgentApi, node: UpNode) -> None:
    framework = mesos_pb2.FrameworkInfo(user="root", name="tty-task")
    async with SchedulerClient(node.master, framework) as client, client.subscription() as stream:
        events = stream.__aiter__()
        subscribed = await _next(events, scheduler_pb2.Event.SUBSCRIBED)
        client.framework_info.id.CopyFrom(subscribed.subscribed.framework_id)
        offer = (await _next(events, scheduler_pb2.Event.OFFERS)).offers.offers[0]
        role = offer.allocation_info.role
        task = mesos_pb2.TaskInfo(name="interactive")
        task.task_id.value = "interactive"
        task.agent_id.CopyFrom(offer.agent_id)
        task.command.value = "cat"
        task.container.type = mesos_pb2.ContainerInfo.MESOS
        task.container.tty_info.SetInParent()
        task.resources.extend([_scalar("cpus", 0.1, role), _scalar("mem", 32, role)])
        await client.launch(offer, [task])
        running = await _until_states(client, events, {"interactive": _TS.TASK_RUNNING})
        identifier = container_id(running["interactive"].container_status.container_id.value)
        attach_output = {
            "type": "ATTACH_CONTAINER_OUTPUT",
            "attach_container_output": {"container_id": identifier},
        }
        async with agent.output(attach_output) as output, agent.input(identifier) as stdin:
            await stdin.send(stdin_record(b"over the wire\n"))
            await output.read_until(b"over the wire\r\nover the wire\r\n")
        await client.kill("interactive", offer.agent_id)
        await _until_states(client, events, {"interactive": _TS.TASK_KILLED})
        await client.teardown()
    with anyio.fail_after(60):
        while await agent.containers():
            await anyio.sleep(0.01)
