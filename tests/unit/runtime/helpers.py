"""Small builders for runtime tests."""

from __future__ import annotations

from pathlib import Path

import anyio

from mesoslite.proto import mesos_pb2

BASIC_PATH = "/usr/local/bin:/usr/bin:/bin"


def shell(command: str) -> mesos_pb2.CommandInfo:
    return mesos_pb2.CommandInfo(shell=True, value=command)


def argv(*arguments: str) -> mesos_pb2.CommandInfo:
    return mesos_pb2.CommandInfo(shell=False, value=arguments[0], arguments=list(arguments))


def scalar(name: str, value: float) -> mesos_pb2.Resource:
    return mesos_pb2.Resource(
        name=name, type=mesos_pb2.Value.SCALAR, scalar=mesos_pb2.Value.Scalar(value=value)
    )


async def wait_until_gone(pid: int, guard_s: float = 10.0) -> bool:
    """Whether `pid` is gone within `guard_s` (a guard against hanging, not a timing
    check: a signalled process may be scheduled to die a little after its parent)."""
    with anyio.move_on_after(guard_s):
        while not process_is_gone(pid):
            await anyio.sleep(0.01)
    return process_is_gone(pid)


def process_is_gone(pid: int) -> bool:
    """Gone or a zombie (an orphan waits for init to reap it): it runs nothing."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return text[text.rindex(")") + 2] in "ZX"
