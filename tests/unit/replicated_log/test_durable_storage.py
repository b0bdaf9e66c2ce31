"""DurableStorage: the Raft Storage protocol over WAL + snapshots, with group commit."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from mesoslite.raft.errors import CompactedError, SnapshotOutOfDateError, UnavailableError
from mesoslite.raft.messages import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from mesoslite.raft.storage import bootstrap_snapshot
from mesoslite.replicated_log.durable_storage import DurableStorage, open_durable_storage
from mesoslite.replicated_log.errors import WalFailedError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def entries(first: int, last: int, term: int = 1) -> list[Entry]:
    return [Entry(term, index, f"e{index}".encode()) for index in range(first, last + 1)]


def log_of(storage: DurableStorage) -> list[Entry]:
    return storage.entries(storage.first_index(), storage.last_index() + 1, None)


async def test_persisted_state_is_read_back_and_survives_reopening(tmp_path: Path) -> None:
    async with open_durable_storage(tmp_path) as storage:
        assert (storage.first_index(), storage.last_index()) == (1, 0)
        await storage.persist(snapshot=bootstrap_snapshot([1, 2, 3]))
        await storage.persist(entries=entries(2, 5), hard_state=HardState(1, 1, 3))
        assert log_of(storage) == entries(2, 5)
        assert storage.term(1) == 1

    async with open_durable_storage(tmp_path) as storage:
        assert storage.initial_state() == (HardState(1, 1, 3), ConfState((1, 2, 3), ()))
        assert storage.snapshot() == bootstrap_snapshot([1, 2, 3])
        assert (storage.first_index(), storage.last_index()) == (2, 5)
        assert log_of(storage) == entries(2, 5)


async def test_storage_errors_follow_the_protocol(tmp_path: Path) -> None:
    async with open_durable_storage(tmp_path) as storage:
        await storage.persist(snapshot=bootstrap_snapshot([1]))
        await storage.persist(entries=entries(2, 4))
        with pytest.raises(CompactedError):
            storage.entries(1, 3, None)
        with pytest.raises(UnavailableError):
            storage.entries(2, 6, None)
        with pytest.raises(UnavailableError):
            storage.term(5)
        assert storage.entries(2, 5, 1) == entries(2, 2), "a size limit still returns one"


async def test_conflicting_entries_replace_the_suffix(tmp_path: Path) -> None:
    async with open_durable_storage(tmp_path) as storage:
        await storage.persist(entries=entries(1, 6, term=1))
        await storage.persist(entries=entries(4, 5, term=2))
        assert log_of(storage) == entries(1, 3) + entries(4, 5, term=2)
    async with open_durable_storage(tmp_path) as storage:
        assert log_of(storage) == entries(1, 3) + entries(4, 5, term=2)


async def test_writes_raft_never_makes_are_refused_before_reaching_disk(tmp_path: Path) -> None:
    async with open_durable_storage(tmp_path) as storage:
        await storage.persist(entries=entries(1, 3))
        with pytest.raises(ValueError, match="gap"):
            await storage.persist(entries=entries(5, 6))
        with pytest.raises(ValueError, match="consecutive"):
            await storage.persist(entries=[*entries(4, 4), *entries(6, 6)])
        await storage.persist(snapshot=Snapshot(SnapshotMetadata(10, 2), b"s"))
        with pytest.raises(SnapshotOutOfDateError):
            await storage.persist(snapshot=Snapshot(SnapshotMetadata(9, 2), b"s"))
        with pytest.raises(ValueError, match="below snapshot"):
            await storage.persist(entries=entries(10, 11))
    async with open_durable_storage(tmp_path) as storage:
        assert (storage.first_index(), storage.last_index()) == (11, 10)


async def test_concurrent_writers_share_fsyncs_and_complete_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = 0
    real_fdatasync = os.fdatasync

    def counting_fdatasync(fd: int) -> None:
        nonlocal syncs
        syncs += 1
        real_fdatasync(fd)

    writers = 64
    completed: list[int] = []
    async with open_durable_storage(tmp_path) as storage:
        monkeypatch.setattr(os, "fdatasync", counting_fdatasync)

        async def write(index: int) -> None:
            await storage.persist(entries=entries(index, index))
            assert storage.last_index() >= index, "durable before it returns"
            completed.append(index)

        async with anyio.create_task_group() as group:
            for index in range(1, writers + 1):
                group.start_soon(write, index)
        monkeypatch.undo()
        assert completed == list(range(1, writers + 1))
        assert 1 <= syncs < writers
    async with open_durable_storage(tmp_path) as storage:
        assert log_of(storage) == entries(1, writers)


async def test_a_commit_index_alone_is_written_without_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = 0

    def counting_fdatasync(fd: int) -> None:
        nonlocal syncs
        syncs += 1

    async with open_durable_storage(tmp_path) as storage:
        await storage.persist(entries=entries(1, 2), hard_state=HardState(1, 1, 0))
        monkeypatch.setattr(os, "fdatasync", counting_fdatasync)
        await storage.persist(hard_state=HardState(1, 1, 2), must_sync=False)
        assert syncs == 0
        await storage.persist(hard_state=HardState(2, 0, 2))
        assert syncs == 1
        assert storage.hard_state == HardState(2, 0, 2)


async def test_a_local_snapshot_releases_covered_segments(tmp_path: Path) -> None:
    async with open_durable_storage(tmp_path, segment_size_bytes=512) as storage:
        for index in range(1, 101):
            await storage.persist(entries=entries(index, index), hard_state=HardState(1, 1, index))
        segments_before = len(list((tmp_path / "wal").iterdir()))
        snapshot = await storage.create_snapshot(80, ConfState((1,)), b"state at 80")
        assert snapshot.metadata == SnapshotMetadata(80, 1, ConfState((1,)))
        assert len(list((tmp_path / "wal").iterdir())) < segments_before
        assert storage.first_index() == 1, "entries stay for lagging followers"
        storage.compact(70)
        assert storage.first_index() == 71
        with pytest.raises(ValueError):
            await storage.create_snapshot(101, ConfState((1,)), b"")

    async with open_durable_storage(tmp_path, segment_size_bytes=512) as storage:
        assert storage.snapshot().data == b"state at 80"
        assert storage.first_index() == 81
        assert log_of(storage) == entries(81, 100)
        assert storage.hard_state == HardState(1, 1, 100)


async def test_a_received_snapshot_replaces_the_log(tmp_path: Path) -> None:
    received = Snapshot(SnapshotMetadata(50, 3, ConfState((1, 2, 3))), b"leader state")
    async with open_durable_storage(tmp_path) as storage:
        await storage.persist(entries=entries(1, 10))
        await storage.persist(snapshot=received, hard_state=HardState(3, 0, 50))
        assert (storage.first_index(), storage.last_index()) == (51, 50)
        await storage.persist(entries=entries(51, 52, term=3))
    async with open_durable_storage(tmp_path) as storage:
        assert storage.snapshot() == received
        assert log_of(storage) == entries(51, 52, term=3)
        assert storage.initial_state() == (HardState(3, 0, 50), ConfState((1, 2, 3)))


async def test_a_failed_fsync_fails_this_and_every_later_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fdatasync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    async with open_durable_storage(tmp_path) as storage:
        await storage.persist(entries=entries(1, 1))
        monkeypatch.setattr(os, "fdatasync", broken_fdatasync)
        with pytest.raises(WalFailedError):
            await storage.persist(entries=entries(2, 2))
        monkeypatch.undo()
        with pytest.raises(WalFailedError):
            await storage.persist(entries=entries(2, 2))
        assert storage.last_index() == 1, "nothing unsynced is visible"


async def test_a_write_now_is_durable_and_visible_when_it_returns(tmp_path: Path) -> None:
    async with open_durable_storage(tmp_path) as storage:
        assert storage.try_persist_now(entries=entries(1, 3), hard_state=HardState(1, 1, 0))
        assert log_of(storage) == entries(1, 3)
        assert storage.try_persist_now(hard_state=HardState(1, 1, 3), must_sync=False)
        await storage.persist(entries=entries(4, 4))  # the queued path goes on after it
        with pytest.raises(ValueError, match="gap"):
            storage.try_persist_now(entries=entries(6, 6))
    async with open_durable_storage(tmp_path) as storage:
        assert log_of(storage) == entries(1, 4)
        assert storage.hard_state == HardState(1, 1, 3)


async def test_no_write_now_while_a_queued_write_is_pending(tmp_path: Path) -> None:
    async with open_durable_storage(tmp_path) as storage, anyio.create_task_group() as group:
        group.start_soon(lambda: storage.persist(entries=entries(1, 2)))
        await anyio.sleep(0)  # the write is queued or being written
        assert not storage.try_persist_now(entries=entries(3, 3)), "it would overtake"
    async with open_durable_storage(tmp_path) as storage:
        assert log_of(storage) == entries(1, 2)


async def test_a_failed_write_now_fails_every_later_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fdatasync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    async with open_durable_storage(tmp_path) as storage:
        assert storage.try_persist_now(entries=entries(1, 1))
        monkeypatch.setattr(os, "fdatasync", broken_fdatasync)
        with pytest.raises(WalFailedError):
            storage.try_persist_now(entries=entries(2, 2))
        monkeypatch.undo()
        with pytest.raises(WalFailedError):
            storage.try_persist_now(entries=entries(2, 2))
        with pytest.raises(WalFailedError):
            await storage.persist(entries=entries(2, 2))
        assert storage.last_index() == 1, "nothing unsynced is visible"
