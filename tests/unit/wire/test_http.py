"""HTTP helpers: error/plain responses, call parsing, and EventStream driven over ASGI."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import anyio
import pytest
from starlette.requests import Request

from mesoslite.wire.http import (
    EventStream,
    HttpError,
    accepted,
    error_response,
    json_response,
    message_response,
    read_call,
)
from mesoslite.wire.media import JSON, PROTOBUF, RECORDIO
from mesoslite.wire.recordio import RecordIODecoder


def header(raw: list[tuple[bytes, bytes]], name: str) -> str | None:
    values = [v.decode() for k, v in raw if k.decode().lower() == name]
    assert len(values) <= 1
    return values[0] if values else None


def test_error_response_is_plain_text_with_length() -> None:
    response = error_response(HttpError(405, "nope", headers={"Allow": "POST"}))
    assert response.status_code == 405
    assert response.body == b"nope"
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-length"] == "4"
    assert response.headers["allow"] == "POST"


def test_accepted_is_empty_with_zero_length() -> None:
    response = accepted()
    assert response.status_code == 202
    assert response.body == b""
    assert response.headers["content-length"] == "0"


def test_message_response(pb: ModuleType) -> None:
    response = message_response(pb.Everything(i64=1), JSON)
    assert (response.status_code, response.body) == (200, b'{"i64":1}')
    assert response.headers["content-type"] == JSON
    assert response.headers["content-length"] == "9"
    response = message_response(pb.Everything(i64=1), PROTOBUF, status=201)
    assert response.status_code == 201
    assert response.headers["content-type"] == PROTOBUF


def test_json_response_is_compact_ascii_and_valid_json() -> None:
    response = json_response({"a": [1, 2.0], "b": "é", "c": math.inf})
    assert response.body == b'{"a":[1,2.0],"b":"\\u00e9","c":"Infinity"}'
    assert response.headers["content-type"] == JSON
    assert response.headers["content-length"] == str(len(response.body))


def make_request(method: str, headers: dict[str, str], body: bytes) -> Request:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": method,
        "path": "/api/v1/scheduler",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "query_string": b"",
    }
    return Request(scope, receive)


def call(method: str, headers: dict[str, str], body: bytes, pb_type: type) -> Any:
    async def run() -> Any:
        return await read_call(make_request(method, headers, body), pb_type, "Call")

    return anyio.run(run)


def test_read_call_json_and_protobuf(pb: ModuleType) -> None:
    message, kind = call("POST", {"Content-Type": JSON}, b'{"text":"x"}', pb.Everything)
    assert (message, kind) == (pb.Everything(text="x"), JSON)
    body = pb.Everything(i32=4).SerializeToString()
    message, kind = call("POST", {"Content-Type": PROTOBUF}, body, pb.Everything)
    assert (message.i32, kind) == (4, PROTOBUF)


@pytest.mark.parametrize(
    ("method", "headers", "body", "status"),
    [
        ("GET", {"Content-Type": JSON}, b"{}", 405),
        ("PUT", {}, b"", 405),
        ("POST", {}, b"{}", 400),
        ("POST", {"Content-Type": "text/plain"}, b"{}", 415),
        ("POST", {"Content-Type": JSON}, b"{", 400),
        ("POST", {"Content-Type": JSON}, b'{"i32":"x"}', 400),
    ],
)
def test_read_call_errors(
    pb: ModuleType, method: str, headers: dict[str, str], body: bytes, status: int
) -> None:
    with pytest.raises(HttpError) as info:
        call(method, headers, body, pb.Everything)
    assert info.value.status == status
    if status == 405:
        assert info.value.headers == {"Allow": "POST"}


# ---------------------------------------------------------------- EventStream over ASGI


class Client:
    """Plays the server side of ASGI for one streamed response."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.gone = anyio.Event()
        self.received = anyio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.received.set()

    async def next_message(self) -> dict[str, Any]:
        while len(self.messages) < 1:
            self.received = anyio.Event()
            await self.received.wait()
        return self.messages.pop(0)


def serve(stream: EventStream, client: Client) -> Any:
    response = stream.response()
    return lambda: response({"type": "http", "method": "POST"}, client.receive, client.send)


def test_event_stream_writes_one_record_per_chunk(pb: ModuleType) -> None:
    stream = EventStream(JSON, {"Mesos-Stream-Id": "abc"})
    closed: list[str] = []
    stream.on_close(lambda: closed.append("closed"))
    client = Client()

    async def main() -> None:
        assert stream.send(pb.Everything(text="first"))  # queued before the response runs
        async with anyio.create_task_group() as group:
            group.start_soon(serve(stream, client))
            start = await client.next_message()
            assert start["status"] == 200
            assert header(start["headers"], "content-type") == JSON
            assert header(start["headers"], "mesos-stream-id") == "abc"
            assert header(start["headers"], "content-length") is None
            first = await client.next_message()
            assert first == {
                "type": "http.response.body",
                "body": b'16\n{"text":"first"}',
                "more_body": True,
            }
            # Each later event becomes its own chunk as soon as it is sent.
            assert stream.send(pb.Everything(i64=2))
            assert (await client.next_message())["body"] == b'9\n{"i64":2}'
            assert stream.send_encoded(b"{}")
            assert (await client.next_message())["body"] == b"2\n{}"
            stream.send(pb.Everything(text="last"))
            stream.close()
            assert stream.closed
            assert not stream.send(pb.Everything())
            assert (await client.next_message())["body"] == b'15\n{"text":"last"}'
            assert await client.next_message() == {
                "type": "http.response.body",
                "body": b"",
                "more_body": False,
            }
        assert closed == ["closed"]

    anyio.run(main)
    late: list[int] = []
    stream.on_close(lambda: late.append(1))  # already finished: runs at once
    assert late == [1]


def test_event_stream_detects_disconnect_while_idle(pb: ModuleType) -> None:
    stream = EventStream(JSON)
    closed: list[str] = []
    stream.on_close(lambda: closed.append("closed"))
    client = Client()

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(serve(stream, client))
            await client.next_message()
            client.gone.set()
        assert closed == ["closed"]
        assert stream.closed
        assert not stream.send(pb.Everything())

    anyio.run(main)


def test_event_stream_protobuf_records(pb: ModuleType) -> None:
    stream = EventStream(PROTOBUF)
    client = Client()

    async def main() -> None:
        stream.send(pb.Everything(i32=7))
        stream.close()
        await serve(stream, client)()

    anyio.run(main)
    assert header(client.messages[0]["headers"], "content-type") == PROTOBUF
    body = b"".join(m.get("body", b"") for m in client.messages[1:])
    (record,) = RecordIODecoder().feed(body)
    assert pb.Everything.FromString(record).i32 == 7


def test_event_stream_recordio_semantics(pb: ModuleType) -> None:
    stream = EventStream(RECORDIO, message_content_type=JSON)
    client = Client()

    async def main() -> None:
        stream.send(pb.Everything(i32=7))
        stream.close()
        await serve(stream, client)()

    anyio.run(main)
    headers = client.messages[0]["headers"]
    assert header(headers, "content-type") == RECORDIO
    assert header(headers, "message-content-type") == JSON
    assert client.messages[1]["body"] == b'9\n{"i32":7}'


def test_event_stream_rejects_other_types() -> None:
    with pytest.raises(ValueError):
        EventStream("text/plain")
    with pytest.raises(ValueError):
        EventStream(RECORDIO)


def test_event_stream_cuts_off_a_subscriber_that_falls_behind(pb: ModuleType) -> None:
    stream = EventStream(JSON, max_buffered_bytes=30)
    assert stream.send(pb.Everything(text="0123456789"))
    assert not stream.send(pb.Everything(text="0123456789"))
    assert stream.closed
