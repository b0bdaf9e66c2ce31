from __future__ import annotations

import pytest

from mesoslite.testing.sim import SimClock


def test_events_run_in_time_order_and_fifo_within_a_step() -> None:
    clock = SimClock()
    order: list[str] = []
    clock.call_at(5, lambda: order.append("b"))
    clock.call_at(2, lambda: order.append("a"))
    clock.call_at(5, lambda: order.append("c"))
    clock.run_until(4)
    assert order == ["a"] and clock.now_steps == 4
    clock.run_until(10)
    assert order == ["a", "b", "c"] and clock.now_steps == 10


def test_an_event_may_schedule_more_work_for_the_same_step() -> None:
    clock = SimClock()
    order: list[int] = []
    clock.call_at(1, lambda: clock.call_later(0, lambda: order.append(clock.now_steps)))
    clock.run_until(1)
    assert order == [1]


def test_the_past_cannot_be_scheduled() -> None:
    clock = SimClock()
    clock.run_until(3)
    with pytest.raises(ValueError):
        clock.call_at(2, lambda: None)
