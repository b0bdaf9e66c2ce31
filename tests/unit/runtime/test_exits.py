from __future__ import annotations

import os
import signal

import pytest

from mesoslite.runtime.exits import ProcessHandle, describe_wait_status, exit_code_of

pytestmark = pytest.mark.anyio


async def test_wait_returns_the_raw_wait_status() -> None:
    handle = ProcessHandle(os.posix_spawn("/bin/sh", ["sh", "-c", "exit 7"], {}))
    try:
        status = await handle.wait()
    finally:
        handle.close()
    assert status is not None and exit_code_of(status) == 7


async def test_signal_through_the_pidfd() -> None:
    handle = ProcessHandle(os.posix_spawn("/bin/sleep", ["sleep", "30"], {}))
    try:
        assert handle.try_reap() is None
        handle.send_signal(signal.SIGKILL)
        status = await handle.wait()
    finally:
        handle.close()
    assert status is not None and os.WTERMSIG(status) == signal.SIGKILL
    assert exit_code_of(status) is None


def test_descriptions_match_mesos_wording() -> None:
    assert describe_wait_status(3 << 8) == "Command exited with status 3"
    assert describe_wait_status(signal.SIGKILL) == "Command terminated with signal Killed"
    assert describe_wait_status(None) == "Command terminated with unknown status"
