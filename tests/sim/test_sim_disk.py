from __future__ import annotations

import random

import pytest

from mesoslite.testing.sim import DiskOptions, SimDisk


def _disk(seed: int = 0, torn: float = 0.0) -> SimDisk:
    return SimDisk(random.Random(seed), DiskOptions(torn_write_probability=torn))


def test_synced_writes_survive_a_crash() -> None:
    disk = _disk()
    disk.create("f")
    disk.fsync_dir()
    disk.append("f", b"durable")
    disk.fsync("f")
    disk.crash()
    assert disk.read("f") == b"durable"


def test_unsynced_writes_may_be_lost_but_only_as_a_suffix() -> None:
    outcomes = set()
    for seed in range(50):
        disk = _disk(seed)
        disk.create("f")
        disk.fsync_dir()
        disk.append("f", b"a")
        disk.fsync("f")
        for piece in (b"b", b"c", b"d"):
            disk.append("f", piece)
        assert disk.read("f") == b"abcd"  # before the crash, reads see everything
        disk.crash()
        outcomes.add(disk.read("f"))
    assert outcomes == {b"a", b"ab", b"abc", b"abcd"}


def test_a_crash_may_tear_the_first_lost_write() -> None:
    torn = set()
    for seed in range(100):
        disk = _disk(seed, torn=1.0)
        disk.create("f")
        disk.fsync_dir()
        disk.append("f", b"0123456789")
        disk.crash()
        torn.add(len(disk.read("f")))
    assert 0 in torn and len(torn) > 3 and max(torn) <= 10


def test_a_rename_is_durable_only_after_syncing_the_directory() -> None:
    names = set()
    for seed in range(30):
        disk = _disk(seed)
        disk.create("old")
        disk.append("old", b"old")
        disk.fsync("old")
        disk.fsync_dir()
        disk.create("new")
        disk.append("new", b"new")
        disk.fsync("new")
        disk.rename("new", "old")
        disk.crash()
        names.add(disk.read("old"))
    assert names == {b"old", b"new"}
    disk = _disk()
    disk.create("a")
    disk.fsync_dir()
    disk.rename("a", "b")
    disk.fsync_dir()
    disk.crash()
    assert disk.list_names() == ["b"]


def test_a_file_never_synced_into_its_directory_may_vanish() -> None:
    vanished = 0
    for seed in range(20):
        disk = _disk(seed)
        disk.create("f")
        disk.append("f", b"x")
        disk.fsync("f")
        disk.crash()
        vanished += not disk.exists("f")
    assert 0 < vanished < 20


def test_truncate_and_missing_files() -> None:
    disk = _disk()
    disk.create("f")
    disk.append("f", b"abcdef")
    disk.truncate("f", 2)
    assert disk.read("f") == b"ab"
    with pytest.raises(FileNotFoundError):
        disk.read("missing")
