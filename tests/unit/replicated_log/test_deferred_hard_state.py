"""A hard state whose commit index alone moved is written after the answers its commit
released (it needs no fsync and may be lost), and never over a newer one."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import anyio
import pytest

from mesoslite.raft import HardState, Ready
from mesoslite.replicated_log.durable_storage import open_durable_storage
from mesoslite.replicated_log.service import ReplicaService

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_commit_alone_is_written_after_the_callbacks_scheduled_before_it(
    tmp_path: Path,
) -> None:
    before = HardState(term=1, vote=1, commit=0)
    committed = HardState(term=1, vote=1, commit=5)
    async with open_durable_storage(tmp_path) as storage:
        service = ReplicaService(
            node_id=1, storage=storage, client_ssl=ssl.create_default_context()
        )
        assert storage.try_persist_now(hard_state=before)
        seen_by_answer: list[HardState] = []
        # The answer the commit released was scheduled when the entry was applied.
        asyncio.get_running_loop().call_soon(lambda: seen_by_answer.append(storage.hard_state))
        service._defer_hard_state(committed)
        assert storage.hard_state == before, "not written in the Ready's own call"
        await anyio.sleep(0)
        assert seen_by_answer == [before]
        assert storage.hard_state == committed
    async with open_durable_storage(tmp_path) as storage:
        assert storage.hard_state == committed


async def test_a_deferred_hard_state_rides_with_the_next_write_and_never_overwrites_a_newer(
    tmp_path: Path,
) -> None:
    async with open_durable_storage(tmp_path) as storage:
        service = ReplicaService(
            node_id=1, storage=storage, client_ssl=ssl.create_default_context()
        )
        service._defer_hard_state(HardState(term=1, vote=1, commit=5))
        # A Ready without a hard state of its own carries the deferred one...
        carried = service._hard_state_to_write(Ready())
        assert carried == HardState(term=1, vote=1, commit=5)
        assert service._hard_state_to_write(Ready()) is None, "taken once"
        # ...and one with a newer hard state (a new term) replaces it.
        service._defer_hard_state(HardState(term=1, vote=1, commit=6))
        newer = HardState(term=2, vote=0, commit=6)
        assert service._hard_state_to_write(Ready(hard_state=newer)) == newer
        assert storage.try_persist_now(hard_state=newer)
        await anyio.sleep(0)  # the deferred write finds nothing left to write
        assert storage.hard_state == newer
    async with open_durable_storage(tmp_path) as storage:
        assert storage.hard_state == HardState(term=2, vote=0, commit=6)
