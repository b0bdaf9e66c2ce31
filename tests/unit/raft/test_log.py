from __future__ import annotations

from collections.abc import Sequence

import pytest

from mesoslite.raft import Entry, InvariantError, MemoryStorage, bootstrap_snapshot
from mesoslite.raft.log import RaftLog


def _log(stable_terms: Sequence[int], unstable_terms: Sequence[int] = ()) -> RaftLog:
    storage = MemoryStorage()
    storage.apply_snapshot(bootstrap_snapshot([1]))
    storage.append([Entry(term=t, index=2 + i) for i, t in enumerate(stable_terms)])
    log = RaftLog(storage)
    first_unstable = 2 + len(stable_terms)
    log.append([Entry(term=t, index=first_unstable + i) for i, t in enumerate(unstable_terms)])
    return log


def test_terms_span_storage_and_the_unstable_tail() -> None:
    log = _log([1, 2], [2, 3])
    assert [log.term(i) for i in range(1, 6)] == [1, 1, 2, 2, 3]
    assert log.last_index() == 5 and log.last_term() == 3
    assert [e.index for e in log.slice(2, 6, None)] == [2, 3, 4, 5]
    assert log.term_or_zero(9) == 0


def test_up_to_date_compares_last_term_then_length() -> None:
    log = _log([1, 2, 2])
    assert log.is_up_to_date(4, 2)
    assert not log.is_up_to_date(3, 2)
    assert log.is_up_to_date(2, 3)
    assert not log.is_up_to_date(9, 1)


def test_maybe_append_truncates_only_at_the_first_conflict() -> None:
    log = _log([1, 2, 2, 2])
    # Entries 3 and 4 match; 5 conflicts; 6 is new.
    entries = [Entry(2, 3), Entry(2, 4), Entry(3, 5), Entry(3, 6)]
    assert log.maybe_append(2, 1, 0, entries) == 6
    assert [log.term(i) for i in range(2, 7)] == [1, 2, 2, 3, 3]


def test_maybe_append_with_matching_entries_keeps_a_longer_log() -> None:
    log = _log([1, 2, 2, 2])
    assert log.maybe_append(2, 1, 0, [Entry(2, 3)]) == 3
    assert log.last_index() == 5  # a stale, shorter append must not truncate


def test_maybe_append_refuses_a_mismatched_previous_entry() -> None:
    log = _log([1, 2])
    assert log.maybe_append(3, 9, 3, [Entry(9, 4)]) is None
    assert log.committed == 1


def test_commit_follows_the_leader_but_not_past_the_new_entries() -> None:
    log = _log([1, 2, 2])
    assert log.maybe_append(2, 1, 10, [Entry(2, 3)]) == 3
    assert log.committed == 3


def test_a_conflict_with_a_committed_entry_is_an_invariant_violation() -> None:
    log = _log([1, 2, 2])
    log.commit_to(4)
    with pytest.raises(InvariantError):
        log.maybe_append(2, 1, 4, [Entry(3, 3)])


def test_find_conflict_by_term_skips_newer_terms() -> None:
    log = _log([1, 2, 2, 4, 4, 4])
    assert log.find_conflict_by_term(7, 3) == (4, 2)
    assert log.find_conflict_by_term(7, 4) == (7, 4)
    assert log.find_conflict_by_term(20, 1) == (20, 0)  # beyond our log
    assert log.find_conflict_by_term(7, 0) == (0, 0)


def test_only_current_term_entries_commit_by_counting() -> None:
    log = _log([1, 2, 3])
    assert not log.maybe_commit(3, 3)  # index 3 has term 2
    assert log.maybe_commit(4, 3)
    assert log.committed == 4


def test_committed_entries_are_handed_out_once_and_in_batches() -> None:
    log = _log([1, 2, 2, 2])
    log.max_apply_batch_bytes = 20
    log.commit_to(4)
    assert [e.index for e in log.next_committed_entries()] == [2]
    log.applied_to(2)
    assert [e.index for e in log.next_committed_entries()] == [3]
    log.applied_to(4)
    assert not log.has_next_committed_entries()
    with pytest.raises(InvariantError):
        log.applied_to(5)
