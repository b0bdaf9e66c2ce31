"""The agent's connection to its master: connect, (re)register, serve, reconnect.

Connections come from the `MasterConnector` (in-process or HTTP). On each one the
agent first registers (`RegisterAgent`, or `ReregisterAgent` once it has an id) and
waits for the answer; then every master message goes to the agent, except pings,
which are answered here. When the connection drops the link retries with a random
backoff that doubles up to a cap, as Mesos agents do, so that many agents do not
reconnect in lockstep after a master failover.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskStatus

from mesoslite.proto import internal_pb2, mesos_pb2
from mesoslite.transport.channel import AgentChannel, ChannelClosed, MasterConnector

__all__ = ["MasterLink"]

log = logging.getLogger(__name__)


class MasterLink:
    def __init__(
        self,
        connector: MasterConnector,
        *,
        registration: Callable[[], internal_pb2.AgentToMaster],
        on_registered: Callable[[str, mesos_pb2.MasterInfo], Awaitable[None]],
        on_message: Callable[[internal_pb2.MasterToAgent], None],
        on_disconnected: Callable[[], None],
        backoff_factor_s: float,
        backoff_max_s: float,
    ) -> None:
        self._connector = connector
        self._registration = registration
        self._on_registered = on_registered
        self._on_message = on_message
        self._on_disconnected = on_disconnected
        self._backoff_factor_s = backoff_factor_s
        self._backoff_max_s = backoff_max_s
        self._channel: AgentChannel | None = None

    @property
    def registered(self) -> bool:
        """Connected and registered: messages to the master go out now."""
        return self._channel is not None

    async def send(self, message: internal_pb2.AgentToMaster) -> bool:
        """False when there is no registered connection (the message is dropped)."""
        channel = self._channel
        if channel is None:
            return False
        try:
            await channel.send(message)
        except ChannelClosed:
            return False
        return True

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Stay connected until cancelled; `task_status` reports the first registration."""
        started = False
        backoff_s = self._backoff_factor_s
        while True:
            try:
                channel = await self._connector.connect()
            except Exception as exc:
                log.warning("cannot reach the master (%s); retrying", exc)
            else:
                try:
                    if await self._register(channel):
                        if not started:
                            started = True
                            task_status.started()
                        backoff_s = self._backoff_factor_s
                        await self._serve(channel)
                finally:
                    await self._close(channel)
            await anyio.sleep(random.uniform(0, backoff_s))
            backoff_s = min(backoff_s * 2, self._backoff_max_s)

    async def _register(self, channel: AgentChannel) -> bool:
        try:
            await channel.send(self._registration())
        except ChannelClosed:
            return False
        async for reply in channel:
            kind = reply.WhichOneof("message")
            if kind in ("agent_registered", "agent_reregistered"):
                answer = getattr(reply, kind)
                self._channel = channel
                await self._on_registered(answer.agent_id.value, answer.master_info)
                return True
            if kind == "ping":
                await self._pong(channel, reply.ping.sequence)
            else:
                log.warning("ignoring %s before registration", kind)
        return False

    async def _serve(self, channel: AgentChannel) -> None:
        async for message in channel:
            if message.WhichOneof("message") == "ping":
                await self._pong(channel, message.ping.sequence)
                continue
            try:
                self._on_message(message)
            except Exception:
                log.exception("failed to handle %s", message.WhichOneof("message"))

    async def _pong(self, channel: AgentChannel, sequence: int) -> None:
        with contextlib.suppress(ChannelClosed):
            await channel.send(
                internal_pb2.AgentToMaster(pong=internal_pb2.Pong(sequence=sequence))
            )

    async def _close(self, channel: AgentChannel) -> None:
        if self._channel is channel:
            self._channel = None
            self._on_disconnected()
        with anyio.CancelScope(shield=True):
            try:
                await channel.aclose()
            except Exception:
                log.debug("closing the master channel failed", exc_info=True)
