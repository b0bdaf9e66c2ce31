"""EventStream behind a real uvicorn server, seen from a raw socket: with the protocol
the listeners use (httptools) and with the h11 fallback.

pymesos opens its SUBSCRIBE stream with a hand-written HTTP/1.1 request that says
`Connection: close` and rejects any 200 that is not chunked (spec sections 0.1, 1.3).
These tests send exactly that request and read the response byte by byte.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from mesoslite.proto import scheduler_pb2
from mesoslite.wire.http import EventStream, accepted, read_call
from mesoslite.wire.media import JSON
from mesoslite.wire.recordio import RecordIODecoder
from mesoslite.wire.routing import Router
from mesoslite.wire.server import ChunkedH11Protocol, uvicorn_config

# Generous safety nets so that a broken server fails the test instead of hanging it;
# nothing below asserts on how long anything takes.
SOCKET_TIMEOUT = 20.0


@dataclass
class Streams:
    """The subscriber streams the test server has opened, shared with the test thread."""

    opened: list[EventStream] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)


def make_app(streams: Streams) -> Router:
    router = Router(["/master"])

    async def scheduler(request: Request) -> Response:
        call, _ = await read_call(request, scheduler_pb2.Call, "Call")
        stream = EventStream(JSON, {"Mesos-Stream-Id": "stream-1"})
        stream.on_close(streams.closed.set)
        stream.send(
            scheduler_pb2.Event(
                type=scheduler_pb2.Event.SUBSCRIBED,
                subscribed={
                    "framework_id": call.subscribe.framework_info.id,
                    "heartbeat_interval_seconds": 15,
                },
            )
        )
        streams.opened.append(stream)
        return stream.response()

    async def push(request: Request) -> Response:
        # Runs on the server's loop: the only place the stream may be fed from.
        command = request.query_params["do"]
        stream = streams.opened[-1]
        if command == "heartbeat":
            stream.send(scheduler_pb2.Event(type=scheduler_pb2.Event.HEARTBEAT))
        elif command == "error":
            stream.send(scheduler_pb2.Event(type=scheduler_pb2.Event.ERROR, error={"message": "é"}))
        elif command == "close":
            stream.close()
        return accepted()

    router.add("/api/v1/scheduler", scheduler, prefix=True, methods=["POST"])
    router.add("/push", push, methods=["POST"])
    return router


@dataclass
class Server:
    port: int
    streams: Streams


@pytest.fixture(params=["default", "h11"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    streams = Streams()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # Listening before the server thread starts: early connections wait in the backlog
    # instead of being refused while uvicorn is still starting.
    sock.listen(64)
    port = sock.getsockname()[1]
    options = {"http": ChunkedH11Protocol} if request.param == "h11" else {}
    config = uvicorn_config(
        make_app(streams), log_level="warning", timeout_graceful_shutdown=5, **options
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield Server(port, streams)
    finally:
        uv.should_exit = True
        thread.join(SOCKET_TIMEOUT)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not shut down"


SUBSCRIBE_BODY = json.dumps(
    {
        "type": "SUBSCRIBE",
        "subscribe": {"framework_info": {"user": "alice", "name": "fw", "id": {"value": "f-1"}}},
        "framework_id": {"value": "f-1"},
    }
).encode()


def pymesos_subscribe(port: int, path: str = "/api/v1/scheduler", version: str = "1.1") -> bytes:
    # Byte for byte what pymesos' Process sends (process.py), but the body.
    return (
        f"POST {path} HTTP/{version}\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
        f"Connection: close\r\nContent-Length: {len(SUBSCRIBE_BODY)}\r\n\r\n"
    ).encode() + SUBSCRIBE_BODY


def read_head(reader: BinaryIO) -> tuple[str, dict[str, str]]:
    status = reader.readline().decode("latin-1").rstrip("\r\n")
    headers: dict[str, str] = {}
    while True:
        line = reader.readline().decode("latin-1").rstrip("\r\n")
        if not line:
            return status, headers
        name, _, value = line.partition(":")
        assert name.lower() not in headers, f"duplicate header {name}"
        headers[name.lower()] = value.strip()


def read_chunk(reader: BinaryIO) -> bytes:
    size_line = reader.readline()
    assert size_line.endswith(b"\r\n"), f"bad chunk size line {size_line!r}"
    size = int(size_line.split(b";")[0], 16)
    data = reader.read(size)
    assert reader.read(2) == b"\r\n"
    return data


def post(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=SOCKET_TIMEOUT)
    try:
        connection.request("POST", path, body=b"")
        response = connection.getresponse()
        response.read()
        assert response.getheader("Content-Length") is not None
        return response.status
    finally:
        connection.close()


def open_stream(
    server: Server, path: str = "/api/v1/scheduler", version: str = "1.1"
) -> tuple[socket.socket, BinaryIO]:
    client = socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT)
    client.sendall(pymesos_subscribe(server.port, path, version))
    return client, client.makefile("rb")


def test_pymesos_subscribe_gets_a_chunked_stream_one_record_per_chunk(server: Server) -> None:
    client, reader = open_stream(server)
    with client, reader:
        status, headers = read_head(reader)
        assert status == "HTTP/1.1 200 OK"
        assert headers["transfer-encoding"] == "chunked"
        assert "content-length" not in headers
        assert headers["content-type"] == "application/json"
        assert headers["mesos-stream-id"] == "stream-1"

        decoder = RecordIODecoder()
        # The SUBSCRIBED record is a whole chunk on its own, readable before anything
        # else is sent: the server flushed it.
        (subscribed,) = decoder.feed(read_chunk(reader))
        assert json.loads(subscribed)["subscribed"]["framework_id"] == {"value": "f-1"}
        assert decoder.at_boundary

        # Another call on another connection is answered while the stream is open, and
        # each event it triggers arrives as its own chunk.
        assert post(server.port, "/push?do=heartbeat") == 202
        assert decoder.feed(read_chunk(reader)) == [b'{"type":"HEARTBEAT"}']
        assert post(server.port, "/push?do=error") == 202
        payload = b'{"type":"ERROR","error":{"message":"\\u00e9"}}'  # ASCII-only JSON
        assert read_chunk(reader) == b"%d\n%s" % (len(payload), payload)

        assert post(server.port, "/push?do=close") == 202
        assert read_chunk(reader) == b""  # the last chunk (no trailers)
        assert reader.read() == b""  # Connection: close honoured after the stream ends
    assert server.streams.closed.wait(SOCKET_TIMEOUT)


def test_stream_through_the_process_id_alias(server: Server) -> None:
    client, reader = open_stream(server, "/master/api/v1/scheduler")
    with client, reader:
        status, headers = read_head(reader)
        assert status == "HTTP/1.1 200 OK"
        assert headers["transfer-encoding"] == "chunked"
        assert read_chunk(reader)


def test_client_disconnect_is_detected_while_idle(server: Server) -> None:
    client, reader = open_stream(server)
    with client, reader:
        read_head(reader)
        read_chunk(reader)
    assert server.streams.closed.wait(SOCKET_TIMEOUT)
    stream = server.streams.opened[-1]
    assert stream.closed
    # Sending to a gone subscriber reports it instead of queueing forever.
    assert post(server.port, "/push?do=heartbeat") == 202
    assert not stream.send(scheduler_pb2.Event(type=scheduler_pb2.Event.HEARTBEAT))


def test_errors_before_the_stream_have_a_content_length(server: Server) -> None:
    client = socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT)
    reader = client.makefile("rb")
    with client, reader:
        body = b'{"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "x"}}}'
        client.sendall(
            b"POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        status, headers = read_head(reader)
        assert status.startswith("HTTP/1.1 400")
        text = reader.read(int(headers["content-length"]))
        assert text == (
            b"Failed to convert JSON into Call protobuf: "
            b"Missing required fields: subscribe.framework_info.user"
        )
        assert "transfer-encoding" not in headers


def test_http_1_0_subscribe_is_chunked_too(server: Server) -> None:
    # h11 alone would answer an HTTP/1.0 client with a close-delimited body; libprocess
    # chunks regardless, and so do httptools' protocol and ChunkedH11Protocol.
    client, reader = open_stream(server, version="1.0")
    with client, reader:
        status, headers = read_head(reader)
        assert status == "HTTP/1.1 200 OK"
        assert headers["transfer-encoding"] == "chunked"
        assert "content-length" not in headers
        assert RecordIODecoder().feed(read_chunk(reader))
        assert post(server.port, "/push?do=close") == 202
        assert read_chunk(reader) == b""
        assert reader.read() == b""


def test_http_1_0_plain_response_keeps_content_length(server: Server) -> None:
    client = socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT)
    reader = client.makefile("rb")
    with client, reader:
        client.sendall(b"GET /nowhere HTTP/1.0\r\n\r\n")
        status, headers = read_head(reader)
        assert status.startswith("HTTP/1.1 404")
        assert "transfer-encoding" not in headers
        assert reader.read() == b"Not Found"
        assert headers["content-length"] == "9"
