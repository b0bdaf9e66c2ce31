"""Raft messages between replicas over HTTPS with mutual TLS.

A request body to `POST /internal/raft` is a sequence of frames, each `length:u32le`
followed by a batch of messages (`message_codec`). Two kinds of request use it, as in
etcd's rafthttp:

* a stream: one long-lived request per peer whose body never ends; each batch goes out
  as one frame the moment it is queued, with no request or response per batch (about a
  tenth of the latency of a request per batch);
* a one-shot request carrying a snapshot, answered 204 once the peer took it, so that
  the Raft node learns whether the snapshot arrived, and appends are not held up behind
  a large body.

Receiving: `RaftEndpoint` decodes frames as they arrive and hands each batch to
`deliver`. Mount it on a listener whose TLS context requires a certificate signed by the
cluster CA (`tls.uvicorn_tls_options`), so that only members get through. Streams never
end by themselves: `RaftEndpoint.close()` ends them before the listener stops.

Sending: `open_peer_transport` yields a `PeerTransport`; `send(messages)` never blocks.
A broken stream or a failed snapshot drops what was in flight (Raft resends what
matters), is reported to the Raft node (`report_unreachable`, `report_snapshot`), and
the peer rests `retry_delay_s` before the next attempt so that a peer that is down is
not hammered.
"""

from __future__ import annotations

import logging
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
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
]

log = logging.getLogger(__name__)

RAFT_PATH = "/internal/raft"
CONTENT_TYPE = "application/x-mesoslite-raft"
DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_QUEUED_MESSAGES = 4096
DEFAULT_RETRY_DELAY_S = 0.1
DEFAULT_TIMEOUT_S = 10.0

_FRAME_LENGTH = struct.Struct("<I")

DeliverMessages = Callable[[list[Message]], Awaitable[None]]


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
        self._closed = False

    @property
    def open_requests(self) -> int:
        """Requests being received now (mostly peers' streams)."""
        return len(self._open_requests)

    def close(self) -> None:
        """End every open stream (answered 503) and refuse new ones."""
        self._closed = True
        for scope in self._open_requests:
            scope.cancel()

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
                await self._deliver(messages)
        if buffer:
            return _text_response(400, f"body ends inside a frame ({len(buffer)} bytes left)")
        return Response(status_code=204)


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


@dataclass(slots=True)
class _Peer:
    node_id: int
    url: str
    stream: _Outbox = field(default_factory=_Outbox)
    snapshots: _Outbox = field(default_factory=_Outbox)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    stream_scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)


class PeerTransport:
    """Use through `open_peer_transport`; call from the event loop only."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        task_group: TaskGroup,
        reports: TransportReports,
        *,
        max_queued_messages: int,
        retry_delay_s: float,
    ) -> None:
        self._client = client
        self._task_group = task_group
        self._reports = reports
        self._max_queued_messages = max_queued_messages
        self._retry_delay_s = retry_delay_s
        self._peers: dict[int, _Peer] = {}

    def set_peer(self, node_id: int, address: str) -> None:
        """Send to `node_id` at `address` ("host:port"; IPv6 hosts in brackets) from now
        on; the address must be one the peer's certificate names."""
        url = f"https://{address}{RAFT_PATH}"
        peer = self._peers.get(node_id)
        if peer is None:
            peer = _Peer(node_id, url)
            self._peers[node_id] = peer
            self._task_group.start_soon(self._run_peer, peer, name=f"raft peer {node_id}")
        elif peer.url != url:
            peer.url = url
            peer.stream_scope.cancel()  # reconnect to the new address

    def remove_peer(self, node_id: int) -> None:
        """Stop sending to `node_id`; what is queued for it is dropped."""
        peer = self._peers.pop(node_id, None)
        if peer is not None:
            peer.scope.cancel()

    def send(self, messages: Iterable[Message]) -> None:
        """Queue messages for their peers (`to_id`); never blocks. Messages to unknown
        peers, or beyond a peer's queue limit, are dropped and reported unreachable."""
        for message in messages:
            peer = self._peers.get(message.to_id)
            outbox = None
            if peer is not None:
                outbox = peer.snapshots if message.type == MessageType.SNAPSHOT else peer.stream
            if outbox is None or len(outbox.messages) >= self._max_queued_messages:
                self._report_failure(message.to_id, [message])
                continue
            outbox.put(message)

    async def _run_peer(self, peer: _Peer) -> None:
        with peer.scope:
            async with anyio.create_task_group() as group:
                group.start_soon(self._run_stream, peer)
                group.start_soon(self._run_snapshots, peer)

    async def _run_stream(self, peer: _Peer) -> None:
        pending: list[Message] = []
        while True:
            if not pending:
                pending = await peer.stream.take_all()  # connect only with something to send
            pending = await self._stream_once(peer, pending)

    async def _stream_once(self, peer: _Peer, first: list[Message]) -> list[Message]:
        """Keep one stream open, starting with `first`, until it breaks (reported; the
        batch in flight is dropped) or the peer moves (the batch in flight is returned,
        to go first on the next stream: a duplicate does Raft no harm)."""
        in_flight = first

        async def frames() -> AsyncIterator[bytes]:
            nonlocal in_flight
            yield encode_frame(in_flight)
            while True:
                in_flight = await peer.stream.take_all()
                yield encode_frame(in_flight)

        peer.stream_scope = anyio.CancelScope()
        with peer.stream_scope:
            failure = await self._post(peer, frames())
            log.debug("raft stream to peer %d at %s ended: %s", peer.node_id, peer.url, failure)
            self._report_failure(peer.node_id, in_flight)
            await anyio.sleep(self._retry_delay_s)
            return []
        return in_flight

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

    async def _post(self, peer: _Peer, content: bytes | AsyncIterator[bytes]) -> str | None:
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
        # A write that cannot proceed for this long means the peer is gone (a stream
        # otherwise only waits between frames, which no timeout covers).
        timeout=httpx.Timeout(timeout_s),
        # Each peer keeps at most a stream and a snapshot request open.
        limits=httpx.Limits(max_keepalive_connections=None, max_connections=None),
    )
    async with client, anyio.create_task_group() as task_group:
        transport = PeerTransport(
            client,
            task_group,
            reports,
            max_queued_messages=max_queued_messages,
            retry_delay_s=retry_delay_s,
        )
        try:
            yield transport
        finally:
            task_group.cancel_scope.cancel()
