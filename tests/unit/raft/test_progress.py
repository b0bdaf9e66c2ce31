from __future__ import annotations

import pytest

from mesoslite.raft.progress import Inflights, Progress, ProgressState


def _progress(next_index: int = 5, match: int = 0, capacity: int = 3) -> Progress:
    return Progress(next_index, Inflights(capacity), match=match)


def test_inflights_fill_up_and_free_by_index() -> None:
    inflights = Inflights(3)
    for last_index in (10, 20, 30):
        assert not inflights.full()
        inflights.add(last_index, 0)
    assert inflights.full()
    inflights.free_le(20)
    assert inflights.count() == 1 and not inflights.full()
    with pytest.raises(ValueError):
        inflights.add(30, 0)  # not after the newest


def test_inflights_can_be_limited_by_bytes() -> None:
    inflights = Inflights(100, max_bytes=1000)
    inflights.add(1, 600)
    assert not inflights.full()
    inflights.add(2, 600)
    assert inflights.full()
    inflights.free_le(1)
    assert not inflights.full()


def test_a_probe_pauses_after_one_message_until_an_answer() -> None:
    progress = _progress()
    assert not progress.is_paused()
    progress.msg_app_flow_paused = True
    assert progress.is_paused()
    assert progress.maybe_update(4)
    assert not progress.is_paused()
    assert (progress.match, progress.next) == (4, 5)


def test_a_stale_ack_does_not_move_match_backwards() -> None:
    progress = _progress(next_index=10, match=8)
    assert not progress.maybe_update(6)
    assert (progress.match, progress.next) == (8, 10)


def test_rejections_in_probe_state_use_the_hint_but_not_below_match() -> None:
    progress = _progress(next_index=10, match=3)
    assert not progress.maybe_decrease_to(5, 2)  # not the probe in flight (next - 1 = 9)
    assert progress.maybe_decrease_to(9, 6)
    assert progress.next == 7
    assert progress.maybe_decrease_to(6, 0)
    assert progress.next == 4  # match + 1


def test_rejections_in_replicate_state_fall_back_to_match() -> None:
    progress = _progress(next_index=3, match=2)
    progress.become_replicate()
    progress.next = 12  # optimistic
    assert not progress.maybe_decrease_to(2, 0)  # at or below match: stale
    assert progress.maybe_decrease_to(7, 0)
    assert progress.next == 3


def test_leaving_snapshot_state_probes_after_the_snapshot() -> None:
    progress = _progress(next_index=3, match=2)
    progress.become_snapshot(50)
    assert progress.is_paused()
    progress.become_probe()
    assert progress.state is ProgressState.PROBE
    assert progress.next == 51


def test_the_replicate_window_pauses_when_full() -> None:
    progress = _progress(next_index=3, match=2, capacity=2)
    progress.become_replicate()
    progress.sent_append(5, 0)
    assert not progress.is_paused()
    assert progress.next == 6  # optimistic: next moves on before any answer
    progress.sent_append(7, 0)
    assert progress.is_paused()
    progress.acknowledged_up_to(5)
    assert not progress.is_paused()


def test_a_heartbeat_answer_lets_one_empty_append_through_a_full_window() -> None:
    progress = _progress(next_index=3, match=2, capacity=1)
    progress.become_replicate()
    progress.sent_append(9, 0)
    assert progress.is_paused()
    progress.msg_app_flow_paused = False  # what the leader does on a heartbeat answer
    assert not progress.is_paused()
    progress.sent_append(None, 0)  # the empty append
    assert progress.is_paused()
