"""HTTP building blocks for the Mesos APIs: errors, plain responses, call bodies, streams.

Every non-streaming response has a Content-Length (pymesos keeps its connection alive
and blocks otherwise, spec section 0.6); event streams never have one and are chunked
(section 0.1).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import anyio
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mesoslite.wire.errors import HttpError
from mesoslite.wire.media import (
    JSON,
    PROTOBUF,
    RECORDIO,
    decode_message,
    encode_message,
    request_content_type,
)
from mesoslite.wire.recordio import encode_record

__all__ = [
    "EventStream",
    "HttpError",
    "accepted",
    "error_response",
    "json_response",
    "message_response",
    "read_call",
]

M = TypeVar("M", bound=Message)

log = logging.getLogger(__name__)


def error_response(error: HttpError) -> Response:
    """Mesos' error answer: the status code and a plain-text reason."""
    return Response(
        error.message, status_code=error.status, headers=error.headers, media_type="text/plain"
    )


def message_response(message: Message, content_type: str, status: int = 200) -> Response:
    """A protobuf message as the whole body, encoded per `content_type` (JSON/protobuf)."""
    return Response(
        encode_message(message, content_type), status_code=status, media_type=content_type
    )


def _finite(value: Any) -> Any:
    # Python's json writes bare Infinity/NaN, which is not JSON; strings survive parsers.
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def json_response(obj: Any, status: int = 200) -> Response:
    """Compact ASCII JSON of plain Python values, for the legacy (non-v1) endpoints."""
    try:
        body = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a non-finite float somewhere: rare, so only then walk the tree
        body = json.dumps(_finite(obj), separators=(",", ":"), allow_nan=False)
    return Response(body.encode("ascii"), status_code=status, media_type=JSON)


def accepted() -> Response:
    """202 with an empty body and `Content-Length: 0`."""
    return Response(b"", status_code=202)


async def read_call(request: Request, message_type: type[M], what: str) -> tuple[M, str]:
    """Validate and parse an API call body (spec 1.2 steps 4-6).

    Returns the message and the request's media type (JSON or PROTOBUF). Raises HttpError
    405 (with `Allow: POST`), 400 or 415 with Mesos' messages.
    """
    if request.method != "POST":
        raise HttpError(
            405,
            f"Expecting one of {{ 'POST' }}, but received '{request.method}'",
            headers={"Allow": "POST"},
        )
    content_type = request.headers.get("content-type")
    kind = request_content_type(content_type)  # before reading a body we would refuse
    body = await request.body()
    return decode_message(body, content_type, message_type, what), kind


class EventStream:
    """One subscriber's event stream: a chunked 200 response fed by `send()`.

    `send()` is synchronous and never blocks: it encodes the event, frames it as a
    RecordIO record and queues it; the response (once served) writes each record as
    its own chunk. A slow reader therefore never holds up the master's loop or other
    requests. Call `send()`/`close()` from the event loop thread.

    content_type: the message encoding (JSON or PROTOBUF), which is also the response's
    Content-Type, as for the scheduler, executor and operator SUBSCRIBE calls. Pass
    RECORDIO together with `message_content_type` for the agent's streaming calls: the
    response then says `Content-Type: application/recordio` and `Message-Content-Type`.

    max_buffered_bytes: if set, a subscriber that falls this far behind is cut off (the
    stream closes without the backlog), so it cannot grow the queue without bound.
    """

    def __init__(
        self,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        *,
        message_content_type: str | None = None,
        max_buffered_bytes: int | None = None,
    ) -> None:
        response_headers = dict(headers or {})
        if content_type == RECORDIO:
            if message_content_type not in (JSON, PROTOBUF):
                raise ValueError("a RecordIO stream needs message_content_type JSON or protobuf")
            self._encoding = message_content_type
            response_headers["Message-Content-Type"] = message_content_type
        elif content_type in (JSON, PROTOBUF):
            self._encoding = content_type
        else:
            raise ValueError(f"cannot stream '{content_type}'")
        self._content_type = content_type
        self._headers = response_headers
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._max_buffered = max_buffered_bytes
        self._closed = False
        self._finished = False
        self._wakeup: anyio.Event | None = None
        self._callbacks: list[Callable[[], None]] = []

    @property
    def closed(self) -> bool:
        """True once close() was called or the client went away: send() then fails."""
        return self._closed

    @property
    def content_type(self) -> str:
        """The encoding of each record (JSON or PROTOBUF)."""
        return self._encoding

    def send(self, message: Message) -> bool:
        """Queue one event; False if the stream is closed (the subscriber is gone)."""
        if self._closed:
            return False
        return self.send_encoded(encode_message(message, self._encoding))

    def send_encoded(self, payload: bytes) -> bool:
        """Queue an already encoded event (encode once, fan out to many subscribers)."""
        if self._closed:
            return False
        record = encode_record(payload)
        self._queue.append(record)
        self._queued_bytes += len(record)
        if self._max_buffered is not None and self._queued_bytes > self._max_buffered:
            log.warning("event stream subscriber fell %d bytes behind; closing", self._queued_bytes)
            self._queue.clear()
            self._queued_bytes = 0
            self.close()
            return False
        self._wake()
        return True

    def close(self) -> None:
        """End the response once the queued records are written."""
        self._closed = True
        self._wake()

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run `callback` once, when the client disconnects or the response has ended.

        Runs immediately if that already happened.
        """
        if self._finished:
            callback()
        else:
            self._callbacks.append(callback)

    def response(self) -> Response:
        """The streaming response to return from the endpoint (serve it once)."""
        return _EventStreamResponse(self)

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _finish(self) -> None:
        if self._finished:
            return
        self._closed = True
        self._finished = True
        self._queue.clear()
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("event stream on_close callback failed")

    async def _pump(self, send: Send) -> None:
        queue = self._queue
        while True:
            while queue:
                record = queue.popleft()
                self._queued_bytes -= len(record)
                # One record per chunk, written as soon as it is queued: one client can
                # only act on a record once the next one's length line has arrived.
                await send({"type": "http.response.body", "body": record, "more_body": True})
            if self._closed:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            self._wakeup = anyio.Event()
            await self._wakeup.wait()
            self._wakeup = None

    def _raw_headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", self._content_type.encode("latin-1"))]
        headers += [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self._headers.items()
        ]
        return headers

    async def _serve(
        self, headers: list[tuple[bytes, bytes]], receive: Receive, send: Send
    ) -> None:
        try:
            # No Content-Length: the server then frames the body as chunked (HTTP/1.1).
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async with anyio.create_task_group() as group:

                async def watch_disconnect() -> None:
                    # The stream is otherwise write-only: without reading, an idle stream
                    # would never learn that its client went away.
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    self._closed = True
                    group.cancel_scope.cancel()

                group.start_soon(watch_disconnect)
                # Servers on ASGI spec >= 2.4 report a gone client as OSError from send().
                with contextlib.suppress(OSError):
                    await self._pump(send)
                group.cancel_scope.cancel()
        finally:
            self._finish()


class _EventStreamResponse(Response):
    """Starlette Response wrapper so that endpoints can return the stream as usual."""

    def __init__(self, stream: EventStream) -> None:
        # Deliberately skips Response.__init__: it would add a Content-Length. Headers
        # stay editable through `response.headers` until the response is served.
        self.status_code = 200
        self.background = None
        self.body = b""
        self.raw_headers = stream._raw_headers()
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._stream._serve(self.raw_headers, receive, send)
