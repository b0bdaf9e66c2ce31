"""An agent in its own role, reaching a real master over the HTTP transport, running a
pymesos scheduler's command task and custom-executor task end to end.

Everything runs in this process on 127.0.0.1: the master and agent listeners (uvicorn),
the agent's containers (real processes), the pymesos driver (its own threads).
"""

from __future__ import annotations

import queue
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from pymesos import MesosSchedulerDriver, Scheduler, decode_data

from mesoslite.agent.agent import Agent
from mesoslite.master.config import MasterConfig
from mesoslite.master.master import Master
from mesoslite.runtime.containerizer import MesosContainerizer
from mesoslite.transport.http import HttpMasterConnector, mount_agent_transport

from ...unit.agent.harness import local_socket, serve_http
from ...unit.agent.harness import test_config as agent_test_config

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder(Scheduler):  # type: ignore[misc]
    """Launches `tasks` on the first offer; records every callback."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = tasks
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def resourceOffers(self, driver: Any, offers: list[dict[str, Any]]) -> None:
        offer = offers[0]
        if self.tasks:
            for task in self.tasks:
                task["agent_id"] = offer["agent_id"]
            driver.launchTasks(offer["id"], self.tasks)
            self.tasks = []
        for other in offers[1:]:
            driver.declineOffer(other["id"])

    def statusUpdate(self, driver: Any, status: dict[str, Any]) -> None:
        self.events.put(("update", status))

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, data: str) -> None:
        self.events.put(("message", decode_data(data)))

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: int) -> None:
        self.events.put(("executor_lost", (executor_id["value"], status)))


def _next(recorder: Recorder, kind: str) -> Any:
    while True:
        got, payload = recorder.events.get(timeout=60)
        if got == kind:
            return payload


@asynccontextmanager
async def remote_cluster(tmp_path: Path) -> AsyncIterator[str]:
    """A master and an agent that reaches it over HTTP; yields the master address."""
    master_sock, agent_sock = local_socket(), local_socket()
    master_port = master_sock.getsockname()[1]
    agent_port = agent_sock.getsockname()[1]
    try:
        async with (
            MesosContainerizer(runtime_dir=tmp_path / "runtime") as containerizer,
            anyio.create_task_group() as group,
        ):
            master = Master(
                MasterConfig(ip="127.0.0.1", port=master_port, allocation_interval_s=0.1)
            )
            mount_agent_transport(master.router, master)
            await group.start(master.run)
            group.start_soon(serve_http, master.router, master_sock)
            address = f"127.0.0.1:{master_port}"
            agent = Agent(
                agent_test_config(tmp_path / "agent", port=agent_port),
                HttpMasterConnector(address, agent_endpoint=f"127.0.0.1:{agent_port}"),
                containerizer,
                port=agent_port,
            )
            group.start_soon(serve_http, agent.router, agent_sock)
            try:
                with anyio.fail_after(30):
                    await group.start(agent.run)
                yield address
            finally:
                with anyio.CancelScope(shield=True):
                    await agent.shutdown()
                group.cancel_scope.cancel()
    finally:
        master_sock.close()
        agent_sock.close()


def _resources() -> list[dict[str, Any]]:
    return [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
    ]


def _run_scheduler(address: str, recorder: Recorder, body: Any) -> Any:
    driver = MesosSchedulerDriver(
        recorder, {"user": "root", "name": "remote-agent-test", "hostname": "localhost"}, address
    )
    driver.start()
    try:
        return body(driver)
    finally:
        driver.stop()
        driver.join()


async def test_command_task_through_a_remote_agent(tmp_path: Path) -> None:
    task = {
        "name": "hello",
        "task_id": {"value": "hello-1"},
        "resources": _resources(),
        "command": {"value": "echo remote-hello"},
    }
    recorder = Recorder([task])

    def body(driver: Any) -> list[str]:
        states = []
        while not states or states[-1] not in ("TASK_FINISHED", "TASK_FAILED", "TASK_LOST"):
            status = _next(recorder, "update")
            assert "uuid" in status and "agent_id" in status
            states.append(status["state"])
        return states

    async with remote_cluster(tmp_path) as address:
        states = await anyio.to_thread.run_sync(_run_scheduler, address, recorder, body)
    assert states[-1] == "TASK_FINISHED"
    assert "TASK_RUNNING" in states
    (stdout,) = tmp_path.glob("agent/slaves/*/frameworks/*/executors/hello-1/runs/latest/stdout")
    assert stdout.read_text() == "remote-hello\n"


EXECUTOR = textwrap.dedent(
    """
    import sys, threading
    from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data

    class Echo(Executor):
        def launchTask(self, driver, task):
            def run():
                driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_RUNNING"})
                driver.sendFrameworkMessage(encode_data(b"hello from the executor"))
                driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_FINISHED"})
            threading.Thread(target=run).start()

    MesosExecutorDriver(Echo()).run()
    """
)


async def test_custom_executor_through_a_remote_agent(tmp_path: Path) -> None:
    script = tmp_path / "executor.py"
    script.write_text(EXECUTOR)
    task = {
        "name": "custom",
        "task_id": {"value": "custom-1"},
        "resources": _resources(),
        "executor": {
            "executor_id": {"value": "echo-executor"},
            "command": {"value": f"{sys.executable} {script}"},
            "resources": _resources(),
        },
    }
    recorder = Recorder([task])

    def body(driver: Any) -> tuple[list[str], list[bytes]]:
        states: list[str] = []
        messages: list[bytes] = []
        while not messages or not states or states[-1] != "TASK_FINISHED":
            kind, payload = recorder.events.get(timeout=60)
            if kind == "update":
                states.append(payload["state"])
            elif kind == "message":
                messages.append(payload)
        return states, messages

    async with remote_cluster(tmp_path) as address:
        states, messages = await anyio.to_thread.run_sync(_run_scheduler, address, recorder, body)
    assert states == ["TASK_RUNNING", "TASK_FINISHED"]
    assert messages == [b"hello from the executor"]
