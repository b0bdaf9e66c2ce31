"""Raft messages between replicas over HTTPS with mutual TLS.

Receiving: `RaftEndpoint` serves `POST /internal/raft` (mount it on a listener whose TLS
context requires a certificate signed by the cluster CA, e.g. `uvicorn_tls_options`, so
only members get through): the body is a batch of messages (`message_codec`), handed to
`deliver` and answered 204 once handed over.

Sending: `open_peer_transport` yields a `PeerTransport`; `send(messages)` never blocks:
it queues each message for its peer. One task per peer posts whatever is queued as one
batch, so while a request is in flight the next messages gather into the next batch. A
failed post drops its batch (Raft resends what matters) and is reported to the Raft
node (`report_unreachable`, and `report_snapshot` for snapshots), then the peer rests
for `retry_delay_s` so that a peer that is down is not hammered.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import httpx
from anyio.abc import TaskGroup
from starlette.requests import Request
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
    "mount_raft_endpoint",
    "open_peer_transport",
]

log = logging.getLogger(__name__)

RAFT_PATH = "/internal/raft"
CONTENT_TYPE = "application/x-mesoslite-raft"
DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_QUEUED_MESSAGES = 4096
DEFAULT_RETRY_DELAY_S = 0.1
DEFAULT_TIMEOUT_S = 10.0

DeliverMessages = Callable[[list[Message]], Awaitable[None]]


# ---------------------------------------------------------------------- receiving


class RaftEndpoint:
    """The `POST /internal/raft` endpoint (a `mesoslite.wire.routing.Endpoint`)."""

    def __init__(
        self, deliver: DeliverMessages, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> None:
        self._deliver = deliver
        self._max_body_bytes = max_body_bytes

    async def __call__(self, request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self._max_body_bytes:
                return Response(b"Raft message batch too large", 413, media_type="text/plain")
        try:
            messages = decode_messages(bytes(body))
        except MessageCodecError as error:
            return Response(str(error).encode(), 400, media_type="text/plain")
        await self._deliver(messages)
        return Response(status_code=204)


def mount_raft_endpoint(
    router: Router, deliver: DeliverMessages, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> None:
    router.add(RAFT_PATH, RaftEndpoint(deliver, max_body_bytes=max_body_bytes), methods=("POST",))


# ---------------------------------------------------------------------- sending


class TransportReports(Protocol):
    """What the transport tells the Raft node (`RawNode` has both methods)."""

    def report_unreachable(self, to_id: int) -> None: ...

    def report_snapshot(self, to_id: int, *, failed: bool) -> None: ...


@dataclass(slots=True)
class _Peer:
    node_id: int
    url: str
    queue: list[Message] = field(default_factory=list)
    wakeup: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)


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
        if peer is not None:
            peer.url = url
            return
        peer = _Peer(node_id, url)
        self._peers[node_id] = peer
        self._task_group.start_soon(self._run_peer, peer, name=f"raft peer {node_id}")

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
            if peer is None or len(peer.queue) >= self._max_queued_messages:
                self._report_failure(message.to_id, [message])
                continue
            peer.queue.append(message)
            peer.wakeup.set()

    async def _run_peer(self, peer: _Peer) -> None:
        with peer.scope:
            while True:
                if not peer.queue:
                    await peer.wakeup.wait()
                    peer.wakeup = anyio.Event()
                    continue
                batch, peer.queue = peer.queue, []
                if await self._post(peer, batch):
                    for message in batch:
                        if message.type == MessageType.SNAPSHOT:
                            self._reports.report_snapshot(peer.node_id, failed=False)
                else:
                    self._report_failure(peer.node_id, batch)
                    await anyio.sleep(self._retry_delay_s)

    async def _post(self, peer: _Peer, batch: list[Message]) -> bool:
        try:
            response = await self._client.post(
                peer.url, content=encode_messages(batch), headers={"Content-Type": CONTENT_TYPE}
            )
        except httpx.HTTPError as error:
            log.debug("raft peer %d at %s: %s", peer.node_id, peer.url, error)
            return False
        if response.status_code != 204:
            log.warning(
                "raft peer %d at %s answered %d: %s",
                peer.node_id,
                peer.url,
                response.status_code,
                response.text[:200],
            )
            return False
        return True

    def _report_failure(self, node_id: int, batch: list[Message]) -> None:
        self._reports.report_unreachable(node_id)
        for message in batch:
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
        timeout=httpx.Timeout(timeout_s),
        # Each peer task keeps one request in flight: no pool limit is needed.
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
