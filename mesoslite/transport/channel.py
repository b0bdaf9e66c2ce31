"""The seam between a master and its agents.

A `Channel` is one connection between an agent and the master: a stream of
messages each way. The master serves each connection with `AgentServer.serve_agent`;
the agent obtains one from a `MasterConnector`. Inside `mesoslite up` both ends live
in one process (`InProcessConnector`); between processes the same messages travel
over HTTP (`mesoslite.transport.http`). A fault injector wraps a `Channel`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Generic, Protocol, TypeVar

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mesoslite.proto import internal_pb2

__all__ = [
    "AgentChannel",
    "AgentServer",
    "Channel",
    "ChannelClosed",
    "InProcessConnector",
    "MasterChannel",
    "MasterConnector",
    "MemoryChannel",
    "memory_channel_pair",
]

SendT = TypeVar("SendT", contravariant=True)
RecvT = TypeVar("RecvT", covariant=True)
S = TypeVar("S")
R = TypeVar("R")


class ChannelClosed(Exception):
    """The other end went away; nothing more can be sent on this channel."""


class Channel(Protocol[SendT, RecvT]):
    """One connection: `send` one way, iterate the other. Iteration ends when the peer
    closes; `send` raises `ChannelClosed` once the connection is gone."""

    @property
    def peer(self) -> str:
        """A human-readable name of the other end (for logs and state)."""
        ...

    async def send(self, message: SendT) -> None: ...

    def __aiter__(self) -> AsyncIterator[RecvT]: ...

    async def aclose(self) -> None: ...


# The master's end of an agent connection, and the agent's end.
MasterChannel = Channel[internal_pb2.MasterToAgent, internal_pb2.AgentToMaster]
AgentChannel = Channel[internal_pb2.AgentToMaster, internal_pb2.MasterToAgent]


class AgentServer(Protocol):
    """Implemented by the master: serve one agent connection until it ends."""

    async def serve_agent(self, channel: MasterChannel) -> None: ...


class MasterConnector(Protocol):
    """Implemented by transports: how an agent reaches its (leading) master."""

    async def connect(self) -> AgentChannel: ...


class MemoryChannel(Generic[S, R]):
    """A channel end over anyio memory streams (unbounded: neither side may block the
    other's event processing)."""

    def __init__(
        self,
        send_stream: MemoryObjectSendStream[S],
        receive_stream: MemoryObjectReceiveStream[R],
        peer: str,
    ) -> None:
        self._send = send_stream
        self._receive = receive_stream
        self._peer = peer

    @property
    def peer(self) -> str:
        return self._peer

    def send_nowait(self, message: S) -> None:
        """Queue a message (never waits: the streams are unbounded)."""
        try:
            self._send.send_nowait(message)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            raise ChannelClosed(self._peer) from exc

    async def send(self, message: S) -> None:
        self.send_nowait(message)

    async def __aiter__(self) -> AsyncIterator[R]:
        # What is already queued is taken without a trip through the loop per message
        # (a receive() yields first even when it has something); only an empty queue
        # waits.
        receive = self._receive
        try:
            while True:
                try:
                    message = receive.receive_nowait()
                except anyio.WouldBlock:
                    message = await receive.receive()
                yield message
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return

    async def aclose(self) -> None:
        self._send.close()
        self._receive.close()


def memory_channel_pair(
    a_name: str, b_name: str
) -> tuple[MemoryChannel[S, R], MemoryChannel[R, S]]:
    """Two connected ends: the first sends S and receives R; the second the reverse.
    `a_name` names the first end (it is the second end's peer) and vice versa."""
    a_to_b_send, a_to_b_recv = anyio.create_memory_object_stream[S](float("inf"))
    b_to_a_send, b_to_a_recv = anyio.create_memory_object_stream[R](float("inf"))
    first: MemoryChannel[S, R] = MemoryChannel(a_to_b_send, b_to_a_recv, peer=b_name)
    second: MemoryChannel[R, S] = MemoryChannel(b_to_a_send, a_to_b_recv, peer=a_name)
    return first, second


class InProcessConnector:
    """Connects an agent to a master in the same process. Each `connect` starts the
    master's `serve_agent` for the new connection in the given task group."""

    def __init__(self, master: AgentServer, task_group: TaskGroup, agent_name: str) -> None:
        self._master = master
        self._task_group = task_group
        self._agent_name = agent_name

    async def connect(self) -> AgentChannel:
        pair: tuple[
            MemoryChannel[internal_pb2.AgentToMaster, internal_pb2.MasterToAgent],
            MemoryChannel[internal_pb2.MasterToAgent, internal_pb2.AgentToMaster],
        ] = memory_channel_pair(self._agent_name, "master")
        agent_end, master_end = pair
        self._task_group.start_soon(self._serve, master_end)
        return agent_end

    async def _serve(
        self, channel: MemoryChannel[internal_pb2.MasterToAgent, internal_pb2.AgentToMaster]
    ) -> None:
        try:
            await self._master.serve_agent(channel)
        finally:
            await channel.aclose()
