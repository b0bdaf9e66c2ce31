"""The agent's HTTP surface: operator API calls, legacy JSON endpoints, /files."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from mesoslite.proto import agent_pb2, mesos_pb2
from mesoslite.wire.json_codec import from_json, to_json_bytes

from .harness import (
    AGENT_ID,
    FRAMEWORK_ID,
    RunningAgent,
    command_task,
    framework_info,
    running_agent,
)

pytestmark = pytest.mark.anyio

_Call = agent_pb2.Call
_Response = agent_pb2.Response
_TS = mesos_pb2.TaskState


@asynccontextmanager
async def agent_with_tasks(
    tmp_path: Path,
) -> AsyncIterator[tuple[RunningAgent, httpx.AsyncClient]]:
    """An agent that ran `done` (finished, acknowledged) and still runs `sleeper`."""
    async with running_agent(tmp_path, http=True) as running:
        link = running.link
        await link.run_task(command_task("done", "echo finished-output"), framework_info())
        with anyio.fail_after(30):
            await link.updates_until_terminal()
            await link.run_task(command_task("sleeper", "sleep 1000"), framework_info())
            for _ in range(2):
                await link.acknowledge(await link.next_update())
        async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
            yield running, client


async def _call(
    client: httpx.AsyncClient, call: agent_pb2.Call, path: str = "/api/v1", **headers: str
) -> httpx.Response:
    return await client.post(
        path, content=to_json_bytes(call), headers={"Content-Type": "application/json", **headers}
    )


async def _response(client: httpx.AsyncClient, call_type: int, **members: Any) -> _Response:
    response = await _call(client, _Call(type=call_type, **members))  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return from_json(response.content, _Response)


async def test_operator_getters(tmp_path: Path) -> None:
    async with agent_with_tasks(tmp_path) as (running, client):
        health = await _response(client, _Call.GET_HEALTH)
        assert health.type == _Response.GET_HEALTH and health.get_health.healthy

        flags = {
            flag.name: flag.value
            for flag in (await _response(client, _Call.GET_FLAGS)).get_flags.flags
        }
        assert flags["work_dir"] == str(tmp_path)
        assert flags["executor_shutdown_grace_period"] == "5secs"

        version = await _response(client, _Call.GET_VERSION)
        assert version.get_version.version_info.version == "1.12.0"

        metrics = await _response(client, _Call.GET_METRICS, get_metrics=_Call.GetMetrics())
        values = {metric.name: metric.value for metric in metrics.get_metrics.metrics}
        assert values["slave/registered"] == 1.0
        assert values["slave/tasks_running"] == 1.0
        assert values["slave/tasks_finished"] == 1.0
        assert values["slave/cpus_total"] == 2.0
        assert values["system/cpus_total"] >= 1

        agent = (await _response(client, _Call.GET_AGENT)).get_agent
        assert agent.agent_info.id.value == AGENT_ID

        tasks = (await _response(client, _Call.GET_TASKS)).get_tasks
        assert [task.task_id.value for task in tasks.launched_tasks] == ["sleeper"]
        assert tasks.launched_tasks[0].state == _TS.TASK_RUNNING
        assert [task.task_id.value for task in tasks.completed_tasks] == ["done"]
        assert tasks.completed_tasks[0].state == _TS.TASK_FINISHED

        frameworks = (await _response(client, _Call.GET_FRAMEWORKS)).get_frameworks
        assert [f.framework_info.id.value for f in frameworks.frameworks] == [FRAMEWORK_ID]

        executors = (await _response(client, _Call.GET_EXECUTORS)).get_executors
        assert [e.executor_info.executor_id.value for e in executors.executors] == ["sleeper"]
        assert [e.executor_info.executor_id.value for e in executors.completed_executors] == [
            "done"
        ]

        state = (await _response(client, _Call.GET_STATE)).get_state
        assert len(state.get_tasks.launched_tasks) == 1
        assert len(state.get_frameworks.frameworks) == 1

        containers = (await _response(client, _Call.GET_CONTAINERS)).get_containers
        (container,) = containers.containers
        executor = running.agent.frameworks[FRAMEWORK_ID].executors["sleeper"]
        assert container.container_id.value == executor.container_id
        assert container.executor_id.value == "sleeper"
        assert container.framework_id.value == FRAMEWORK_ID
        assert container.resource_statistics.timestamp > 0
        assert container.container_status.executor_pid > 0


async def test_operator_files(tmp_path: Path) -> None:
    async with agent_with_tasks(tmp_path) as (_, client):
        sandbox = f"/frameworks/{FRAMEWORK_ID}/executors/done/runs/latest"
        listing = await _response(
            client, _Call.LIST_FILES, list_files=_Call.ListFiles(path=sandbox)
        )
        names = {info.path.rsplit("/", 1)[1] for info in listing.list_files.file_infos}
        assert {"stdout", "stderr"} <= names
        read = await _response(
            client, _Call.READ_FILE, read_file=_Call.ReadFile(path=f"{sandbox}/stdout", offset=0)
        )
        assert read.read_file.data == b"finished-output\n"
        assert read.read_file.size == len(b"finished-output\n")
        missing = await _call(
            client,
            _Call(type=_Call.READ_FILE, read_file=_Call.ReadFile(path="/etc/passwd", offset=0)),
        )
        assert missing.status_code == 404


async def test_operator_protocol_errors(tmp_path: Path) -> None:
    baseline = logging.getLogger("mesoslite.agent").level
    async with (
        running_agent(tmp_path, http=True) as running,
        httpx.AsyncClient(base_url=running.base_url, timeout=30) as client,
    ):
        health = _Call(type=_Call.GET_HEALTH)
        # pymesos' operator driver posts to /api/v1/operator.
        assert (await _call(client, health, "/api/v1/operator")).status_code == 200
        assert (await _call(client, health, "/slave(1)/api/v1")).status_code == 200
        response = await _call(client, health, Accept="application/x-protobuf")
        assert response.headers["content-type"] == "application/x-protobuf"
        assert _Response.FromString(response.content).get_health.healthy
        assert (await _call(client, health, Accept="text/html")).status_code == 406
        response = await client.post(
            "/api/v1", content=b"{}", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        response = await client.post(
            "/api/v1",
            content=b'{"type":"UNKNOWN"}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 501
        response = await client.post(
            "/api/v1",
            content=b'{"type":"LIST_FILES"}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400
        response = await client.get("/api/v1")
        assert response.status_code == 405
        set_level = _Call(
            type=_Call.SET_LOGGING_LEVEL,
            set_logging_level=_Call.SetLoggingLevel(
                level=1, duration=mesos_pb2.DurationInfo(nanoseconds=3600 * 10**9)
            ),
        )
        assert (await _call(client, set_level)).status_code == 200
        level = await _response(client, _Call.GET_LOGGING_LEVEL)
        assert level.get_logging_level.level == 1
        assert logging.getLogger("mesoslite.agent").level == logging.DEBUG
        response = await client.post("/api/v1", content=b"{}", headers={"Content-Type": "text/xml"})
        assert response.status_code == 415
    # The agent stopping ends the temporary level.
    assert logging.getLogger("mesoslite.agent").level == baseline


async def test_standalone_and_nested_containers(tmp_path: Path) -> None:
    async with agent_with_tasks(tmp_path) as (running, client):
        container_id = mesos_pb2.ContainerID(value="standalone-1")
        launch = _Call.LaunchContainer(
            container_id=container_id, command=mesos_pb2.CommandInfo(value="exit 4")
        )
        call = _Call(type=_Call.LAUNCH_CONTAINER, launch_container=launch)
        assert (await _call(client, call)).status_code == 200
        assert (await _call(client, call)).status_code == 202
        waited = await _response(
            client,
            _Call.WAIT_CONTAINER,
            wait_container=_Call.WaitContainer(container_id=container_id),
        )
        assert waited.wait_container.exit_status == 4 << 8
        remove = _Call(
            type=_Call.REMOVE_CONTAINER,
            remove_container=_Call.RemoveContainer(container_id=container_id),
        )
        assert (await _call(client, remove)).status_code == 200

        unknown = mesos_pb2.ContainerID(value="nope")
        wait_unknown = _Call(
            type=_Call.WAIT_CONTAINER, wait_container=_Call.WaitContainer(container_id=unknown)
        )
        assert (await _call(client, wait_unknown)).status_code == 404
        kill_unknown = _Call(
            type=_Call.KILL_CONTAINER, kill_container=_Call.KillContainer(container_id=unknown)
        )
        assert (await _call(client, kill_unknown)).status_code == 404

        executor = running.agent.frameworks[FRAMEWORK_ID].executors["sleeper"]
        nested = mesos_pb2.ContainerID(value="nested-1")
        nested.parent.value = executor.container_id
        launch_nested = _Call(
            type=_Call.LAUNCH_NESTED_CONTAINER,
            launch_nested_container=_Call.LaunchNestedContainer(
                container_id=nested, command=mesos_pb2.CommandInfo(value="sleep 1000")
            ),
        )
        assert (await _call(client, launch_nested)).status_code == 200
        kill = _Call(
            type=_Call.KILL_NESTED_CONTAINER,
            kill_nested_container=_Call.KillNestedContainer(container_id=nested),
        )
        assert (await _call(client, kill)).status_code == 200
        waited_nested = await _response(
            client,
            _Call.WAIT_NESTED_CONTAINER,
            wait_nested_container=_Call.WaitNestedContainer(container_id=nested),
        )
        assert waited_nested.wait_nested_container.exit_status == 9  # killed by SIGKILL
        assert (executor.directory / "containers" / "nested-1" / "stdout").exists()


async def test_legacy_state_and_friends(tmp_path: Path) -> None:
    async with agent_with_tasks(tmp_path) as (running, client):
        for path in ("/state", "/slave(1)/state", "/state.json"):
            response = await client.get(path)
            assert response.status_code == 200
        state = (await client.get("/state")).json()
        assert state["id"] == AGENT_ID
        assert state["pid"] == f"slave(1)@{running.agent.endpoint}"
        assert state["hostname"] == "localhost"
        assert state["resources"]["cpus"] == 2.0
        assert state["resources"]["ports"] == "[31000-31010]"
        (framework,) = state["frameworks"]
        assert framework["id"] == FRAMEWORK_ID
        assert framework["role"] == "*"
        executors = {executor["id"]: executor for executor in framework["executors"]}
        sleeper = executors["sleeper"]
        assert sleeper["source"] == "sleeper"
        assert sleeper["name"].startswith(
            "Command Executor (Task: sleeper) (Command: sh -c 'sleep 1000')"
        )
        assert sleeper["directory"].endswith(sleeper["container"])
        (task,) = sleeper["tasks"]
        assert task["id"] == "sleeper" and task["state"] == "TASK_RUNNING"
        assert task["executor_id"] == ""
        assert task["slave_id"] == AGENT_ID
        completed = {executor["id"] for executor in framework["completed_executors"]}
        assert completed == {"done"}

        flags = (await client.get("/flags")).json()["flags"]
        assert flags["port"] == str(running.agent.port)
        health = await client.get("/health")
        assert health.status_code == 200 and health.content == b""
        version = (await client.get("/version")).json()
        assert version["version"] == "1.12.0"
        snapshot = (await client.get("/metrics/snapshot")).json()
        assert snapshot["slave/registered"] == 1.0
        assert snapshot["slave/tasks_running"] == 1.0

        statistics = (await client.get("/monitor/statistics")).json()
        assert [entry["executor_id"] for entry in statistics] == ["sleeper"]
        assert statistics[0]["statistics"]["timestamp"] > 0
        containers = (await client.get("/slave(1)/containers")).json()
        assert containers[0]["container_id"] == sleeper["container"]
        assert containers[0]["status"]["executor_pid"] > 0

        jsonp = await client.get("/flags", params={"jsonp": "cb"})
        assert jsonp.text.startswith("cb({") and jsonp.text.endswith(");")


async def test_legacy_files(tmp_path: Path) -> None:
    async with agent_with_tasks(tmp_path) as (running, client):
        sandbox = f"/frameworks/{FRAMEWORK_ID}/executors/done/runs/latest"
        listing = (await client.get("/files/browse", params={"path": sandbox})).json()
        by_name = {entry["path"].rsplit("/", 1)[1]: entry for entry in listing}
        assert by_name["stdout"]["mode"].startswith("-rw")
        assert isinstance(by_name["stdout"]["mtime"], float)

        read = (
            await client.get("/files/read", params={"path": f"{sandbox}/stdout", "offset": 0})
        ).json()
        assert read == {"offset": 0, "data": "finished-output\n"}
        size_only = (
            await client.get("/files/read", params={"path": f"{sandbox}/stdout", "offset": -1})
        ).json()
        assert size_only == {"offset": len("finished-output\n"), "data": ""}
        partial = (
            await client.get(
                "/files/read", params={"path": f"{sandbox}/stdout", "offset": 9, "length": 3}
            )
        ).json()
        assert partial == {"offset": 9, "data": "out"}

        download = await client.get("/files/download", params={"path": f"{sandbox}/stdout"})
        assert download.status_code == 200
        assert download.content == b"finished-output\n"
        assert download.headers["content-type"] == "application/octet-stream"
        assert download.headers["content-disposition"].startswith("attachment")
        assert (await client.get("/files/download", params={"path": sandbox})).status_code == 400

        debug = (await client.get("/files/debug")).json()
        assert sandbox in debug

        # Nothing outside the sandboxes.
        for path in ("/etc/passwd", f"{sandbox}/../../../../../../etc/passwd", str(tmp_path)):
            for endpoint in ("/files/read", "/files/browse", "/files/download"):
                response = await client.get(endpoint, params={"path": path, "offset": 0})
                assert response.status_code == 404, (endpoint, path)
        assert (await client.get("/files/read")).status_code == 400
        executor = running.agent.frameworks[FRAMEWORK_ID].executors["sleeper"]
        (executor.directory / "leak").symlink_to("/etc/passwd")
        leak = f"/frameworks/{FRAMEWORK_ID}/executors/sleeper/runs/latest/leak"
        for endpoint in ("/files/read", "/files/download"):
            response = await client.get(endpoint, params={"path": leak, "offset": 0})
            assert response.status_code == 403
        listing = (
            await client.get("/files/browse", params={"path": str(executor.directory)})
        ).json()
        assert all(not entry["path"].endswith("/leak") for entry in listing)
