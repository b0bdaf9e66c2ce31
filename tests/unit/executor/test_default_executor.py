"""Task groups through the built-in default executor, driven through a real agent."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import anyio
import httpx
import pytest

from mesoslite.proto import agent_pb2, internal_pb2, mesos_pb2
from mesoslite.wire.json_codec import from_json, to_json_bytes

from ..agent.harness import (
    FRAMEWORK_ID,
    TERMINAL,
    MasterLink,
    command_task,
    framework_info,
    running_agent,
)

pytestmark = pytest.mark.anyio

_TS = mesos_pb2.TaskState


def _executor(executor_id: str = "default-1") -> mesos_pb2.ExecutorInfo:
    info = mesos_pb2.ExecutorInfo(type=mesos_pb2.ExecutorInfo.DEFAULT)
    info.executor_id.value = executor_id
    info.framework_id.value = FRAMEWORK_ID
    for name, value in (("cpus", 0.1), ("mem", 32.0)):
        resource = info.resources.add(name=name, type=mesos_pb2.Value.SCALAR)
        resource.scalar.value = value
    return info


async def _collect(
    link: MasterLink, task_ids: set[str]
) -> dict[str, list[internal_pb2.StatusUpdate]]:
    """Every task's updates up to its terminal one, acknowledging as they come."""
    updates: dict[str, list[internal_pb2.StatusUpdate]] = defaultdict(list)
    pending = set(task_ids)
    while pending:
        update = await link.next_update()
        task_id = update.status.task_id.value
        seen = updates[task_id]
        if seen and seen[-1].status.uuid == update.status.uuid:
            continue
        seen.append(update)
        await link.acknowledge(update)
        if update.status.state in TERMINAL:
            pending.discard(task_id)
    return updates


def _states(updates: list[internal_pb2.StatusUpdate]) -> list[int]:
    return [update.status.state for update in updates]


async def test_group_tasks_run_in_nested_containers(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        tasks = [command_task("a", "echo from-a"), command_task("b", "echo from-b")]
        await running.link.run_task_group(_executor(), tasks, framework_info())
        with anyio.fail_after(30):
            updates = await _collect(running.link, {"a", "b"})
            exited = await running.link.expect("exited_executor")
        executor_sandbox = running.sandbox_of(FRAMEWORK_ID, "default-1").resolve()
        for task_id in ("a", "b"):
            assert _states(updates[task_id]) == [
                _TS.TASK_STARTING,
                _TS.TASK_RUNNING,
                _TS.TASK_FINISHED,
            ]
            running_status = updates[task_id][1].status
            assert running_status.executor_id.value == "default-1"
            container = running_status.container_status.container_id
            assert container.parent.value == executor_sandbox.name
            task_sandbox = executor_sandbox / "tasks" / task_id
            assert task_sandbox.resolve() == executor_sandbox / "containers" / container.value
            assert (task_sandbox / "stdout").read_text() == f"from-{task_id}\n"
        assert exited.executor_id.value == "default-1"
        assert exited.status == 0


async def test_a_failed_task_kills_the_rest_of_its_group(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        tasks = [command_task("fails", "exit 2"), command_task("sleeps", "sleep 1000")]
        await running.link.run_task_group(_executor(), tasks, framework_info())
        with anyio.fail_after(30):
            updates = await _collect(running.link, {"fails", "sleeps"})
        assert updates["fails"][-1].status.state == _TS.TASK_FAILED
        assert updates["fails"][-1].status.message == "Command exited with status 2"
        assert updates["sleeps"][-1].status.state == _TS.TASK_KILLED


async def test_killing_one_task_kills_the_group(tmp_path: Path) -> None:
    capability = mesos_pb2.FrameworkInfo.Capability.TASK_KILLING_STATE
    async with running_agent(tmp_path) as running:
        tasks = [command_task("a", "sleep 1000"), command_task("b", "sleep 1000")]
        await running.link.run_task_group(
            _executor(), tasks, framework_info(capabilities=(capability,))
        )
        with anyio.fail_after(30):
            seen = 0
            while seen < 4:  # STARTING and RUNNING of both
                update = await running.link.next_update()
                await running.link.acknowledge(update)
                seen += 1
            await running.link.kill_task("a")
            updates = await _collect(running.link, {"a", "b"})
        for task_id in ("a", "b"):
            assert _states(updates[task_id]) == [_TS.TASK_KILLING, _TS.TASK_KILLED]


async def test_a_second_group_joins_the_running_executor(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        link = running.link
        await link.run_task_group(
            _executor(), [command_task("first", "sleep 1000")], framework_info()
        )
        with anyio.fail_after(30):
            for _ in range(2):
                await link.acknowledge(await link.next_update())
            await link.run_task_group(
                _executor(), [command_task("second", "echo two")], framework_info()
            )
            updates = await _collect(link, {"second"})
            assert updates["second"][-1].status.state == _TS.TASK_FINISHED
            await link.kill_task("first")
            rest = await _collect(link, {"first"})
        assert rest["first"][-1].status.state == _TS.TASK_KILLED


async def test_nested_containers_are_reported_under_the_executor(tmp_path: Path) -> None:
    async with running_agent(tmp_path, http=True) as running:
        link = running.link
        tasks = [command_task("a", "sleep 1000"), command_task("b", "sleep 1000")]
        await link.run_task_group(_executor(), tasks, framework_info())
        with anyio.fail_after(30):
            for _ in range(4):
                await link.acknowledge(await link.next_update())
        executor = running.agent.frameworks[FRAMEWORK_ID].executors["default-1"]
        call = agent_pb2.Call(
            type=agent_pb2.Call.GET_CONTAINERS,
            get_containers=agent_pb2.Call.GetContainers(show_nested=True),
        )
        async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
            response = await client.post(
                "/api/v1",
                content=to_json_bytes(call),
                headers={"Content-Type": "application/json"},
            )
            statistics = (await client.get("/monitor/statistics")).json()
        containers = from_json(response.content, agent_pb2.Response).get_containers.containers
        top, *nested = containers
        assert top.container_id.value == executor.container_id
        assert top.executor_id.value == "default-1"
        assert len(nested) == 2
        for entry in nested:
            assert entry.container_id.parent.value == executor.container_id
            assert entry.executor_id.value == "default-1"
            assert entry.container_status.executor_pid > 0
        assert [entry["executor_id"] for entry in statistics] == ["default-1"]
        assert statistics[0]["statistics"]["timestamp"] > 0
