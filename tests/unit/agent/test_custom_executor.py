"""Custom executors: a pymesos executor program, and the executor API spoken by hand."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from mesoslite.proto import executor_pb2, internal_pb2, mesos_pb2
from mesoslite.wire.json_codec import to_json_bytes
from mesoslite.wire.recordio import RecordIODecoder

from .harness import AGENT_ID, FRAMEWORK_ID, RunningAgent, framework_info, running_agent

pytestmark = pytest.mark.anyio

_TS = mesos_pb2.TaskState
_Call = executor_pb2.Call

PYMESOS_EXECUTOR = textwrap.dedent(
    """
    import json, os, sys, threading
    from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data

    OUT = sys.argv[1]

    class Echo(Executor):
        def registered(self, driver, executor_info, framework_info, agent_info):
            env = {k: v for k, v in os.environ.items() if k.startswith(("MESOS_", "LIBPROCESS_"))}
            with open(os.path.join(OUT, "registered.json"), "w") as f:
                json.dump({"env": env, "agent_id": agent_info["id"]["value"],
                           "executor_id": executor_info["executor_id"]["value"]}, f)

        def launchTask(self, driver, task):
            def run():
                driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_RUNNING"})
                if task["name"] == "quick":
                    driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_FINISHED"})
            threading.Thread(target=run).start()

        def killTask(self, driver, task_id):
            driver.sendStatusUpdate({"task_id": task_id, "state": "TASK_KILLED"})

        def frameworkMessage(self, driver, message):
            driver.sendFrameworkMessage(encode_data(b"echo:" + decode_data(message)))

    MesosExecutorDriver(Echo()).run()
    """
)


def _custom_task(
    task_id: str, name: str, command: str, executor_id: str = "exec-1"
) -> mesos_pb2.TaskInfo:
    task = mesos_pb2.TaskInfo(name=name)
    task.task_id.value = task_id
    task.agent_id.value = AGENT_ID
    cpus = task.resources.add(name="cpus", type=mesos_pb2.Value.SCALAR)
    cpus.scalar.value = 0.1
    executor = task.executor
    executor.executor_id.value = executor_id
    executor.framework_id.value = FRAMEWORK_ID
    executor.type = mesos_pb2.ExecutorInfo.CUSTOM
    executor.command.value = command
    return task


def _pymesos_task(tmp_path: Path, task_id: str, name: str) -> mesos_pb2.TaskInfo:
    script = tmp_path / "executor.py"
    script.write_text(PYMESOS_EXECUTOR)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return _custom_task(task_id, name, f"{sys.executable} {script} {out}")


async def _next_new_update(running: RunningAgent, seen: set[bytes]) -> internal_pb2.StatusUpdate:
    while True:
        update = await running.link.next_update()
        if update.status.uuid not in seen:
            seen.add(update.status.uuid)
            await running.link.acknowledge(update)
            return update


async def test_pymesos_executor_runs_a_task(tmp_path: Path) -> None:
    async with running_agent(tmp_path / "agent", http=True) as running:
        await running.link.run_task(_pymesos_task(tmp_path, "t1", "quick"), framework_info())
        seen: set[bytes] = set()
        with anyio.fail_after(60):
            running_update = await _next_new_update(running, seen)
            finished = await _next_new_update(running, seen)
        assert running_update.status.state == _TS.TASK_RUNNING
        assert finished.status.state == _TS.TASK_FINISHED
        status = running_update.status
        assert status.agent_id.value == AGENT_ID
        assert status.executor_id.value == "exec-1"
        assert status.source == mesos_pb2.TaskStatus.SOURCE_EXECUTOR
        executor = running.agent.frameworks[FRAMEWORK_ID].executors["exec-1"]
        assert status.container_status.container_id.value == executor.container_id
        assert status.container_status.executor_pid == executor.pid

        registered = json.loads((tmp_path / "out" / "registered.json").read_text())
        assert registered["agent_id"] == AGENT_ID
        assert registered["executor_id"] == "exec-1"
        env = registered["env"]
        sandbox = str(executor.directory)
        assert env == {
            "MESOS_FRAMEWORK_ID": FRAMEWORK_ID,
            "MESOS_EXECUTOR_ID": "exec-1",
            "MESOS_DIRECTORY": sandbox,
            "MESOS_SANDBOX": sandbox,
            "MESOS_AGENT_ENDPOINT": running.agent.endpoint,
            "MESOS_SLAVE_ID": AGENT_ID,
            "MESOS_SLAVE_PID": f"slave(1)@{running.agent.endpoint}",
            "MESOS_CHECKPOINT": "0",
            "MESOS_HTTP_COMMAND_EXECUTOR": "0",
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
            "LIBPROCESS_PORT": "0",
        }


async def test_messages_kill_and_shutdown(tmp_path: Path) -> None:
    async with running_agent(
        tmp_path / "agent", http=True, executor_shutdown_grace_period_s=0.5
    ) as running:
        link = running.link
        await link.run_task(_pymesos_task(tmp_path, "t1", "long"), framework_info())
        seen: set[bytes] = set()
        with anyio.fail_after(60):
            assert (await _next_new_update(running, seen)).status.state == _TS.TASK_RUNNING
            # Scheduler -> executor -> scheduler.
            message = internal_pb2.MasterToAgent()
            outgoing = message.framework_to_executor
            outgoing.agent_id.value = AGENT_ID
            outgoing.framework_id.value = FRAMEWORK_ID
            outgoing.executor_id.value = "exec-1"
            outgoing.data = b"ping"
            await link.send(message)
            echoed = await link.expect("executor_to_framework")
            assert echoed.data == b"echo:ping"
            assert echoed.executor_id.value == "exec-1"
            assert echoed.agent_id.value == AGENT_ID
            # KILL reaches the executor, which reports TASK_KILLED.
            await link.kill_task("t1")
            assert (await _next_new_update(running, seen)).status.state == _TS.TASK_KILLED
            # SHUTDOWN: the executor exits; the master hears about it.
            shutdown = internal_pb2.MasterToAgent()
            shutdown.shutdown_executor.framework_id.value = FRAMEWORK_ID
            shutdown.shutdown_executor.executor_id.value = "exec-1"
            await link.send(shutdown)
            exited = await link.expect("exited_executor")
        assert exited.executor_id.value == "exec-1"
        assert exited.framework_id.value == FRAMEWORK_ID
        assert exited.agent_id.value == AGENT_ID


async def test_executor_that_never_subscribes_times_out(tmp_path: Path) -> None:
    async with running_agent(
        tmp_path / "agent", http=True, executor_registration_timeout_s=0.3
    ) as running:
        await running.link.run_task(_custom_task("t1", "t", "sleep 1000"), framework_info())
        with anyio.fail_after(30):
            update = await running.link.next_update()
            exited = await running.link.expect("exited_executor")
        assert update.status.state == _TS.TASK_FAILED
        assert update.status.reason == mesos_pb2.TaskStatus.REASON_EXECUTOR_REGISTRATION_TIMEOUT
        assert update.status.source == mesos_pb2.TaskStatus.SOURCE_AGENT
        assert exited.executor_id.value == "exec-1"


async def test_checkpointing_executor_gets_recovery_settings(tmp_path: Path) -> None:
    async with running_agent(tmp_path / "agent", http=True) as running:
        script = tmp_path / "env.sh"
        out = tmp_path / "env.out"
        script.write_text(f"env > {out}\nsleep 1000\n")
        task = _custom_task("t1", "t", f"sh {script}")
        await running.link.run_task(task, framework_info(checkpoint=True))
        with anyio.fail_after(30):
            while not out.exists() or "MESOS_RECOVERY_TIMEOUT" not in out.read_text():
                await anyio.sleep(0.02)
        env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
        assert env["MESOS_CHECKPOINT"] == "1"
        assert env["MESOS_RECOVERY_TIMEOUT"] == "15mins"
        assert env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] == "2secs"
        assert env["PATH"]
        agent = running.agent
        executor = agent.frameworks[FRAMEWORK_ID].executors["exec-1"]
        assert agent.agent_id is not None
        layout = agent.layout
        assert layout.framework_info_file(agent.agent_id, FRAMEWORK_ID).exists()
        assert layout.executor_info_file(agent.agent_id, FRAMEWORK_ID, "exec-1").exists()
        task_info = layout.task_info_file(
            agent.agent_id, FRAMEWORK_ID, "exec-1", executor.container_id, "t1"
        )
        assert mesos_pb2.TaskInfo.FromString(task_info.read_bytes()).task_id.value == "t1"
        pid_file = layout.forked_pid_file(
            agent.agent_id, FRAMEWORK_ID, "exec-1", executor.container_id
        )
        with anyio.fail_after(30):
            while not pid_file.exists():  # written once the launch has returned
                await anyio.sleep(0.01)
        assert int(pid_file.read_text()) == executor.pid


# ---------------------------------------------------------------------- by hand


def _call(call_type: int, **members: Any) -> executor_pb2.Call:
    call = _Call(type=call_type, **members)  # type: ignore[arg-type]
    call.framework_id.value = FRAMEWORK_ID
    call.executor_id.value = "exec-1"
    return call


def _update_call(
    task_id: str, state: int, uuid: bytes = b"u" * 16, **fields: Any
) -> executor_pb2.Call:
    status = mesos_pb2.TaskStatus(state=state, uuid=uuid, **fields)  # type: ignore[arg-type]
    status.task_id.value = task_id
    return _call(_Call.UPDATE, update=_Call.Update(status=status))


async def _post(
    client: httpx.AsyncClient, call: executor_pb2.Call, **headers: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/executor",
        content=to_json_bytes(call),
        headers={"Content-Type": "application/json", **headers},
    )


async def test_executor_api_by_hand(tmp_path: Path) -> None:
    async with running_agent(tmp_path / "agent", http=True) as running:
        await running.link.run_task(_custom_task("t1", "t", "sleep 1000"), framework_info())
        async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
            # Before the executor exists.
            response = await _post(client, _call(_Call.HEARTBEAT))
            assert response.status_code == 202
            while "exec-1" not in running.agent.frameworks[FRAMEWORK_ID].executors:
                await anyio.sleep(0.01)

            # Protocol errors, in Mesos' order.
            response = await client.get("/api/v1/executor")
            assert response.status_code == 405
            assert response.headers["allow"] == "POST"
            response = await client.post("/api/v1/executor", content=b"{}")
            assert response.status_code == 400
            response = await client.post(
                "/api/v1/executor", content=b"{}", headers={"Content-Type": "text/plain"}
            )
            assert response.status_code == 415
            response = await client.post(
                "/api/v1/executor", content=b"{", headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 400
            no_source = _update_call("t1", _TS.TASK_RUNNING)
            response = await _post(client, no_source)
            assert response.status_code == 400
            assert "invalid source" in response.text
            staging = _update_call(
                "t1", _TS.TASK_STAGING, source=mesos_pb2.TaskStatus.SOURCE_EXECUTOR
            )
            assert (await _post(client, staging)).status_code == 400
            short_uuid = _update_call(
                "t1", _TS.TASK_RUNNING, uuid=b"x", source=mesos_pb2.TaskStatus.SOURCE_EXECUTOR
            )
            assert (await _post(client, short_uuid)).status_code == 400
            valid = _update_call(
                "t1", _TS.TASK_RUNNING, source=mesos_pb2.TaskStatus.SOURCE_EXECUTOR
            )
            other_framework = executor_pb2.Call()
            other_framework.CopyFrom(valid)
            other_framework.framework_id.value = "nope"
            response = await _post(client, other_framework)
            assert (response.status_code, response.text) == (400, "Framework cannot be found")
            other_executor = executor_pb2.Call()
            other_executor.CopyFrom(valid)
            other_executor.executor_id.value = "nope"
            response = await _post(client, other_executor)
            assert (response.status_code, response.text) == (400, "Executor cannot be found")
            response = await _post(client, valid)
            assert (response.status_code, response.text) == (403, "Executor is not subscribed")
            subscribe = _call(_Call.SUBSCRIBE, subscribe=_Call.Subscribe())
            response = await _post(client, subscribe, Accept="text/plain")
            assert response.status_code == 406

            # SUBSCRIBE: chunked stream, SUBSCRIBED then the queued LAUNCH.
            request = client.build_request(
                "POST",
                "/api/v1/executor",
                content=to_json_bytes(subscribe),
                headers={"Content-Type": "application/json", "Connection": "close"},
            )
            stream = await client.send(request, stream=True)
            try:
                assert stream.status_code == 200
                assert stream.headers["transfer-encoding"] == "chunked"
                assert "content-length" not in stream.headers
                assert "mesos-stream-id" not in stream.headers
                events = _events(stream)
                subscribed = await anext(events)
                assert subscribed["type"] == "SUBSCRIBED"
                body = subscribed["subscribed"]
                assert body["executor_info"]["executor_id"] == {"value": "exec-1"}
                assert body["framework_info"]["id"] == {"value": FRAMEWORK_ID}
                assert body["agent_info"]["id"] == {"value": AGENT_ID}
                assert body["container_id"]["value"]
                launch = await anext(events)
                assert launch["type"] == "LAUNCH"
                assert launch["launch"]["task"]["task_id"] == {"value": "t1"}

                response = await _post(client, valid)
                assert response.status_code == 202
                acknowledged = await anext(events)
                assert acknowledged["type"] == "ACKNOWLEDGED"
                assert acknowledged["acknowledged"]["task_id"] == {"value": "t1"}
                update = await running.link.next_update()
                assert update.status.state == _TS.TASK_RUNNING
                assert update.status.uuid == b"u" * 16
                # The same uuid again is a duplicate: acknowledged, not forwarded twice.
                assert (await _post(client, valid)).status_code == 202

                message = _call(_Call.MESSAGE, message=_Call.Message(data=b"hi"))
                assert (await _post(client, message)).status_code == 202
                forwarded = await running.link.expect("executor_to_framework")
                assert forwarded.data == b"hi"
            finally:
                await stream.aclose()


async def _events(stream: httpx.Response) -> Any:
    decoder = RecordIODecoder()
    async for chunk in stream.aiter_raw():
        for record in decoder.feed(chunk):
            yield json.loads(record)


async def test_executor_that_exits_fails_its_queued_tasks(tmp_path: Path) -> None:
    async with running_agent(tmp_path / "agent", http=True) as running:
        await running.link.run_task(_custom_task("t1", "t", "exit 7"), framework_info())
        with anyio.fail_after(30):
            update = await running.link.next_update()
            exited = await running.link.expect("exited_executor")
        assert update.status.state == _TS.TASK_FAILED
        assert update.status.reason == mesos_pb2.TaskStatus.REASON_EXECUTOR_TERMINATED
        assert exited.status == 7 << 8


async def test_killing_a_task_the_executor_has_not_received(tmp_path: Path) -> None:
    async with running_agent(tmp_path / "agent", http=True) as running:
        await running.link.run_task(_custom_task("t1", "t", "sleep 1000"), framework_info())
        await running.link.kill_task("t1")
        with anyio.fail_after(30):
            update = await running.link.next_update()
        assert update.status.state == _TS.TASK_KILLED
        assert update.status.reason == mesos_pb2.TaskStatus.REASON_TASK_KILLED_DURING_LAUNCH
        assert update.status.source == mesos_pb2.TaskStatus.SOURCE_AGENT
        executor = running.agent.frameworks[FRAMEWORK_ID].executors["exec-1"]
        (task,) = executor.terminated_tasks.values()
        assert task.resources[0].name == "cpus"
