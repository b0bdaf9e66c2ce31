"""The light HTTP/1.1 call client against scripted servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import httpx
import pytest

from mesoslite.client.http11 import CallPool

pytestmark = pytest.mark.anyio

Handler = Callable[[anyio.abc.SocketStream, bytes], Awaitable[bool]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _read_request(stream: anyio.abc.SocketStream, buffer: bytearray) -> bytes | None:
    """One request (head and Content-Length body), or None at the end of the stream."""
    while b"\r\n\r\n" not in buffer:
        try:
            buffer += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return None
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(buffer) < end + length:
        buffer += await stream.receive()
    request = bytes(buffer[: end + length])
    del buffer[: end + length]
    return request


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[tuple[int, list[int]]]:
    """A server answering each request with `handler` (False: close the connection).
    Yields its port and a list with one entry per accepted connection."""
    connections: list[int] = []

    async def client(stream: anyio.abc.SocketStream) -> None:
        connections.append(1)
        buffer = bytearray()
        async with stream:
            while (request := await _read_request(stream, buffer)) is not None:
                if not await handler(stream, request):
                    return

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, client)
        try:
            yield port, connections
        finally:
            group.cancel_scope.cancel()


def _answer(status: str, body: bytes, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith("transfer-encoding") for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def test_keeps_the_connection_alive_and_sends_the_headers() -> None:
    seen: list[bytes] = []

    async def handler(stream: anyio.abc.SocketStream, request: bytes) -> bool:
        seen.append(request)
        await stream.send(_answer("202 Accepted", b""))
        return True

    async with serve(handler) as (port, connections):
        pool = CallPool("127.0.0.1", port, timeout_s=5)
        for _ in range(3):
            response = await pool.post("/api/v1/scheduler", b"abc", {"Mesos-Stream-Id": "s1"})
            assert response.status_code == 202
        await pool.aclose()
    assert len(connections) == 1
    head, _, body = seen[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /api/v1/scheduler HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}".encode() in head
    assert b"Mesos-Stream-Id: s1" in head
    assert b"Content-Length: 3" in head
    assert body == b"abc"


async def test_reads_chunked_and_close_delimited_bodies() -> None:
    answers = [
        _answer("400 Bad Request", b"", "Transfer-Encoding: chunked")[:-4]
        + b"\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nTrailer: 1\r\n\r\n",
        b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\nboom",
    ]

    async def handler(stream: anyio.abc.SocketStream, request: bytes) -> bool:
        answer = answers.pop(0)
        await stream.send(answer)
        return b"Connection: close" not in answer

    async with serve(handler) as (port, connections):
        pool = CallPool("127.0.0.1", port, timeout_s=5)
        first = await pool.post("/", b"", {})
        assert (first.status_code, first.text) == (400, "hello world")
        second = await pool.post("/", b"", {})
        assert (second.status_code, second.text) == (500, "boom")
        await pool.aclose()
    assert len(connections) == 1


async def test_a_kept_alive_connection_the_server_closed_is_retried_once() -> None:
    served = 0

    async def handler(stream: anyio.abc.SocketStream, request: bytes) -> bool:
        nonlocal served
        served += 1
        await stream.send(_answer("202 Accepted", b""))
        return False  # closes after answering, without saying so

    async with serve(handler) as (port, connections):
        pool = CallPool("127.0.0.1", port, timeout_s=5)
        assert (await pool.post("/", b"", {})).status_code == 202
        await anyio.sleep(0.05)  # the close reaches us
        assert (await pool.post("/", b"", {})).status_code == 202
        await pool.aclose()
    assert served == 2
    assert len(connections) == 2


async def test_a_new_connection_closed_without_an_answer_is_an_error() -> None:
    async def handler(stream: anyio.abc.SocketStream, request: bytes) -> bool:
        return False

    async with serve(handler) as (port, _):
        pool = CallPool("127.0.0.1", port, timeout_s=5)
        with pytest.raises(httpx.RemoteProtocolError):
            await pool.post("/", b"", {})
        await pool.aclose()


async def test_connections_idle_too_long_are_not_reused() -> None:
    async def handler(stream: anyio.abc.SocketStream, request: bytes) -> bool:
        await stream.send(_answer("200 OK", b"x"))
        return True

    async with serve(handler) as (port, connections):
        pool = CallPool("127.0.0.1", port, timeout_s=5, idle_s=0.01)
        await pool.post("/", b"", {})
        await anyio.sleep(0.05)
        await pool.post("/", b"", {})
        await pool.aclose()
    assert len(connections) == 2


async def test_timeout_and_connect_errors_are_httpx_errors() -> None:
    async def handler(stream: anyio.abc.SocketStream, request: bytes) -> bool:
        await anyio.sleep(10)
        return False

    async with serve(handler) as (port, _):
        pool = CallPool("127.0.0.1", port, timeout_s=0.1)
        with pytest.raises(httpx.ReadTimeout):
            await pool.post("/", b"", {})
        await pool.aclose()
    with pytest.raises(httpx.ConnectError):
        await CallPool("127.0.0.1", port, timeout_s=1).post("/", b"", {})


async def test_at_most_max_connections_are_busy() -> None:
    busy = peak = 0

    async def handler(stream: anyio.abc.SocketStream, request: bytes) -> bool:
        nonlocal busy, peak
        busy += 1
        peak = max(peak, busy)
        await anyio.sleep(0.01)
        busy -= 1
        await stream.send(_answer("202 Accepted", b""))
        return True

    async with serve(handler) as (port, connections):
        pool = CallPool("127.0.0.1", port, timeout_s=5, max_connections=3)
        async with anyio.create_task_group() as group:
            for _ in range(12):
                group.start_soon(pool.post, "/", b"", {})
        await pool.aclose()
    assert peak == 3
    assert len(connections) == 3


def test_only_plain_http_base_urls_get_a_pool() -> None:
    assert CallPool.for_url("http://127.0.0.1:5050", timeout_s=1) is not None
    assert CallPool.for_url("https://127.0.0.1:5050", timeout_s=1) is None
    assert CallPool.for_url("http://127.0.0.1:5050/prefix", timeout_s=1) is None
