"""The status update manager on its own: ordering, acknowledgements, retries,
duplicates, pause/resume and the checkpoint log."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream

from mesoslite.agent.status_updates import StatusUpdateManager
from mesoslite.agent.update_log import read_update_log
from mesoslite.proto import internal_pb2, mesos_pb2

pytestmark = pytest.mark.anyio

_TS = mesos_pb2.TaskState


def _update(task_id: str, state: int, uuid_byte: int) -> internal_pb2.StatusUpdate:
    update = internal_pb2.StatusUpdate()
    update.framework_id.value = "fw"
    update.status.task_id.value = task_id
    update.status.state = state  # type: ignore[assignment]
    update.status.uuid = bytes([uuid_byte]) * 16
    return update


class Harness:
    def __init__(
        self,
        manager: StatusUpdateManager,
        sent: MemoryObjectReceiveStream[internal_pb2.StatusUpdate],
    ) -> None:
        self.manager = manager
        self.sent = sent

    async def next_sent(self) -> internal_pb2.StatusUpdate:
        with anyio.fail_after(30):
            return await self.sent.receive()


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    send, receive = anyio.create_memory_object_stream[internal_pb2.StatusUpdate](math.inf)

    async def forward(update: internal_pb2.StatusUpdate) -> None:
        send.send_nowait(update)

    manager = StatusUpdateManager(forward, retry_initial_s=3600, retry_max_s=3600)
    async with anyio.create_task_group() as group:
        group.start_soon(manager.run)
        await manager.resume()
        yield Harness(manager, receive)
        group.cancel_scope.cancel()


async def test_only_the_oldest_unacknowledged_update_is_sent(harness: Harness) -> None:
    manager = harness.manager
    assert await manager.update(_update("t", _TS.TASK_STARTING, 1), log_path=None)
    assert await manager.update(_update("t", _TS.TASK_RUNNING, 2), log_path=None)
    assert await manager.update(_update("t", _TS.TASK_FINISHED, 3), log_path=None)
    first = await harness.next_sent()
    assert first.status.state == _TS.TASK_STARTING
    assert first.latest_state == _TS.TASK_STARTING  # sent before the others arrived
    assert harness.sent.statistics().current_buffer_used == 0
    assert [u.status.state for u in manager.pending("fw", "t")] == [
        _TS.TASK_STARTING,
        _TS.TASK_RUNNING,
        _TS.TASK_FINISHED,
    ]

    assert await manager.acknowledge("fw", "t", b"\x09" * 16) is None  # stale uuid
    acknowledged = await manager.acknowledge("fw", "t", b"\x01" * 16)
    assert acknowledged is not None and acknowledged.status.state == _TS.TASK_STARTING
    second = await harness.next_sent()
    assert second.status.state == _TS.TASK_RUNNING
    assert second.latest_state == _TS.TASK_FINISHED
    await manager.acknowledge("fw", "t", b"\x02" * 16)
    assert (await harness.next_sent()).status.state == _TS.TASK_FINISHED
    await manager.acknowledge("fw", "t", b"\x03" * 16)
    assert manager.pending("fw", "t") == []


async def test_streams_of_different_tasks_are_independent(harness: Harness) -> None:
    await harness.manager.update(_update("a", _TS.TASK_RUNNING, 1), log_path=None)
    await harness.manager.update(_update("b", _TS.TASK_RUNNING, 2), log_path=None)
    sent = {(await harness.next_sent()).status.task_id.value for _ in range(2)}
    assert sent == {"a", "b"}


async def test_duplicates_are_dropped(harness: Harness) -> None:
    manager = harness.manager
    assert await manager.update(_update("t", _TS.TASK_RUNNING, 1), log_path=None)
    assert not await manager.update(_update("t", _TS.TASK_RUNNING, 1), log_path=None)
    assert manager.seen("fw", "t", b"\x01" * 16)
    assert len(manager.pending("fw", "t")) == 1


async def test_paused_manager_queues_and_resume_resends(harness: Harness) -> None:
    manager = harness.manager
    manager.pause()
    await manager.update(_update("t", _TS.TASK_RUNNING, 1), log_path=None)
    assert harness.sent.statistics().current_buffer_used == 0
    await manager.resume()
    assert (await harness.next_sent()).status.uuid == b"\x01" * 16


async def test_unacknowledged_update_is_resent_until_acknowledged() -> None:
    sent: list[internal_pb2.StatusUpdate] = []
    done = anyio.Event()

    async def forward(update: internal_pb2.StatusUpdate) -> None:
        sent.append(update)
        if len(sent) == 4:
            done.set()

    manager = StatusUpdateManager(forward, retry_initial_s=0.01, retry_max_s=0.04)
    async with anyio.create_task_group() as group:
        group.start_soon(manager.run)
        await manager.resume()
        await manager.update(_update("t", _TS.TASK_RUNNING, 1), log_path=None)
        await manager.update(_update("t", _TS.TASK_FINISHED, 2), log_path=None)
        with anyio.fail_after(30):
            await done.wait()
        await manager.acknowledge("fw", "t", b"\x01" * 16)
        group.cancel_scope.cancel()
    # Only the head is resent, never the update queued behind it.
    assert {update.status.uuid for update in sent[:4]} == {b"\x01" * 16}
    assert sent[-1].status.uuid == b"\x02" * 16


async def test_updates_and_acknowledgements_are_checkpointed(
    harness: Harness, tmp_path: Path
) -> None:
    log_path = tmp_path / "meta" / "task.updates"
    manager = harness.manager
    await manager.update(_update("t", _TS.TASK_RUNNING, 1), log_path=log_path)
    await manager.update(_update("t", _TS.TASK_FINISHED, 2), log_path=log_path)
    await manager.acknowledge("fw", "t", b"\x01" * 16)
    entries = read_update_log(log_path.read_bytes())
    assert [entry.update.status.state if entry.update else None for entry in entries] == [
        _TS.TASK_RUNNING,
        _TS.TASK_FINISHED,
        None,
    ]
    assert entries[2].acknowledged_uuid == b"\x01" * 16
    # A torn last record (crash mid-append) is ignored.
    torn = read_update_log(log_path.read_bytes()[:-3])
    assert len(torn) == 2
