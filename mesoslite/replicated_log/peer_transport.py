"""Raft messages between replicas over HTTPS with mutual TLS.

A request body to `POST /internal/raft` is a sequence of frames, each `length:u32le`
followed by a batch of messages (`message_codec`). Two kinds of request use it, as in
etcd's rafthttp:

* a stream: one long-lived request per peer whose body never ends; each batch goes out
  as one frame (one chunk of the body) the moment it is sent, with no request or
  response per batch (about a tenth of the latency of a request per batch). The sender
  writes the request on an asyncio TLS connection of its own rather than through httpx:
  `send` then encrypts and writes each frame in the call, with no task hand-off and
  none of httpx's per-chunk layers, about a third of the CPU per message;
* a one-shot request carrying a snapshot, answered 204 once the peer took it, so that
  the Raft node learns whether the snapshot arrived, and appends are not held up behind
  a large body.

A stream starts as an HTTP upgrade (`Connection: Upgrade`, `Upgrade: mesoslite-raft`):
a listener served with `raft_http_protocol(endpoint)` answers 101 and hands the
connection to a plain frame reader that decodes and delivers in the transport's own
callback, past uvicorn, ASGI and starlette (a task hand-off and several layers per
message). A peer that does not answer 101 gets the chunked `POST` instead (a listener
without the protocol: an older member), which the endpoint reads through ASGI.

Receiving: `RaftEndpoint` decodes frames as they arrive and hands each batch to
`deliver`. Mount it on a listener whose TLS context requires a certificate signed by the
cluster CA (`tls.uvicorn_tls_options`), so that only members get through. Streams never
end by themselves: `RaftEndpoint.close()` ends them before the listener stops.

Sending: `open_peer_transport` yields a `PeerTransport`; `send(messages)` never blocks.
A broken stream or a failed snapshot drops what was in flight (Raft resends what
matters), is reported to the Raft node (`report_unreachable`, `report_snapshot`), and
the peer rests `retry_delay_s` before the next attempt so that a peer that is down is
not hammered. Messages for a peer without an open stream (or whose buffers are full)
wait for it, up to `max_queued_messages`; buffers that do not drain for `timeout_s`
end the stream.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import struct
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import httpx
from anyio.abc import TaskGroup
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from mesoslite.raft.messages import Message, MessageType
from mesoslite.replicated_log.message_codec import (
    MessageCodecError,
    decode_messages,
    encode_messages,
)
from mesoslite.wire.routing import Router
from mesoslite.wire.server import http_protocol

__all__ = [
    "CONTENT_TYPE",
    "RAFT_PATH",
    "DeliverMessages",
    "PeerTransport",
    "RaftEndpoint",
    "TransportReports",
    "encode_frame",
    "mount_raft_endpoint",
    "open_peer_transport",
    "raft_http_protocol",
]

log = logging.getLogger(__name__)

RAFT_PATH = "/internal/raft"
CONTENT_TYPE = "application/x-mesoslite-raft"
DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_QUEUED_MESSAGES = 4096
DEFAULT_RETRY_DELAY_S = 0.1
DEFAULT_TIMEOUT_S = 10.0
# A stream whose unsent bytes pass this holds further frames back (they wait, up to the
# queue limit, for the buffer to drain).
_WRITE_BUFFER_HIGH_BYTES = 4 * 1024 * 1024

_FRAME_LENGTH = struct.Struct("<I")

DeliverMessages = Callable[[list[Message]], None]
RAFT_UPGRADE = "mesoslite-raft"
_SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
    b"Upgrade: " + RAFT_UPGRADE.encode() + b"\r\n\r\n"
)
_MAX_ANSWER_HEAD_BYTES = 16 * 1024


def encode_frame(messages: list[Message]) -> bytes:
    batch = encode_messages(messages)
    return _FRAME_LENGTH.pack(len(batch)) + batch


# ---------------------------------------------------------------------- receiving


class RaftEndpoint:
    """The `POST /internal/raft` endpoint (a `mesoslite.wire.routing.Endpoint`)."""

    def __init__(
        self, deliver: DeliverMessages, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    ) -> None:
        self._deliver = deliver
        self._max_frame_bytes = max_frame_bytes
        self._open_requests: set[anyio.CancelScope] = set()
        self._upgraded: set[_FrameReader] = set()
        self._closed = False

    @property
    def open_requests(self) -> int:
        """Streams being received now (upgraded or not) and other requests."""
        return len(self._open_requests) + len(self._upgraded)

    def close(self) -> None:
        """End every open stream (answered 503, or closed once upgraded) and refuse new
        ones."""
        self._closed = True
        for scope in self._open_requests:
            scope.cancel()
        for reader in list(self._upgraded):
            reader.close()

    def upgrade(self, transport: asyncio.Transport, method: str, url: bytes) -> None:
        """Take over a connection whose request asked for `Upgrade: mesoslite-raft`."""
        if url.split(b"?", 1)[0] != RAFT_PATH.encode() or method != "POST":
            transport.write(_plain_answer(404, "no raft stream here"))
            transport.close()
            return
        if self._closed:
            transport.write(_plain_answer(503, "this replica is shutting down"))
            transport.close()
            return
        transport.write(_SWITCHING)
        reader = _FrameReader(self)
        transport.set_protocol(reader)
        reader.connection_made(transport)

    async def __call__(self, request: Request) -> Response:
        if self._closed:
            return _text_response(503, "this replica is shutting down")
        with anyio.CancelScope() as scope:
            self._open_requests.add(scope)
            try:
                return await self._receive_frames(request)
            except ClientDisconnect:
                return Response(status_code=204)  # the sender went away; nobody reads this
            finally:
                self._open_requests.discard(scope)
        return _text_response(503, "this replica is shutting down")

    async def _receive_frames(self, request: Request) -> Response:
        buffer = bytearray()
        async for chunk in request.stream():
            buffer += chunk
            while len(buffer) >= _FRAME_LENGTH.size:
                (frame_bytes,) = _FRAME_LENGTH.unpack_from(buffer)
                if frame_bytes > self._max_frame_bytes:
                    return _text_response(413, f"frame of {frame_bytes} bytes is too large")
                end = _FRAME_LENGTH.size + frame_bytes
                if len(buffer) < end:
                    break
                try:
                    messages = decode_messages(bytes(buffer[_FRAME_LENGTH.size : end]))
                except MessageCodecError as error:
                    return _text_response(400, str(error))
                del buffer[:end]
                self._deliver(messages)
        if buffer:
            return _text_response(400, f"body ends inside a frame ({len(buffer)} bytes left)")
        return Response(status_code=204)


class _FrameReader(asyncio.Protocol):
    """An upgraded stream's receiving end: length-prefixed frames, no HTTP framing,
    each batch delivered in the callback that completed it. A bad or oversized frame
    ends the stream (the sender reconnects)."""

    def __init__(self, endpoint: RaftEndpoint) -> None:
        self._endpoint = endpoint
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._endpoint._upgraded.add(self)

    def data_received(self, data: bytes) -> None:
        buffer: bytes | bytearray
        if self._buffer:
            self._buffer += data
            buffer = self._buffer
        else:
            buffer = data
        endpoint = self._endpoint
        offset = 0
        size = len(buffer)
        # Every frame completed by this read is delivered in one call (one Ready).
        messages: list[Message] = []
        failure = ""
        while size - offset >= _FRAME_LENGTH.size:
            (frame_bytes,) = _FRAME_LENGTH.unpack_from(buffer, offset)
            if frame_bytes > endpoint._max_frame_bytes:
                failure = f"frame of {frame_bytes} bytes is too large"
                break
            end = offset + _FRAME_LENGTH.size + frame_bytes
            if size < end:
                break
            try:
                messages += decode_messages(bytes(buffer[offset + _FRAME_LENGTH.size : end]))
            except MessageCodecError as error:
                failure = str(error)
                break
            offset = end
        if messages:
            try:
                endpoint._deliver(messages)
            except Exception:
                log.exception("delivering raft messages failed")
        if failure:
            self._fail(failure)
            return
        if buffer is self._buffer:
            del self._buffer[:offset]
        elif offset < size:
            self._buffer += buffer[offset:]

    def connection_lost(self, exc: Exception | None) -> None:
        self._endpoint._upgraded.discard(self)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _fail(self, reason: str) -> None:
        log.warning("raft stream ended: %s", reason)
        self._buffer.clear()
        if self._transport is not None:
            self._transport.abort()


def raft_http_protocol(endpoint: RaftEndpoint) -> type[asyncio.Protocol]:
    """The uvicorn protocol class (`http=` option) for the listener that serves
    `endpoint`: httptools' protocol, handing streams that ask for the raft upgrade to
    `endpoint`. Without httptools, the plain protocol: peers then stream through ASGI."""
    base = http_protocol()
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return base
    upgrade_token = RAFT_UPGRADE.encode()

    class RaftUpgradingProtocol(HttpToolsProtocol):
        def _should_upgrade(self) -> bool:
            return self._get_upgrade() == upgrade_token or super()._should_upgrade()

        def handle_websocket_upgrade(self) -> None:
            if self._get_upgrade() != upgrade_token:
                super().handle_websocket_upgrade()
                return
            self.connections.discard(self)  # ours now: RaftEndpoint.close() ends it
            endpoint.upgrade(self.transport, self.scope["method"], self.url)

    return RaftUpgradingProtocol


def _plain_answer(status_code: int, text: str) -> bytes:
    body = text.encode()
    return (
        f"HTTP/1.1 {status_code} {text}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def _text_response(status_code: int, text: str) -> Response:
    # Closing the connection is what tells a streaming sender, which only writes and
    # reads no response until its body ends, that the stream is over.
    return Response(
        text.encode(), status_code, media_type="text/plain", headers={"Connection": "close"}
    )


def mount_raft_endpoint(
    router: Router, deliver: DeliverMessages, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> RaftEndpoint:
    """Serve the endpoint on `router`; returns it, to `close()` before shutdown."""
    endpoint = RaftEndpoint(deliver, max_frame_bytes=max_frame_bytes)
    router.add(RAFT_PATH, endpoint, methods=("POST",))
    return endpoint


# ---------------------------------------------------------------------- sending


class TransportReports(Protocol):
    """What the transport tells the Raft node (`RawNode` has both methods)."""

    def report_unreachable(self, to_id: int) -> None: ...

    def report_snapshot(self, to_id: int, *, failed: bool) -> None: ...


@dataclass(slots=True)
class _Outbox:
    """Messages waiting for one of a peer's senders."""

    messages: list[Message] = field(default_factory=list)
    wakeup: anyio.Event = field(default_factory=anyio.Event)

    def put(self, message: Message) -> None:
        self.messages.append(message)
        self.wakeup.set()

    async def take_all(self) -> list[Message]:
        while not self.messages:
            await self.wakeup.wait()
            self.wakeup = anyio.Event()
        batch, self.messages = self.messages, []
        return batch


class _Stream(asyncio.Protocol):
    """The sending side of one stream on a TLS connection of its own: upgraded (frames
    as they are) or, where the peer does not upgrade, one `POST RAFT_PATH` whose chunked
    body never ends. `write_frame` puts a frame on the wire at once (TLS and the socket
    write happen in the call). Once streaming, the peer only ever answers to end the
    stream (503 while closing, 4xx for a bad frame), so any answer, like the loss of the
    connection, ends it."""

    def __init__(self, changed: Callable[[], None]) -> None:
        self._changed = changed
        self._transport: asyncio.Transport | None = None
        self.ended = False
        self.paused = False  # the kernel and TLS buffers are full: hold frames back
        self.reason = ""
        self.upgraded = False
        # The status of the answer to the upgrade request (None: the connection ended).
        self.answer: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._answer_head: bytearray | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.set_write_buffer_limits(high=_WRITE_BUFFER_HIGH_BYTES)

    def ask_upgrade(self, head: bytes) -> None:
        self._answer_head = bytearray()
        self.write(head)

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self.ended:
            self._transport.write(data)

    def write_frame(self, messages: list[Message]) -> None:
        frame = encode_frame(messages)
        self.write(frame if self.upgraded else b"%x\r\n%b\r\n" % (len(frame), frame))

    def data_received(self, data: bytes) -> None:
        head = self._answer_head
        if head is None:
            self._end(data.split(b"\r\n", 1)[0].decode("latin-1", "replace") or "an answer")
            return
        head += data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > _MAX_ANSWER_HEAD_BYTES:
                self._answered(None)
                self._end("the answer to the upgrade is too long")
            return
        self._answer_head = None
        status_line = bytes(head[: head.find(b"\r\n")]).decode("latin-1", "replace")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status == 101 and end + 4 == len(head):
            self.upgraded = True
            self._answered(101)
            return
        self._answered(status)
        self._end(f"upgrade answered: {status_line}")

    def eof_received(self) -> bool:
        self._end("closed by the peer")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(f"{type(exc).__name__}: {exc}" if exc is not None else "connection closed")

    def pause_writing(self) -> None:
        self.paused = True
        self._changed()

    def resume_writing(self) -> None:
        self.paused = False
        self._changed()

    def abort(self, reason: str) -> None:
        self._end(reason)

    def _answered(self, status: int | None) -> None:
        if not self.answer.done():
            self.answer.set_result(status)

    def _end(self, reason: str) -> None:
        if not self.ended:
            self.ended = True
            self.reason = reason
            self._answered(None)
            if self._transport is not None:
                self._transport.abort()
            self._changed()


@dataclass(slots=True)
class _Peer:
    node_id: int
    address: str
    # Ask for the upgrade (until the peer fails to answer it: then chunked POSTs).
    upgrade: bool = True
    # Waiting for a stream: none is open yet, or its buffers are full.
    pending: list[Message] = field(default_factory=list)
    wakeup: anyio.Event = field(default_factory=anyio.Event)
    stream: _Stream | None = None
    snapshots: _Outbox = field(default_factory=_Outbox)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    def wake(self) -> None:
        self.wakeup.set()

    @property
    def url(self) -> str:
        return f"https://{self.address}{RAFT_PATH}"


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class PeerTransport:
    """Use through `open_peer_transport`; call from the event loop only."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        ssl_context: ssl.SSLContext,
        task_group: TaskGroup,
        reports: TransportReports,
        *,
        max_queued_messages: int,
        retry_delay_s: float,
        timeout_s: float,
    ) -> None:
        self._client = client
        self._ssl_context = ssl_context
        self._task_group = task_group
        self._reports = reports
        self._max_queued_messages = max_queued_messages
        self._retry_delay_s = retry_delay_s
        self._timeout_s = timeout_s
        self._peers: dict[int, _Peer] = {}

    def set_peer(self, node_id: int, address: str) -> None:
        """Send to `node_id` at `address` ("host:port"; IPv6 hosts in brackets) from now
        on; the address must be one the peer's certificate names."""
        peer = self._peers.get(node_id)
        if peer is None:
            peer = _Peer(node_id, address)
            self._peers[node_id] = peer
            self._task_group.start_soon(self._run_peer, peer, name=f"raft peer {node_id}")
        elif peer.address != address:
            peer.address = address
            if peer.stream is not None:
                peer.stream.abort(f"the peer moved to {address}")  # reconnect there

    def remove_peer(self, node_id: int) -> None:
        """Stop sending to `node_id`; what is queued for it is dropped."""
        peer = self._peers.pop(node_id, None)
        if peer is not None:
            peer.scope.cancel()
            if peer.stream is not None:
                peer.stream.abort("the peer was removed")

    def send(self, messages: Iterable[Message]) -> None:
        """Put messages on their peers' streams (`to_id`) now, one frame per peer;
        never blocks. A peer without an open stream gets them once it has one.
        Messages to unknown peers, or beyond a peer's queue limit, are dropped and
        reported unreachable."""
        batches: dict[int, list[Message]] = {}
        for message in messages:
            to_id = message.to_id
            peer = self._peers.get(to_id)
            if peer is None:
                self._report_failure(to_id, [message])
            elif message.type == MessageType.SNAPSHOT:
                if len(peer.snapshots.messages) >= self._max_queued_messages:
                    self._report_failure(to_id, [message])
                else:
                    peer.snapshots.put(message)
            else:
                batch = batches.get(to_id)
                if batch is None:
                    batches[to_id] = [message]
                else:
                    batch.append(message)
        for to_id, batch in batches.items():
            peer = self._peers[to_id]
            stream = peer.stream
            if stream is not None and not stream.paused and not stream.ended and not peer.pending:
                stream.write_frame(batch)
                continue
            room = self._max_queued_messages - len(peer.pending)
            if room < len(batch):
                self._report_failure(to_id, batch[max(room, 0) :])
                batch = batch[: max(room, 0)]
            if batch:
                peer.pending.extend(batch)
                peer.wake()

    async def _run_peer(self, peer: _Peer) -> None:
        with peer.scope:
            async with anyio.create_task_group() as group:
                group.start_soon(self._run_stream, peer)
                group.start_soon(self._run_snapshots, peer)

    async def _run_stream(self, peer: _Peer) -> None:
        while True:
            while not peer.pending:  # connect only with something to send
                await peer.wakeup.wait()
                peer.wakeup = anyio.Event()
            failure = await self._stream_once(peer)
            log.debug("raft stream to peer %d at %s ended: %s", peer.node_id, peer.url, failure)
            # What was in flight is lost (Raft resends what matters); so is what waited
            # for this stream. The peer rests before the next attempt.
            lost, peer.pending = peer.pending, []
            self._report_failure(peer.node_id, lost)
            await anyio.sleep(self._retry_delay_s)

    async def _stream_once(self, peer: _Peer) -> str:
        """Open a stream, keep it fed until it ends; returns why it ended."""
        host, port = _split_address(peer.address)
        loop = asyncio.get_running_loop()
        stream = _Stream(peer.wake)
        try:
            with anyio.fail_after(self._timeout_s):
                await loop.create_connection(
                    lambda: stream, host, port, ssl=self._ssl_context, server_hostname=host
                )
        except (OSError, TimeoutError, ssl.SSLError, ValueError) as error:
            return f"connecting: {type(error).__name__}: {error}"
        try:
            if peer.upgrade:
                stream.ask_upgrade(
                    (
                        f"POST {RAFT_PATH} HTTP/1.1\r\nHost: {peer.address}\r\n"
                        f"Connection: Upgrade\r\nUpgrade: {RAFT_UPGRADE}\r\n\r\n"
                    ).encode("latin-1")
                )
                status: int | None = None
                timed_out = True
                with anyio.move_on_after(self._timeout_s):
                    status = await stream.answer
                    timed_out = False
                if status != 101:
                    if timed_out or (status is not None and status != 503):
                        # It does not know the upgrade (an older member): stream the
                        # chunked POST from the next attempt on.
                        log.info("raft peer %d takes no stream upgrade", peer.node_id)
                        peer.upgrade = False
                    return stream.reason or "no answer to the stream upgrade"
            else:
                stream.write(
                    (
                        f"POST {RAFT_PATH} HTTP/1.1\r\nHost: {peer.address}\r\n"
                        f"Content-Type: {CONTENT_TYPE}\r\nTransfer-Encoding: chunked\r\n\r\n"
                    ).encode("latin-1")
                )
            peer.stream = stream
            while True:
                peer.wakeup = anyio.Event()
                if stream.ended:
                    return stream.reason
                if peer.pending and not stream.paused:
                    batch, peer.pending = peer.pending, []
                    stream.write_frame(batch)
                    continue
                # Full buffers that do not drain for this long mean the peer is gone.
                with anyio.move_on_after(self._timeout_s if stream.paused else math.inf):
                    await peer.wakeup.wait()
                    continue
                stream.abort(f"no write progress in {self._timeout_s} s")
        finally:
            peer.stream = None
            stream.abort("the stream's sender stopped")

    async def _run_snapshots(self, peer: _Peer) -> None:
        while True:
            for message in await peer.snapshots.take_all():
                failure = await self._post(peer, encode_frame([message]))
                if failure is None:
                    self._reports.report_snapshot(peer.node_id, failed=False)
                    continue
                log.warning("raft snapshot to peer %d failed: %s", peer.node_id, failure)
                self._report_failure(peer.node_id, [message])
                await anyio.sleep(self._retry_delay_s)

    async def _post(self, peer: _Peer, content: bytes) -> str | None:
        """Send one request; None when the peer answered 204, else what went wrong."""
        try:
            response = await self._client.post(
                peer.url, content=content, headers={"Content-Type": CONTENT_TYPE}
            )
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"
        if response.status_code != 204:
            return f"{response.status_code} {response.text[:200]}"
        return None

    def _report_failure(self, node_id: int, lost: list[Message]) -> None:
        self._reports.report_unreachable(node_id)
        for message in lost:
            if message.type == MessageType.SNAPSHOT:
                self._reports.report_snapshot(node_id, failed=True)


@asynccontextmanager
async def open_peer_transport(
    ssl_context: ssl.SSLContext,
    reports: TransportReports,
    *,
    max_queued_messages: int = DEFAULT_MAX_QUEUED_MESSAGES,
    retry_delay_s: float = DEFAULT_RETRY_DELAY_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> AsyncIterator[PeerTransport]:
    """A transport whose peer tasks live until exit. `ssl_context` is the node's
    client context (`tls.client_ssl_context`)."""
    client = httpx.AsyncClient(
        verify=ssl_context,
        # A snapshot write that cannot proceed for this long means the peer is gone.
        timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(max_keepalive_connections=None, max_connections=None),
    )
    async with client, anyio.create_task_group() as task_group:
        transport = PeerTransport(
            client,
            ssl_context,
            task_group,
            reports,
            max_queued_messages=max_queued_messages,
            retry_delay_s=retry_delay_s,
            timeout_s=timeout_s,
        )
        try:
            yield transport
        finally:
            task_group.cancel_scope.cancel()
