"""FastLock: mutual exclusion in arrival order; a cancelled waiter neither keeps nor
loses the lock for the others."""

from __future__ import annotations

import anyio
import pytest

from mesoslite.locks import FastLock

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_holders_take_turns_in_arrival_order() -> None:
    lock = FastLock()
    order: list[int] = []

    async def worker(index: int) -> None:
        async with lock:
            order.append(index)
            await anyio.sleep(0.001)
            order.append(index)

    async with anyio.create_task_group() as group:
        for index in range(5):
            group.start_soon(worker, index)
            await anyio.sleep(0)
    assert order == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert not lock.locked()


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    lock = FastLock()
    await lock.acquire()
    with anyio.move_on_after(0.01):
        await lock.acquire()
    lock.release()
    assert not lock.locked()
    with anyio.fail_after(1):
        async with lock:
            assert lock.locked()


async def test_a_waiter_cancelled_around_the_hand_over_does_not_keep_the_lock() -> None:
    lock = FastLock()
    await lock.acquire()
    got: list[str] = []
    scopes: list[anyio.CancelScope] = []

    async def first() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            async with lock:
                got.append("first")

    async def second() -> None:
        async with lock:
            got.append("second")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(first)
            await anyio.sleep(0.001)
            group.start_soon(second)
            await anyio.sleep(0.001)
            lock.release()  # handed to `first`, cancelled before it runs
            scopes[0].cancel()
    assert got[-1] == "second"
    assert not lock.locked()
