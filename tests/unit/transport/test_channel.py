"""The in-process channel: queued messages arrive in order without a loop trip each,
iteration ends when the peer closes; an AgentLink on it sends directly."""

from __future__ import annotations

import anyio
import pytest

from mesoslite.master.agent_link import AgentLink
from mesoslite.proto import internal_pb2
from mesoslite.transport.channel import ChannelClosed, MemoryChannel, memory_channel_pair

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _ping(sequence: int) -> internal_pb2.MasterToAgent:
    return internal_pb2.MasterToAgent(ping=internal_pb2.Ping(sequence=sequence))


async def test_queued_messages_arrive_in_order_and_iteration_ends_with_the_peer() -> None:
    pair: tuple[
        MemoryChannel[internal_pb2.MasterToAgent, internal_pb2.AgentToMaster],
        MemoryChannel[internal_pb2.AgentToMaster, internal_pb2.MasterToAgent],
    ] = memory_channel_pair("master", "agent")
    master_end, agent_end = pair
    for sequence in range(5):
        await master_end.send(_ping(sequence))
    received: list[int] = []

    async def later() -> None:
        await anyio.sleep(0.01)
        master_end.send_nowait(_ping(5))
        await master_end.aclose()

    async with anyio.create_task_group() as group:
        group.start_soon(later)
        with anyio.fail_after(5):
            async for message in agent_end:
                received.append(message.ping.sequence)
    assert received == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ChannelClosed):
        await agent_end.send(internal_pb2.AgentToMaster())


async def test_an_agent_link_sends_directly_and_drops_once_closed() -> None:
    pair: tuple[
        MemoryChannel[internal_pb2.MasterToAgent, internal_pb2.AgentToMaster],
        MemoryChannel[internal_pb2.AgentToMaster, internal_pb2.MasterToAgent],
    ] = memory_channel_pair("master", "agent")
    master_end, agent_end = pair
    link = AgentLink(master_end)
    link.send(_ping(1))
    link.close()
    link.send(_ping(2))
    await master_end.aclose()
    with anyio.fail_after(5):
        received = [message.ping.sequence async for message in agent_end]
    assert received == [1]
    with anyio.fail_after(5):
        await link.pump()  # returns at once: nothing was queued
