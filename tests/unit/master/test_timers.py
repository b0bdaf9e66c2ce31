"""One-shot timers: order, cancellation, failures contained."""

from __future__ import annotations

import anyio
import pytest

from mesoslite.master.timers import Timers


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fire_due_runs_in_deadline_order_and_skips_cancelled() -> None:
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[str] = []
    timers.call_later(3, lambda: fired.append("c"))
    timers.call_later(1, lambda: fired.append("a"))
    cancelled = timers.call_later(2, lambda: fired.append("b"))
    cancelled.cancel()
    assert timers.fire_due(clock.now + 0.5) == 0
    assert timers.fire_due(clock.now + 10) == 2
    assert fired == ["a", "c"]
    assert timers.next_deadline() is None


def test_a_failing_callback_does_not_stop_the_others() -> None:
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    timers.call_later(1, broken)
    timers.call_later(2, lambda: fired.append("after"))
    assert timers.fire_due(clock.now + 5) == 2
    assert fired == ["after"]


@pytest.mark.anyio
async def test_run_fires_timers_added_while_waiting() -> None:
    timers = Timers(anyio.current_time)
    fired = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(timers.run)
        await anyio.sleep(0)
        timers.call_later(0.01, fired.set)
        with anyio.fail_after(5):
            await fired.wait()
        group.cancel_scope.cancel()
