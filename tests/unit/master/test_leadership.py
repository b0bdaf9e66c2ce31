"""Leader redirection (wire contract 1.6), with the leader check forced off."""

from __future__ import annotations

import pytest

from mesoslite.proto import mesos_pb2
from tests.unit.master.harness import running_master

pytestmark = pytest.mark.anyio


async def test_non_leader_redirects_api_calls_to_the_leader() -> None:
    async with running_master() as cluster:
        leader = mesos_pb2.MasterInfo(id="other", ip=0, port=6060, hostname="leader.example")
        cluster.master.is_leader = lambda: False  # type: ignore[method-assign]
        cluster.master.leader_info = lambda: leader  # type: ignore[method-assign]
        for path in ("/api/v1/scheduler", "/master/api/v1/scheduler", "/api/v1"):
            response = await cluster.http.post(path, json={"type": "SUBSCRIBE"})
            assert response.status_code == 307
            expected = "/master" + path.removeprefix("/master")
            assert response.headers["location"] == f"//leader.example:6060{expected}"
        redirect = await cluster.http.get("/redirect")
        assert redirect.headers["location"] == "//leader.example:6060"


async def test_no_known_leader_is_503() -> None:
    async with running_master() as cluster:
        cluster.master.is_leader = lambda: False  # type: ignore[method-assign]
        cluster.master.leader_info = lambda: None  # type: ignore[method-assign]
        response = await cluster.http.post("/api/v1/scheduler", json={"type": "SUBSCRIBE"})
        assert response.status_code == 503
        assert response.text == "No leader elected"
        assert (await cluster.http.get("/redirect")).status_code == 503
