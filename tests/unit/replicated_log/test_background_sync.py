"""The WAL's overlapped sync: `meanwhile` runs on the caller's thread after the write,
while the fdatasync runs in the sync thread; errors of each are told apart."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mesoslite.raft.messages import Entry, HardState
from mesoslite.replicated_log.background_sync import BackgroundSync
from mesoslite.replicated_log.durable_storage import open_durable_storage
from mesoslite.replicated_log.errors import WalFailedError
from mesoslite.replicated_log.wal import Wal, WalWrite


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def entries(first: int, last: int, term: int = 1) -> list[Entry]:
    return [Entry(term, index, f"{index}".encode()) for index in range(first, last + 1)]


def test_overlap_syncs_in_another_thread_while_the_work_runs_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced_in: list[int] = []
    real_fdatasync = os.fdatasync

    def recording_fdatasync(fd: int) -> None:
        synced_in.append(threading.get_ident())
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", recording_fdatasync)
    worked_in: list[int] = []
    sync = BackgroundSync()
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        for _ in range(3):  # the thread waits for the next request between syncs
            sync.overlap(fd, lambda: worked_in.append(threading.get_ident()))
    finally:
        sync.close()
        os.close(fd)
    assert worked_in == [threading.get_ident()] * 3
    assert len(synced_in) == 3 and threading.get_ident() not in synced_in


def test_overlap_raises_the_sync_error_after_the_work(tmp_path: Path) -> None:
    sync = BackgroundSync()
    worked: list[bool] = []
    fd = os.open(tmp_path / "open", os.O_WRONLY | os.O_CREAT)
    closed = os.open(tmp_path / "closed", os.O_WRONLY | os.O_CREAT)
    os.close(closed)  # a bad descriptor (no other is opened until it is used)
    try:
        with pytest.raises(OSError):
            sync.overlap(closed, lambda: worked.append(True))
        assert worked == [True]
        with pytest.raises(ZeroDivisionError):
            sync.overlap(fd, lambda: worked.append(bool(1 / 0)))
        sync.overlap(fd, lambda: worked.append(True))  # usable after both failures
        assert worked == [True, True]
    finally:
        sync.close()
        os.close(fd)


def test_a_save_runs_meanwhile_after_the_write_and_returns_durable(tmp_path: Path) -> None:
    wal, _ = Wal.open(tmp_path, base_index=0)

    def written_bytes() -> int:  # preallocated zeros do not count
        return sum(len(path.read_bytes().rstrip(b"\0")) for path in wal.segment_paths)

    before = written_bytes()
    seen: list[int] = []
    wal.save(
        [WalWrite(entries(1, 3), HardState(1, 1, 0))],
        meanwhile=lambda: seen.append(written_bytes()),
    )
    wal.close()
    assert len(seen) == 1 and seen[0] > before, "the records were written before meanwhile ran"
    wal, recovered = Wal.open(tmp_path, base_index=0)
    wal.close()
    assert recovered.entries == entries(1, 3)
    assert recovered.hard_state == HardState(1, 1, 0)


def test_an_error_of_meanwhile_does_not_fail_the_wal(tmp_path: Path) -> None:
    wal, _ = Wal.open(tmp_path, base_index=0)

    def failing() -> None:
        raise RuntimeError("a send failed")

    with pytest.raises(RuntimeError, match="a send failed"):
        wal.save([WalWrite(entries(1, 1))], meanwhile=failing)
    wal.save([WalWrite(entries(2, 2))])  # still usable
    wal.close()
    wal, recovered = Wal.open(tmp_path, base_index=0)
    wal.close()
    assert recovered.entries == entries(1, 2)


def test_a_failed_overlapped_sync_fails_the_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fdatasync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    wal, _ = Wal.open(tmp_path, base_index=0)
    worked: list[bool] = []
    monkeypatch.setattr(os, "fdatasync", broken_fdatasync)
    with pytest.raises(WalFailedError):
        wal.save([WalWrite(entries(1, 1))], meanwhile=lambda: worked.append(True))
    monkeypatch.undo()
    assert worked == [True], "the work ran even though the sync failed"
    with pytest.raises(WalFailedError):
        wal.save([WalWrite(entries(2, 2))])
    wal.close()


@pytest.mark.anyio
async def test_a_write_now_runs_meanwhile_and_keeps_its_error_apart(tmp_path: Path) -> None:
    calls: list[int] = []
    async with open_durable_storage(tmp_path) as storage:
        assert storage.try_persist_now(
            entries=entries(1, 2), hard_state=HardState(1, 1, 0), meanwhile=lambda: calls.append(1)
        )
        assert calls == [1]
        assert storage.last_index() == 2

        def failing() -> None:
            raise RuntimeError("a send failed")

        with pytest.raises(RuntimeError):
            storage.try_persist_now(entries=entries(3, 3), meanwhile=failing)
        assert storage.last_index() == 3, "the write itself completed"
        assert storage.try_persist_now(entries=entries(4, 4)), "the storage did not fail"
    async with open_durable_storage(tmp_path) as storage:
        assert storage.last_index() == 4
