from __future__ import annotations

import random

from mesoslite.raft import ConfState, Entry, EntryType, HardState, MemoryStorage, bootstrap_snapshot
from mesoslite.testing.sim import DiskOptions, SimDisk, SimWal


def _wal(seed: int = 0) -> tuple[SimDisk, SimWal]:
    disk = SimDisk(random.Random(seed), DiskOptions(torn_write_probability=1.0))
    wal = SimWal(disk)
    wal.create(bootstrap_snapshot([1, 2, 3]), HardState(term=1, commit=1))
    return disk, wal


def _entries(first: int, last: int, term: int) -> list[Entry]:
    return [Entry(term, index, f"e{index}".encode()) for index in range(first, last + 1)]


def test_recovery_replays_entries_hard_state_and_overwrites() -> None:
    _, wal = _wal()
    wal.append_entries(_entries(2, 5, 2))
    wal.append_entries(_entries(4, 6, 3))  # a new leader replaced 4 and 5
    wal.append_entries([Entry(3, 7, b"cc", EntryType.CONF_CHANGE)])
    wal.append_hard_state(HardState(term=3, vote=2, commit=6))
    wal.sync()
    storage = wal.recover().storage
    assert [storage.term(i) for i in range(2, 8)] == [2, 2, 3, 3, 3, 3]
    assert storage.entries(7, 8, None)[0].type is EntryType.CONF_CHANGE
    assert storage.hard_state == HardState(term=3, vote=2, commit=6)
    assert storage.initial_state()[1] == ConfState(voters=(1, 2, 3))


def test_a_torn_tail_is_cut_off_and_the_rest_survives() -> None:
    for seed in range(20):
        disk, wal = _wal(seed)
        wal.append_entries(_entries(2, 3, 2))
        wal.sync()
        wal.append_entries(_entries(4, 9, 2))  # never synced
        disk.crash()
        recovered = wal.recover()
        last = recovered.storage.last_index()
        assert last in (3, 9)
        assert recovered.storage.entries(2, last + 1, None) == _entries(2, last, 2)
        # The cut is made durable: a second crash and recovery agree.
        disk.crash()
        assert wal.recover().storage.last_index() == last


def test_a_rewrite_keeps_the_snapshot_hard_state_and_later_entries() -> None:
    disk, wal = _wal()
    wal.append_entries(_entries(2, 10, 2))
    wal.sync()
    storage = wal.recover().storage
    storage.set_hard_state(HardState(term=2, vote=1, commit=8))
    storage.create_snapshot(8, ConfState(voters=(1, 2, 3)), b"state@8")
    storage.compact(8)
    wal.rewrite(storage)
    before = wal.size_bytes()
    disk.crash()
    recovered: MemoryStorage = wal.recover().storage
    assert recovered.snapshot().data == b"state@8"
    assert (recovered.first_index(), recovered.last_index()) == (9, 10)
    assert recovered.hard_state.commit == 8
    assert wal.size_bytes() == before
