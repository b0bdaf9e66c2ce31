from __future__ import annotations

import pytest

from mesoslite.raft import (
    CompactedError,
    ConfState,
    Entry,
    MemoryStorage,
    SnapshotOutOfDateError,
    UnavailableError,
    bootstrap_snapshot,
)
from mesoslite.raft.storage import limit_size


def _storage(last_index: int = 6) -> MemoryStorage:
    storage = MemoryStorage()
    storage.apply_snapshot(bootstrap_snapshot([1, 2, 3]))
    storage.append([Entry(term=2, index=i, data=b"x") for i in range(2, last_index + 1)])
    return storage


def test_a_bootstrapped_storage_reports_its_bounds_and_membership() -> None:
    storage = _storage()
    assert (storage.first_index(), storage.last_index()) == (2, 6)
    assert storage.term(1) == 1  # the snapshot's term answers for its index
    assert storage.initial_state()[1] == ConfState(voters=(1, 2, 3))
    with pytest.raises(CompactedError):
        storage.term(0)
    with pytest.raises(UnavailableError):
        storage.term(7)


def test_entries_are_sliced_and_size_limited_but_never_empty() -> None:
    storage = _storage()
    assert [e.index for e in storage.entries(2, 5, None)] == [2, 3, 4]
    assert [e.index for e in storage.entries(2, 5, 1)] == [2]
    assert [e.index for e in storage.entries(2, 7, 40)] == [2, 3]  # 17 bytes each
    with pytest.raises(CompactedError):
        storage.entries(1, 3, None)


def test_append_replaces_a_conflicting_suffix_and_refuses_gaps() -> None:
    storage = _storage()
    storage.append([Entry(term=3, index=4), Entry(term=3, index=5)])
    assert [storage.term(i) for i in range(2, 6)] == [2, 2, 3, 3]
    assert storage.last_index() == 5
    with pytest.raises(UnavailableError):
        storage.append([Entry(term=3, index=9)])


def test_compaction_keeps_the_term_of_the_compacted_index() -> None:
    storage = _storage()
    storage.create_snapshot(4, ConfState(voters=(1, 2, 3)), b"state")
    storage.compact(4)
    assert (storage.first_index(), storage.last_index()) == (5, 6)
    assert storage.term(4) == 2
    with pytest.raises(CompactedError):
        storage.compact(3)
    storage.append([Entry(term=2, index=3)])  # already compacted: ignored
    assert storage.first_index() == 5


def test_compaction_past_the_snapshot_is_refused() -> None:
    storage = _storage()
    with pytest.raises(ValueError):
        storage.compact(4)


def test_an_older_snapshot_is_refused() -> None:
    storage = _storage()
    snapshot = storage.create_snapshot(5, ConfState(voters=(1,)), b"")
    with pytest.raises(SnapshotOutOfDateError):
        storage.apply_snapshot(bootstrap_snapshot([1]))
    with pytest.raises(SnapshotOutOfDateError):
        storage.create_snapshot(5, ConfState(voters=(1,)), b"")
    assert storage.snapshot() is snapshot


def test_limit_size_keeps_at_least_one_entry() -> None:
    big = [Entry(term=1, index=i, data=bytes(100)) for i in range(3)]
    assert limit_size(big, 10) == big[:1]
    assert limit_size(big, None) == big
