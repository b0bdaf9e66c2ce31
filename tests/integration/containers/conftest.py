"""A real `mesoslite up` (root: Linux isolation) shared by a module's tests, reached
over HTTP on 127.0.0.1. Each test removes every container it made (checked after it);
the module ends with Ctrl-C and a scan for anything left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mesoslite.runtime.cgroups.layout import detect_cgroup_layout
from tests.conftest import require, require_root
from tests.support.leaks import assert_nothing_left

from .agent_api import AgentApi

_START_LIMIT_S = 60.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class UpNode:
    master: str
    agent: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_up(workdir: Path, *extra: str) -> UpNode:
    master_port, agent_port = _free_port(), _free_port()
    data_dir = workdir / "data"
    log_path = workdir / "mesoslite.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mesoslite",
                "up",
                "--data-dir",
                str(data_dir),
                "--port",
                str(master_port),
                "--agent-port",
                str(agent_port),
                "--peer-port",
                str(_free_port()),
                "--resources",
                "cpus:8;mem:8192;disk:4096;ports:[31000-32000]",
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    node = UpNode(
        f"127.0.0.1:{master_port}", f"127.0.0.1:{agent_port}", data_dir, log_path, process
    )
    deadline = time.monotonic() + _START_LIMIT_S
    while "export MESOS_MASTER=" not in node.log():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_up(node)
            raise RuntimeError(f"mesoslite up did not start:\n{node.log()}")
        time.sleep(0.02)
    return node


def stop_up(node: UpNode) -> None:
    """Ctrl-C: the node stops every container it started."""
    if node.process.poll() is None:
        node.process.send_signal(signal.SIGINT)
        try:
            node.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpNode]:
    require_root()
    require(detect_cgroup_layout() is not None, "needs a cgroup hierarchy")
    running = start_up(tmp_path_factory.mktemp("up"))
    try:
        yield running
    finally:
        stop_up(running)
        assert_nothing_left(running.data_dir)


@pytest.fixture
async def agent(node: UpNode) -> AsyncIterator[AgentApi]:
    async with httpx.AsyncClient(base_url=f"http://{node.agent}", timeout=60) as client:
        api = AgentApi(client)
        yield api
        left = await api.containers()
        for entry in left:
            with contextlib.suppress(AssertionError):
                await api.end(entry["container_id"])
        assert left == [], f"the test left containers running: {left}"
