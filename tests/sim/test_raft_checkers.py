"""The checkers themselves: each property, violated on purpose, is reported."""

from __future__ import annotations

import pytest

from mesoslite.raft import Entry
from mesoslite.testing.sim import ClientHistory, RaftSafetyChecker, SafetyViolation
from mesoslite.testing.sim.raft_checker import LogView


def _log(terms: dict[int, int], first_index: int = 1) -> LogView:
    last_index = max(terms, default=0)
    return LogView(lambda index: terms.get(index, 0), first_index, last_index)


def test_two_leaders_in_one_term_are_reported() -> None:
    checker = RaftSafetyChecker()
    checker.on_leader_message(1, term=3)
    checker.on_leader_message(1, term=3)
    checker.on_leader_message(2, term=4)
    with pytest.raises(SafetyViolation, match="election safety"):
        checker.on_leader_message(2, term=3)


def test_one_index_and_term_naming_two_entries_is_reported() -> None:
    checker = RaftSafetyChecker()
    checker.on_entries_persisted(1, 1, [Entry(2, 2, b"a"), Entry(2, 3, b"b")])
    checker.on_entries_persisted(2, 1, [Entry(2, 2, b"a")])
    with pytest.raises(SafetyViolation, match="log matching"):
        checker.on_entries_persisted(3, 1, [Entry(2, 2, b"a"), Entry(2, 3, b"c")])
    with pytest.raises(SafetyViolation, match="log matching"):
        checker.on_entries_persisted(3, 1, [Entry(2, 3, b"b")])  # other predecessor


def test_different_entries_applied_at_one_index_are_reported() -> None:
    checker = RaftSafetyChecker()
    checker.on_applied(1, Entry(2, 2, b"a"), digest=7)
    checker.on_applied(2, Entry(2, 2, b"a"), digest=7)
    with pytest.raises(SafetyViolation, match="state machine safety"):
        checker.on_applied(3, Entry(3, 2, b"b"), digest=9)


def test_a_snapshot_that_differs_from_the_applied_state_is_reported() -> None:
    checker = RaftSafetyChecker()
    checker.on_applied(1, Entry(2, 2, b"a"), digest=7)
    checker.on_snapshot_installed(2, index=2, term=2, digest=7)
    with pytest.raises(SafetyViolation, match="snapshot"):
        checker.on_snapshot_installed(3, index=2, term=2, digest=8)


def test_a_leader_missing_a_committed_entry_is_reported() -> None:
    checker = RaftSafetyChecker()
    checker.on_applied(1, Entry(2, 2, b"a"), digest=7)
    checker.on_became_leader(1, 3, _log({1: 1, 2: 2}))
    with pytest.raises(SafetyViolation, match="leader completeness"):
        checker.on_became_leader(2, 4, _log({1: 1}))
    with pytest.raises(SafetyViolation, match="leader completeness"):
        checker.on_became_leader(3, 5, _log({1: 1, 2: 3}))


def test_writes_acknowledged_out_of_real_time_order_are_reported() -> None:
    history = ClientHistory()
    history.write_invoked(1, b"w1", index=5, now_steps=0)
    history.on_applied(1, Entry(2, 5, b"w1"), now_steps=1)
    history.write_invoked(1, b"w2", index=4, now_steps=2)  # after w1 was acknowledged
    with pytest.raises(SafetyViolation, match="linearizability"):
        history.on_applied(1, Entry(2, 4, b"w2"), now_steps=3)


def test_a_stale_read_is_reported() -> None:
    history = ClientHistory()
    history.write_invoked(1, b"w1", index=5, now_steps=0)
    history.on_applied(1, Entry(2, 5, b"w1"), now_steps=1)
    history.read_invoked(2, b"r1", now_steps=2)
    with pytest.raises(SafetyViolation, match="linearizability"):
        history.read_served(2, b"r1", read_index=4, applied_index=4, now_steps=3)
    history.read_invoked(2, b"r2", now_steps=4)
    history.read_served(2, b"r2", read_index=5, applied_index=6, now_steps=5)
    assert [r.context for r in history.served_reads()] == [b"r2"]


def test_a_lost_acknowledged_write_is_reported() -> None:
    checker = RaftSafetyChecker()
    history = ClientHistory()
    history.write_invoked(1, b"w1", index=2, now_steps=0)
    history.on_applied(1, Entry(2, 2, b"w1"), now_steps=1)
    checker.on_applied(2, Entry(3, 2, b"other"), digest=1)
    with pytest.raises(SafetyViolation, match="durability"):
        history.check_durability(checker)
