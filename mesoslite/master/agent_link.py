"""One agent connection as the master uses it: sends never wait.

The master changes its state synchronously and then queues what the agent must hear;
a sender task drains the queue into the channel. A message queued on a connection that
is going away is dropped, as Mesos drops messages to a broken link: the agent
re-registers and the master re-syncs it from its report.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import anyio

from mesoslite.proto import internal_pb2
from mesoslite.transport.channel import ChannelClosed, MasterChannel

__all__ = ["AgentLink"]


class AgentLink:
    def __init__(self, channel: MasterChannel) -> None:
        self.channel = channel
        # Set once the agent on the other end has (re)registered.
        self.agent_id: str | None = None
        self._outbox, self._pending = anyio.create_memory_object_stream[internal_pb2.MasterToAgent](
            math.inf
        )
        self._closed = False
        # A channel whose sends never wait (in-process) takes messages directly: no
        # queue and no sender task between the master and the agent.
        self._send_nowait: Callable[[internal_pb2.MasterToAgent], None] | None = getattr(
            channel, "send_nowait", None
        )

    @property
    def peer(self) -> str:
        return self.channel.peer

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, message: internal_pb2.MasterToAgent) -> None:
        if self._send_nowait is not None:
            if not self._closed:
                # A peer that is gone drops it, as a broken link does.
                with contextlib.suppress(ChannelClosed):
                    self._send_nowait(message)
            return
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._outbox.send_nowait(message)

    async def pump(self) -> None:
        """Deliver queued messages until closed; raises ChannelClosed if the peer is gone."""
        async with self._pending:
            async for message in self._pending:
                await self.channel.send(message)

    def close(self) -> None:
        """Stop accepting messages; what is queued is still delivered."""
        self._closed = True
        self._outbox.close()
