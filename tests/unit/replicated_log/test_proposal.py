"""Proposal: waiting for an entry to apply, with and without a timeout."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from mesoslite.replicated_log.registry import OperationRejected
from mesoslite.replicated_log.service import Proposal, _Deadlines

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_waiters_and_callbacks_learn_the_outcome() -> None:
    proposal = Proposal(7, 2, _Deadlines())
    outcomes: list[BaseException | None] = []
    proposal.add_done_callback(outcomes.append)
    async with anyio.create_task_group() as group:
        group.start_soon(proposal.wait, 10.0)
        group.start_soon(proposal.wait)
        await anyio.sleep(0)
        proposal.finish(None)
    assert outcomes == [None] and proposal.done
    await proposal.wait(10.0)  # done already: returns at once

    rejected = Proposal(8, 2)
    rejected.finish(OperationRejected("no"))
    with pytest.raises(OperationRejected):
        await rejected.wait()


async def test_a_wait_times_out_when_the_deadlines_expire() -> None:
    deadlines = _Deadlines()
    proposal = Proposal(7, 2, deadlines)
    loop = asyncio.get_running_loop()
    async with anyio.create_task_group() as group:
        failures: list[BaseException] = []

        async def wait() -> None:
            try:
                await proposal.wait(5.0)
            except TimeoutError as error:
                failures.append(error)

        group.start_soon(wait)
        await anyio.sleep(0)
        deadlines.expire(loop.time())  # not yet due
        await anyio.sleep(0)
        assert failures == []
        deadlines.expire(loop.time() + 5.0)
    assert len(failures) == 1
    assert not proposal.done
    proposal.finish(None)  # a late outcome wakes nobody and fails nothing


async def test_a_wait_without_deadlines_times_out_by_a_timer() -> None:
    proposal = Proposal(7, 2)
    with pytest.raises(TimeoutError):
        await proposal.wait(0.01)


async def test_a_cancelled_waiter_is_forgotten() -> None:
    deadlines = _Deadlines()
    proposal = Proposal(7, 2, deadlines)
    with anyio.move_on_after(0.01):
        await proposal.wait(60.0)
    assert proposal._waiters == [] and deadlines._waiters == {}
    proposal.finish(None)
