"""The HTTP master<->agent transport against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import math
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from mesoslite.agent.agent import Agent
from mesoslite.proto import internal_pb2, mesos_pb2
from mesoslite.runtime.containerizer import MesosContainerizer
from mesoslite.transport.channel import ChannelClosed, MasterChannel
from mesoslite.transport.http import (
    CONNECT_PATH,
    CONNECTION_HEADER,
    MESSAGE_PATH,
    HttpMasterConnector,
    mount_agent_transport,
)
from mesoslite.wire.routing import Router

from ..agent.harness import MasterLink, command_task, framework_info, local_socket, serve_http
from ..agent.harness import test_config as agent_test_config

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordingServer:
    """An AgentServer that hands each connection to the test."""

    def __init__(self) -> None:
        self.connections_send, self.connections = anyio.create_memory_object_stream[
            tuple[MasterChannel, anyio.Event]
        ](math.inf)

    async def serve_agent(self, channel: MasterChannel) -> None:
        done = anyio.Event()
        self.connections_send.send_nowait((channel, done))
        await done.wait()  # the test decides when the master is done with it


@asynccontextmanager
async def master_server(server: RecordingServer, aliases: list[str]) -> AsyncIterator[str]:
    router = Router(aliases=aliases)
    mount_agent_transport(router, server)
    sock: socket.socket = local_socket()
    address = f"127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(serve_http, router, sock)
            try:
                yield address
            finally:
                group.cancel_scope.cancel()
    finally:
        sock.close()


def _ping(sequence: int) -> internal_pb2.MasterToAgent:
    return internal_pb2.MasterToAgent(ping=internal_pb2.Ping(sequence=sequence))


def _pong(sequence: int) -> internal_pb2.AgentToMaster:
    return internal_pb2.AgentToMaster(pong=internal_pb2.Pong(sequence=sequence))


@pytest.mark.parametrize("aliases", [["/master"], []])
async def test_messages_flow_both_ways_in_order(aliases: list[str]) -> None:
    server = RecordingServer()
    async with master_server(server, aliases) as address:
        with anyio.fail_after(30):
            agent_end = await HttpMasterConnector(address).connect()
            master_end, done = await server.connections.receive()
            try:
                for sequence in range(5):
                    await master_end.send(_ping(sequence))
                received = agent_end.__aiter__()
                for sequence in range(5):
                    message = await received.__anext__()
                    assert message.ping.sequence == sequence
                # Concurrent senders: order of send() calls is kept across batches.
                async with anyio.create_task_group() as group:
                    for sequence in range(200):
                        group.start_soon(agent_end.send, _pong(sequence))
                        await anyio.lowlevel.checkpoint()
                incoming = master_end.__aiter__()
                sequences = [(await incoming.__anext__()).pong.sequence for _ in range(200)]
                assert sequences == list(range(200))
            finally:
                done.set()
                await agent_end.aclose()


async def test_master_ending_the_connection_ends_the_agents_stream() -> None:
    server = RecordingServer()
    async with master_server(server, ["/master"]) as address:
        with anyio.fail_after(30):
            agent_end = await HttpMasterConnector(address).connect()
            master_end, done = await server.connections.receive()
            await master_end.send(_ping(1))
            done.set()
            received = [message async for message in agent_end]
            assert [message.ping.sequence for message in received] == [1]
            with pytest.raises(ChannelClosed):
                await agent_end.send(_pong(1))


async def test_agent_closing_ends_the_masters_iteration() -> None:
    server = RecordingServer()
    async with master_server(server, ["/master"]) as address:
        with anyio.fail_after(30):
            agent_end = await HttpMasterConnector(address).connect()
            master_end, done = await server.connections.receive()
            await agent_end.send(_pong(7))
            await agent_end.aclose()
            received = [message async for message in master_end]
            assert [message.pong.sequence for message in received] == [7]
            with pytest.raises(ChannelClosed):
                while True:  # the disconnect is noticed asynchronously
                    await master_end.send(_ping(1))
                    await anyio.sleep(0.01)
            done.set()


async def test_message_for_an_unknown_connection_is_404() -> None:
    server = RecordingServer()
    async with master_server(server, ["/master"]) as address, httpx.AsyncClient() as client:
        response = await client.post(
            f"http://{address}{MESSAGE_PATH}", content=b"", headers={CONNECTION_HEADER: "nope"}
        )
        assert response.status_code == 404


async def test_connect_refused_raises() -> None:
    sock = local_socket()
    address = f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    with pytest.raises(ConnectionError, match=f"http://{address}") as raised:
        await HttpMasterConnector(address).connect()
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


async def test_agent_runs_a_task_over_http(tmp_path: Path) -> None:
    server = RecordingServer()
    async with master_server(server, ["/master"]) as address:
        config = agent_test_config(tmp_path)
        async with MesosContainerizer() as containerizer, anyio.create_task_group() as group:
            agent = Agent(config, HttpMasterConnector(address), containerizer)
            group.start_soon(agent.run)
            try:
                with anyio.fail_after(30):
                    master_end, done = await server.connections.receive()
                    link = MasterLink(master_end)  # type: ignore[arg-type]
                    await link.register()
                    await agent.wait_registered()
                    await link.run_task(command_task("t1", "echo over-http"), framework_info())
                    updates = await link.updates_until_terminal()
                    assert updates[-1].status.state == mesos_pb2.TASK_FINISHED
                    # The master drops the connection: the agent reconnects and
                    # re-registers under its id.
                    done.set()
                    master_end, done = await server.connections.receive()
                    link = MasterLink(master_end)  # type: ignore[arg-type]
                    again = await link.expect("reregister_agent")
                    assert again.agent_info.id.value == agent.agent_id
                    await link.answer_registration(again.agent_info.id.value, reregistered=True)
                    done.set()
            finally:
                with anyio.CancelScope(shield=True):
                    await agent.shutdown()
                group.cancel_scope.cancel()


async def test_a_redirect_points_the_next_attempt_at_the_leader() -> None:
    server = RecordingServer()
    async with master_server(server, ["/master"]) as leader:
        redirector = Router(aliases=["/master"])

        async def not_leader(request: Request) -> Response:
            return Response(b"", status_code=307, headers={"Location": f"//{leader}"})

        redirector.add(CONNECT_PATH.removeprefix("/master"), not_leader)
        sock = local_socket()
        follower = f"127.0.0.1:{sock.getsockname()[1]}"
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(serve_http, redirector, sock)
                connector = HttpMasterConnector(follower)
                with anyio.fail_after(30):
                    with pytest.raises(ConnectionError):
                        await connector.connect()
                    agent_end = await connector.connect()
                    _, done = await server.connections.receive()
                done.set()
                await agent_end.aclose()
                group.cancel_scope.cancel()
        finally:
            sock.close()
