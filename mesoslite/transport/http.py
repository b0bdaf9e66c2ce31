"""Master <-> agent channels over HTTP, for agents in another process or machine.

One connection is two kinds of request on the master's listener:

* `POST /master/internal/agent/connect` opens it: a 200 response that never ends
  (chunked), carrying the master's messages as RecordIO records of serialized
  `MasterToAgent`, and a `Mesoslite-Connection-Id` header naming the connection.
* `POST /master/internal/agent/message` with that header carries agent messages: a
  body of RecordIO records of serialized `AgentToMaster`, answered 202 (404 once the
  connection is gone, which tells the agent to reconnect).

The connection ends when either side ends the stream: the agent closes it, or the
master's `serve_agent` returns. Agent messages are batched: while one POST is in flight
the next ones queue and leave together, so a burst of status updates costs few requests.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mesoslite.proto import internal_pb2
from mesoslite.transport.channel import AgentChannel, AgentServer, ChannelClosed
from mesoslite.wire.errors import HttpError, WireError
from mesoslite.wire.http import accepted
from mesoslite.wire.recordio import RecordIODecoder, encode_record
from mesoslite.wire.routing import Router

__all__ = [
    "AGENT_HEADER",
    "CONNECTION_HEADER",
    "CONNECT_PATH",
    "MESSAGE_PATH",
    "HttpAgentChannel",
    "HttpMasterConnector",
    "mount_agent_transport",
]

log = logging.getLogger(__name__)

CONNECT_PATH = "/master/internal/agent/connect"
MESSAGE_PATH = "/master/internal/agent/message"
CONNECTION_HEADER = "Mesoslite-Connection-Id"
# The agent's own address, so that the master can name the connection's peer.
AGENT_HEADER = "Mesoslite-Agent"
_STREAM_CONTENT_TYPE = "application/recordio"
# For everything but reading the master's stream, which stays open indefinitely.
_REQUEST_TIMEOUT_S = 10.0
_MESSAGE_CONTENT_TYPE = "application/x-protobuf"


# ---------------------------------------------------------------------- master side


class _MasterEnd:
    """The master's end of one HTTP agent connection (a `MasterChannel`)."""

    def __init__(self, peer: str) -> None:
        self._peer = peer
        self._out_send, self._out_receive = anyio.create_memory_object_stream[bytes](math.inf)
        self._in_send, self._in_receive = anyio.create_memory_object_stream[
            internal_pb2.AgentToMaster
        ](math.inf)

    @property
    def peer(self) -> str:
        return self._peer

    async def send(self, message: internal_pb2.MasterToAgent) -> None:
        try:
            self._out_send.send_nowait(encode_record(message.SerializeToString()))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            raise ChannelClosed(self._peer) from exc

    async def __aiter__(self) -> AsyncIterator[internal_pb2.AgentToMaster]:
        try:
            async for message in self._in_receive:
                yield message
        except anyio.ClosedResourceError:
            return

    async def aclose(self) -> None:
        self.end_outgoing()
        self.end_incoming()

    # -- transport internals

    def deliver(self, message: internal_pb2.AgentToMaster) -> bool:
        try:
            self._in_send.send_nowait(message)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    def end_incoming(self) -> None:
        self._in_send.close()

    def end_outgoing(self) -> None:
        self._out_send.close()

    def outgoing(self) -> AsyncIterator[bytes]:
        return self._out_receive.__aiter__()


class _AgentTransport:
    def __init__(self, server: AgentServer) -> None:
        self._server = server
        self._connections: dict[str, _MasterEnd] = {}

    async def connect(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Raw ASGI: the response is the master's message stream for one connection."""
        if scope["method"] != "POST":
            response = Response(
                "Expecting 'POST'",
                status_code=405,
                headers={"Allow": "POST"},
                media_type="text/plain",
            )
            await response(scope, receive, send)
            return
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope["headers"]
        }
        client = scope.get("client")
        peer = headers.get(AGENT_HEADER.lower()) or (
            f"{client[0]}:{client[1]}" if client else "agent"
        )
        connection_id = uuid.uuid4().hex
        channel = _MasterEnd(peer)
        self._connections[connection_id] = channel
        served = anyio.Event()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", _STREAM_CONTENT_TYPE.encode()),
                        (b"message-content-type", _MESSAGE_CONTENT_TYPE.encode()),
                        (CONNECTION_HEADER.lower().encode(), connection_id.encode()),
                    ],
                }
            )
            async with anyio.create_task_group() as group:

                async def serve() -> None:
                    try:
                        await self._server.serve_agent(channel)
                    finally:
                        channel.end_outgoing()
                        served.set()

                async def watch_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    # The agent went away: end its messages, so serve_agent returns.
                    channel.end_incoming()
                    channel.end_outgoing()

                group.start_soon(serve)
                group.start_soon(watch_disconnect)
                try:
                    async for record in channel.outgoing():
                        await send(
                            {"type": "http.response.body", "body": record, "more_body": True}
                        )
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                except OSError:
                    pass  # the client is gone
                channel.end_incoming()
                await served.wait()
                group.cancel_scope.cancel()
        finally:
            self._connections.pop(connection_id, None)
            channel.end_incoming()
            channel.end_outgoing()

    async def message(self, request: Request) -> Response:
        connection_id = request.headers.get(CONNECTION_HEADER)
        channel = self._connections.get(connection_id or "")
        if channel is None:
            raise HttpError(404, "Unknown agent connection")
        body = await request.body()
        decoder = RecordIODecoder()
        try:
            records = decoder.feed(body)
            decoder.close()
        except WireError as error:
            raise HttpError(400, f"Malformed message body: {error.message}") from None
        for record in records:
            message = internal_pb2.AgentToMaster()
            try:
                message.ParseFromString(record)
            except Exception:
                raise HttpError(400, "Malformed AgentToMaster message") from None
            if not channel.deliver(message):
                raise HttpError(404, "Agent connection closed")
        return accepted()


def mount_agent_transport(router: Router, server: AgentServer) -> None:
    """Serve HTTP agent connections on the master's router."""
    transport = _AgentTransport(server)
    try:
        router.mount(CONNECT_PATH, transport.connect)
    except ValueError:
        # `/master` is the router's process alias: the bare paths also serve the
        # prefixed ones.
        router.mount(CONNECT_PATH.removeprefix("/master"), transport.connect)
        router.add(MESSAGE_PATH.removeprefix("/master"), transport.message, methods=["POST"])
    else:
        router.add(MESSAGE_PATH, transport.message, methods=["POST"])


# ---------------------------------------------------------------------- agent side


class HttpAgentChannel:
    """The agent's end of an HTTP connection to the master (an `AgentChannel`)."""

    def __init__(
        self, client: httpx.AsyncClient, stream: httpx.Response, connection_id: str, peer: str
    ) -> None:
        self._client = client
        self._stream = stream
        self._connection_id = connection_id
        self._peer = peer
        self._pending: list[bytes] = []
        self._send_lock = anyio.Lock()
        self._closed = False
        self._messages: AsyncIterator[internal_pb2.MasterToAgent] | None = None

    @property
    def peer(self) -> str:
        return self._peer

    async def send(self, message: internal_pb2.AgentToMaster) -> None:
        if self._closed:
            raise ChannelClosed(self._peer)
        self._pending.append(encode_record(message.SerializeToString()))
        async with self._send_lock:
            if self._closed:
                raise ChannelClosed(self._peer)
            if not self._pending:
                return  # an earlier sender took this message along in its batch
            batch, self._pending = self._pending, []
            try:
                response = await self._client.post(
                    MESSAGE_PATH,
                    timeout=_REQUEST_TIMEOUT_S,
                    content=b"".join(batch),
                    headers={
                        CONNECTION_HEADER: self._connection_id,
                        "Content-Type": _STREAM_CONTENT_TYPE,
                        "Message-Content-Type": _MESSAGE_CONTENT_TYPE,
                    },
                )
            except httpx.HTTPError as exc:
                await self._fail(f"sending to the master failed: {exc}")
                raise ChannelClosed(self._peer) from exc
            if response.status_code != 202:
                await self._fail(f"the master answered {response.status_code}: {response.text}")
                raise ChannelClosed(self._peer)

    async def __aiter__(self) -> AsyncIterator[internal_pb2.MasterToAgent]:
        # Iterating again (after a loop that stopped early) resumes the same stream.
        if self._messages is None:
            self._messages = self._read()
        async for message in self._messages:
            yield message

    async def _read(self) -> AsyncIterator[internal_pb2.MasterToAgent]:
        decoder = RecordIODecoder()
        try:
            async for chunk in self._stream.aiter_raw():
                for record in decoder.feed(chunk):
                    message = internal_pb2.MasterToAgent()
                    message.ParseFromString(record)
                    yield message
        except (httpx.HTTPError, WireError, anyio.ClosedResourceError) as exc:
            if not self._closed:
                log.info("connection to the master lost: %s", exc)
        finally:
            self._closed = True

    async def _fail(self, reason: str) -> None:
        log.info("%s; dropping the connection", reason)
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()
            await self._client.aclose()


class HttpMasterConnector:
    """Reaches the master at `master` ("host:port" or "http://host:port")."""

    def __init__(self, master: str, *, agent_endpoint: str | None = None) -> None:
        self._base_url = master if "://" in master else f"http://{master}"
        self._agent_endpoint = agent_endpoint

    async def connect(self) -> AgentChannel:
        client = httpx.AsyncClient(
            base_url=self._base_url,
            timeout=httpx.Timeout(_REQUEST_TIMEOUT_S, read=None),
            # The message stream stays open indefinitely; POSTs need their own
            # connections beside it.
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
        )
        headers = {"Accept": _STREAM_CONTENT_TYPE}
        if self._agent_endpoint is not None:
            headers[AGENT_HEADER] = self._agent_endpoint
        try:
            request = client.build_request("POST", CONNECT_PATH, headers=headers, content=b"")
            stream = await client.send(request, stream=True)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await client.aclose()
            if isinstance(exc, httpx.TransportError):
                raise ConnectionError(f"{self._base_url}: {exc}") from exc
            raise
        connection_id = stream.headers.get(CONNECTION_HEADER)
        location = stream.headers.get("location")
        if stream.status_code == 307 and location:
            # Not the leader: try the one it names next time (Location is `//host:port`).
            netloc = urlsplit(location if "//" in location else f"//{location}").netloc
            if netloc:
                self._base_url = f"http://{netloc}"
        if stream.status_code != 200 or not connection_id:
            body = (await stream.aread()).decode("utf-8", "replace")[:200]
            await stream.aclose()
            await client.aclose()
            raise ConnectionError(
                f"the master refused the connection ({stream.status_code}): {body}"
            )
        return HttpAgentChannel(client, stream, connection_id, peer=self._base_url)
