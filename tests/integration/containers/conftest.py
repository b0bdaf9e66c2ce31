"""A real `mesoslite up` (root: Linux isolation) shared by a module's tests, reached
over HTTP on 127.0.0.1. Each test removes every container it made (checked after it);
the module ends with Ctrl-C and a scan for anything left behind."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from mesoslite.runtime.cgroups.layout import detect_cgroup_layout
from tests.conftest import require, require_root
from tests.support.leaks import assert_nothing_left
from tests.support.up_node import UpNode, start_up, stop_up

from .agent_api import AgentApi


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpNode]:
    require_root()
    require(detect_cgroup_layout() is not None, "needs a cgroup hierarchy")
    running = start_up(
        tmp_path_factory.mktemp("up"),
        "--resources",
        "cpus:8;mem:8192;disk:4096;ports:[31000-32000]",
    )
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
