"""Snapshot files: round trip, atomic replacement, retention, damage refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mesoslite.raft.messages import ConfState, Snapshot, SnapshotMetadata
from mesoslite.replicated_log.errors import CorruptionError
from mesoslite.replicated_log.snapshot_store import SnapshotStore


def snapshot(index: int, term: int = 1, data: bytes = b"state") -> Snapshot:
    return Snapshot(SnapshotMetadata(index, term, ConfState((1, 2, 3), (4,))), data)


def test_round_trip_keeps_position_membership_and_data(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    assert store.load_newest() is None
    store.save(snapshot(7, 2, b"\x00registry\xff" * 100))
    assert SnapshotStore(tmp_path).load_newest() == snapshot(7, 2, b"\x00registry\xff" * 100)


def test_the_newest_wins_and_only_the_newest_kept_remain(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, kept=2)
    store.load_newest()
    for index in (5, 10, 15, 20):
        store.save(snapshot(index))
    assert store.load_newest() == snapshot(20)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        f"{15:016x}-{1:016x}.snap",
        f"{20:016x}-{1:016x}.snap",
    ]


def test_a_crash_before_the_rename_leaves_the_old_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SnapshotStore(tmp_path)
    store.load_newest()
    store.save(snapshot(5, data=b"old"))

    def crash(source: object, target: object) -> None:
        raise OSError("power lost")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.save(snapshot(9, data=b"new"))
    monkeypatch.undo()
    assert any(path.suffix == ".tmp" for path in tmp_path.iterdir())

    reopened = SnapshotStore(tmp_path)
    assert reopened.load_newest() == snapshot(5, data=b"old")
    assert not any(path.suffix == ".tmp" for path in tmp_path.iterdir())


def test_a_damaged_snapshot_is_refused(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.load_newest()
    path = store.save(snapshot(5, data=b"x" * 1000))
    data = bytearray(path.read_bytes())
    data[500] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match="damaged snapshot"):
        SnapshotStore(tmp_path).load_newest()


def test_a_snapshot_under_a_wrong_name_is_refused(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.load_newest()
    path = store.save(snapshot(5))
    path.rename(tmp_path / f"{6:016x}-{1:016x}.snap")
    with pytest.raises(CorruptionError, match="file name"):
        SnapshotStore(tmp_path).load_newest()
