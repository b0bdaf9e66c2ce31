"""The command executor on its own: a real containerizer, updates collected in a list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from mesoslite.executor.command import CommandExecutor
from mesoslite.executor.context import ExecutorContext
from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.containerizer import MesosContainerizer

from ..agent.harness import BASIC_PATH, command_task

pytestmark = pytest.mark.anyio

_TS = mesos_pb2.TaskState
_Status = mesos_pb2.TaskStatus


@pytest.fixture
async def containerizer() -> AsyncIterator[MesosContainerizer]:
    async with MesosContainerizer() as built:
        try:
            yield built
        finally:
            for container_id in built.containers():
                await built.destroy(container_id)


def _context(
    containerizer: MesosContainerizer,
    sandbox: Path,
    updates: list[mesos_pb2.TaskStatus],
    *,
    killing_state: bool = False,
) -> ExecutorContext:
    sandbox.mkdir(parents=True, exist_ok=True)

    async def prepare(
        task: mesos_pb2.TaskInfo, container_id: str, parent_id: str | None
    ) -> ContainerConfig:
        return ContainerConfig(
            command=task.command, sandbox=sandbox, environment={"PATH": BASIC_PATH}
        )

    async def send_update(status: mesos_pb2.TaskStatus) -> None:
        updates.append(status)

    return ExecutorContext(
        executor_info=mesos_pb2.ExecutorInfo(),
        container_id="c1",
        containerizer=containerizer,
        prepare_task_container=prepare,
        send_update=send_update,
        task_killing_state=lambda: killing_state,
        default_kill_grace_period_s=3.0,
        shutdown_grace_period_s=5.0,
    )


async def test_kill_before_launch_never_starts_the_command(
    containerizer: MesosContainerizer, tmp_path: Path
) -> None:
    updates: list[mesos_pb2.TaskStatus] = []
    executor = CommandExecutor(
        _context(containerizer, tmp_path, updates), command_task("t", "touch started")
    )
    executor.kill_task("t", None)
    with anyio.fail_after(30):
        assert await executor.run() is None
    assert [(u.state, u.reason, u.source) for u in updates] == [
        (_TS.TASK_KILLED, _Status.REASON_TASK_KILLED_DURING_LAUNCH, _Status.SOURCE_AGENT)
    ]
    assert not (tmp_path / "started").exists()


async def test_max_completion_time_fails_the_task(
    containerizer: MesosContainerizer, tmp_path: Path
) -> None:
    updates: list[mesos_pb2.TaskStatus] = []
    task = command_task("t", "sleep 1000", grace_period_s=0)
    task.max_completion_time.nanoseconds = 50_000_000
    executor = CommandExecutor(_context(containerizer, tmp_path, updates), task)
    with anyio.fail_after(30):
        await executor.run()
    final = updates[-1]
    assert final.state == _TS.TASK_FAILED
    assert final.reason == _Status.REASON_MAX_COMPLETION_TIME_REACHED


async def test_launch_failure_fails_the_task(
    containerizer: MesosContainerizer, tmp_path: Path
) -> None:
    updates: list[mesos_pb2.TaskStatus] = []
    task = command_task("t", "/nonexistent/program", shell=False, arguments=("program",))
    executor = CommandExecutor(_context(containerizer, tmp_path, updates), task)
    with anyio.fail_after(30):
        await executor.run()
    assert updates[0].state == _TS.TASK_STARTING
    assert updates[-1].state == _TS.TASK_FAILED
    assert all(len(update.uuid) == 16 for update in updates)


async def test_shutdown_kills_with_the_shortened_grace(
    containerizer: MesosContainerizer, tmp_path: Path
) -> None:
    updates: list[mesos_pb2.TaskStatus] = []
    executor = CommandExecutor(
        _context(containerizer, tmp_path, updates, killing_state=True),
        command_task("t", "sleep 1000"),
    )
    async with anyio.create_task_group() as group:
        group.start_soon(executor.run)
        with anyio.fail_after(30):
            while not updates or updates[-1].state != _TS.TASK_RUNNING:
                await anyio.sleep(0.01)
            executor.shutdown()
    assert [update.state for update in updates] == [
        _TS.TASK_STARTING,
        _TS.TASK_RUNNING,
        _TS.TASK_KILLING,
        _TS.TASK_KILLED,
    ]
