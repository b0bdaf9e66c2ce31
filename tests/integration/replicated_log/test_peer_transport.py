"""Raft messages between two replicas over HTTPS with mutual TLS, on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Generator
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn
from anyio.streams.memory import MemoryObjectReceiveStream

from mesoslite.raft.messages import (
    ConfState,
    Entry,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)
from mesoslite.replicated_log.peer_transport import (
    CONTENT_TYPE,
    RAFT_PATH,
    encode_frame,
    mount_raft_endpoint,
    open_peer_transport,
    raft_http_protocol,
)
from mesoslite.replicated_log.tls import (
    ClusterCa,
    TlsPaths,
    client_ssl_context,
    ensure_cluster_tls,
    new_node_key,
    node_csr,
    save_node_identity,
    server_ssl_context,
    uvicorn_tls_options,
)
from mesoslite.wire.routing import Router
from mesoslite.wire.server import uvicorn_config

pytestmark = pytest.mark.anyio

LOOPBACK = ["127.0.0.1", "localhost"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Reports:
    """Records what the transport reports to the Raft node."""

    def __init__(self) -> None:
        self.unreachable: list[int] = []
        self.snapshots: list[tuple[int, bool]] = []
        self.changed = anyio.Event()

    def report_unreachable(self, to_id: int) -> None:
        self.unreachable.append(to_id)
        self.changed.set()

    def report_snapshot(self, to_id: int, *, failed: bool) -> None:
        self.snapshots.append((to_id, failed))
        self.changed.set()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(10):  # a guard against hanging, not a timing check
            while not condition():
                await self.changed.wait()
                self.changed = anyio.Event()


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the test runner owns signals


@contextlib.asynccontextmanager
async def replica(
    paths: TlsPaths, *, upgrades: bool = True
) -> AsyncIterator[tuple[str, MemoryObjectReceiveStream[Message]]]:
    """A listener serving the Raft endpoint with the member-only TLS policy; yields its
    address and the messages it receives. `upgrades=False`: a listener without the
    stream upgrade (an older member), read through ASGI."""
    send, receive = anyio.create_memory_object_stream[Message](10_000)

    def deliver(messages: list[Message]) -> None:
        for message in messages:
            send.send_nowait(message)

    router = Router()
    endpoint = mount_raft_endpoint(router, deliver)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    options = {"http": raft_http_protocol(endpoint)} if upgrades else {}
    server = _QuietServer(
        uvicorn_config(router, log_level="critical", **options, **uvicorn_tls_options(paths))
    )
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        try:
            yield f"127.0.0.1:{port}", receive
        finally:
            endpoint.close()  # streams never end by themselves
            server.should_exit = True
    sock.close()


def member(cluster: TlsPaths, directory: Path, name: str) -> TlsPaths:
    paths = TlsPaths(directory)
    key = new_node_key()
    ca = ClusterCa.load(cluster)
    save_node_identity(paths, key, ca.sign_csr(node_csr(key, name, LOOPBACK)), ca.certificate_pem)
    return paths


async def receive_all(stream: MemoryObjectReceiveStream[Message], count: int) -> list[Message]:
    with anyio.fail_after(10):
        return [await stream.receive() for _ in range(count)]


def appends(count: int) -> list[Message]:
    return [
        Message(MessageType.APPEND, 2, 1, 5, 5, index, [Entry(5, index + 1, b"x" * 256)], index)
        for index in range(count)
    ]


async def test_messages_reach_the_peer_in_order(tmp_path: Path) -> None:
    node_1 = ensure_cluster_tls(tmp_path / "one", "node-1", LOOPBACK)
    node_2 = member(node_1, tmp_path / "two", "node-2")
    reports = Reports()
    transport_context = open_peer_transport(client_ssl_context(node_1), reports)
    async with replica(node_2) as (address, received), transport_context as transport:
        transport.set_peer(2, address)
        sent = appends(500)
        transport.send(sent[:1])  # one alone, then a burst that batches up
        transport.send(sent[1:])
        assert await receive_all(received, len(sent)) == sent
    assert reports.unreachable == []


async def test_a_snapshot_is_delivered_and_reported(tmp_path: Path) -> None:
    node_1 = ensure_cluster_tls(tmp_path / "one", "node-1", LOOPBACK)
    node_2 = member(node_1, tmp_path / "two", "node-2")
    snapshot = Snapshot(SnapshotMetadata(40, 3, ConfState((1, 2))), b"registry" * 10_000)
    message = Message(MessageType.SNAPSHOT, 2, 1, 3, snapshot=snapshot)
    reports = Reports()
    transport_context = open_peer_transport(client_ssl_context(node_1), reports)
    async with replica(node_2) as (address, received), transport_context as transport:
        transport.set_peer(2, address)
        transport.send([message])
        assert await receive_all(received, 1) == [message]
        await reports.wait_until(lambda: bool(reports.snapshots))
    assert reports.snapshots == [(2, False)]


async def test_a_node_outside_the_cluster_cannot_deliver(tmp_path: Path) -> None:
    node_1 = ensure_cluster_tls(tmp_path / "one", "node-1", LOOPBACK)
    stranger = ensure_cluster_tls(tmp_path / "other", "intruder", LOOPBACK)
    reports = Reports()
    async with replica(node_1) as (address, received):
        async with open_peer_transport(client_ssl_context(stranger), reports) as transport:
            transport.set_peer(1, address)
            snapshot = Snapshot(SnapshotMetadata(1, 1), b"")
            transport.send([Message(MessageType.SNAPSHOT, 1, 9, 1, snapshot=snapshot)])
            await reports.wait_until(lambda: bool(reports.unreachable))
        assert reports.unreachable[0] == 1
        assert reports.snapshots[0] == (1, True)
        assert received.statistics().current_buffer_used == 0


async def test_an_unknown_or_removed_peer_is_reported_unreachable(tmp_path: Path) -> None:
    node_1 = ensure_cluster_tls(tmp_path / "one", "node-1", LOOPBACK)
    reports = Reports()
    async with open_peer_transport(client_ssl_context(node_1), reports) as transport:
        transport.send(appends(1))
        transport.set_peer(2, "127.0.0.1:9")
        transport.remove_peer(2)
        transport.send(appends(1))
        assert reports.unreachable == [2, 2]


async def test_a_peer_that_is_down_is_reported_and_retried(tmp_path: Path) -> None:
    node_1 = ensure_cluster_tls(tmp_path / "one", "node-1", LOOPBACK)
    node_2 = member(node_1, tmp_path / "two", "node-2")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_address = f"127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    reports = Reports()
    transport_context = open_peer_transport(client_ssl_context(node_1), reports, retry_delay_s=0.01)
    async with replica(node_2) as (address, received), transport_context as transport:
        transport.set_peer(2, dead_address)
        transport.send(appends(1))
        await reports.wait_until(lambda: bool(reports.unreachable))
        transport.set_peer(2, address)  # it came back elsewhere
        message = appends(1)[0]
        transport.send([message])
        assert await receive_all(received, 1) == [message]


async def test_bodies_are_checked_frame_by_frame(tmp_path: Path) -> None:
    node_1 = ensure_cluster_tls(tmp_path / "one", "node-1", LOOPBACK)
    node_2 = member(node_1, tmp_path / "two", "node-2")
    client = httpx.AsyncClient(verify=client_ssl_context(node_1))
    async with replica(node_2) as (address, received), client:
        url = f"https://{address}{RAFT_PATH}"
        headers = {"Content-Type": CONTENT_TYPE}

        async def post(body: bytes) -> int:
            return (await client.post(url, content=body, headers=headers)).status_code

        two_frames = encode_frame(appends(2)[:1]) + encode_frame(appends(2)[1:])
        assert await post(two_frames) == 204
        assert await received_now(received, 2) == appends(2)
        garbage = b"\x01garbage"
        assert await post(len(garbage).to_bytes(4, "little") + garbage) == 400
        assert await post(two_frames[:-1]) == 400
        assert await post((2**31).to_bytes(4, "little")) == 413
        assert (await client.get(url)).status_code == 405
        # Everything before the bad frame was delivered, nothing after.
        assert await received_now(received, 1) == appends(2)[:1]
        assert received.statistics().current_buffer_used == 0


async def received_now(stream: MemoryObjectReceiveStream[Message], count: int) -> list[Message]:
    return [stream.receive_nowait() for _ in range(count)]


async def test_closing_the_endpoint_ends_streams_and_refuses_new_ones(tmp_path: Path) -> None:
    node_1 = ensure_cluster_tls(tmp_path / "one", "node-1", LOOPBACK)
    node_2 = member(node_1, tmp_path / "two", "node-2")
    arrived = anyio.Event()

    def deliver(messages: list[Message]) -> None:
        arrived.set()

    router = Router()
    endpoint = mount_raft_endpoint(router, deliver)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    address = f"127.0.0.1:{sock.getsockname()[1]}"
    server = _QuietServer(
        uvicorn_config(
            router,
            log_level="critical",
            http=raft_http_protocol(endpoint),
            **uvicorn_tls_options(node_2),
        )
    )
    client = httpx.AsyncClient(verify=client_ssl_context(node_1))
    transport_context = open_peer_transport(client_ssl_context(node_1), Reports())
    stopped = anyio.Event()

    async def serve() -> None:
        await server.serve([sock])
        stopped.set()

    async with client, transport_context as transport, anyio.create_task_group() as group:
        group.start_soon(serve)
        transport.set_peer(2, address)
        transport.send(appends(1))  # opens a stream (upgraded) that stays open
        with anyio.fail_after(10):
            await arrived.wait()
        assert endpoint.open_requests == 1

        async def chunked_stream() -> None:
            # As a member without the upgrade streams: a chunked POST, read through ASGI.
            async def frames() -> AsyncIterator[bytes]:
                yield encode_frame(appends(1))
                await anyio.sleep_forever()

            with contextlib.suppress(httpx.HTTPError):
                await client.post(
                    f"https://{address}{RAFT_PATH}",
                    content=frames(),
                    headers={"Content-Type": CONTENT_TYPE},
                )

        group.start_soon(chunked_stream)
        with anyio.fail_after(10):  # a guard against hanging, not a timing check
            while endpoint.open_requests < 2:
                await anyio.sleep(0.01)

        endpoint.close()
        with anyio.fail_after(10):  # a guard against hanging, not a timing check
            while endpoint.open_requests:
                await anyio.sleep(0.01)
        refused = await client.post(
            f"https://{address}{RAFT_PATH}", content=encode_frame(appends(1)), headers={}
        )
        assert refused.status_code == 503
        # The listener stops although a peer's stream was open: close() ended the
        # request, and the TLS options bound the wait for the connection to close.
        server.should_exit = True
        with anyio.fail_after(10):  # a guard against hanging, not a timing check
            await stopped.wait()
        group.cancel_scope.cancel()
    sock.close()


async def test_a_peer_that_stops_reading_is_cut_off_and_reported(tmp_path: Path) -> None:
    # It accepts the stream (upgraded), then reads nothing: once the buffers are full
    # and stay full for the timeout, the stream ends and the peer is reported
    # unreachable.
    import asyncio

    node_1 = ensure_cluster_tls(tmp_path / "one", "node-1", LOOPBACK)
    node_2 = member(node_1, tmp_path / "two", "node-2")
    accepted: list[asyncio.BaseTransport] = []

    class Deaf(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted.append(transport)

        def data_received(self, data: bytes) -> None:
            transport = accepted[-1]
            assert isinstance(transport, asyncio.Transport)
            if b"\r\n\r\n" in data:  # the upgrade request: say yes, then stop reading
                transport.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
                transport.pause_reading()

    server = await asyncio.get_running_loop().create_server(
        Deaf, "127.0.0.1", 0, ssl=server_ssl_context(node_2)
    )
    address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    reports = Reports()
    transport_context = open_peer_transport(
        client_ssl_context(node_1), reports, max_queued_messages=1_000_000, timeout_s=0.5
    )
    try:
        async with transport_context as transport:
            transport.set_peer(2, address)
            transport.send(appends(1))
            burst = appends(500)
            for _ in range(300):  # ~45 MB: past the kernel's and the stream's buffers
                await anyio.sleep(0)
                transport.send(burst)
            await reports.wait_until(lambda: bool(reports.unreachable))
        assert reports.unreachable[0] == 2
    finally:
        for accepted_transport in accepted:
            accepted_transport.close()
        server.close()


async def test_a_peer_without_the_stream_upgrade_gets_a_chunked_stream(tmp_path: Path) -> None:
    node_1 = ensure_cluster_tls(tmp_path / "one", "node-1", LOOPBACK)
    node_2 = member(node_1, tmp_path / "two", "node-2")
    reports = Reports()
    # It never answers the upgrade (uvicorn alone reads the request as a POST without
    # a body): after the timeout the sender streams the chunked POST instead.
    transport_context = open_peer_transport(
        client_ssl_context(node_1), reports, timeout_s=0.5, retry_delay_s=0.01
    )
    async with replica(node_2, upgrades=False) as (address, received), transport_context as t:
        t.set_peer(2, address)
        sent = appends(300)
        t.send(sent[:1])
        await reports.wait_until(lambda: bool(reports.unreachable))  # the upgrade failed
        t.send(sent[1:])
        assert await receive_all(received, len(sent) - 1) == sent[1:]


async def test_a_bad_frame_on_an_upgraded_stream_ends_it(tmp_path: Path) -> None:
    import asyncio

    node_1 = ensure_cluster_tls(tmp_path / "one", "node-1", LOOPBACK)
    node_2 = member(node_1, tmp_path / "two", "node-2")
    async with replica(node_2) as (address, received):
        host, port = address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(
            host, int(port), ssl=client_ssl_context(node_1), server_hostname=host
        )
        writer.write(
            f"POST {RAFT_PATH} HTTP/1.1\r\nHost: {address}\r\n"
            f"Connection: Upgrade\r\nUpgrade: mesoslite-raft\r\n\r\n".encode()
        )
        with anyio.fail_after(10):
            answer = await reader.readuntil(b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 101 ")
        garbage = b"\x01garbage"
        writer.write(encode_frame(appends(2)[:1]) + len(garbage).to_bytes(4, "little") + garbage)
        writer.write(encode_frame(appends(2)[1:]))
        with anyio.fail_after(10):
            assert await reader.read() == b""  # the replica closed the stream
        writer.close()
        # Everything before the bad frame was delivered, nothing after.
        assert await received_now(received, 1) == appends(2)[:1]
        assert received.statistics().current_buffer_used == 0
