"""Checkpointed containers survive a containerizer (agent) restart: the reaper keeps
them, records exits while no agent runs, and a new containerizer re-attaches."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.checkpoint import ContainerRecord, read_records
from mesoslite.runtime.containerizer import MesosContainerizer
from mesoslite.runtime.reaper_protocol import exit_record_path

from .helpers import shell, wait_until_gone

pytestmark = pytest.mark.anyio

MakeConfig = Callable[..., ContainerConfig]
_SAFETY_SECONDS = 60


def _reaper_pids(runtime_dir: Path) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            command = Path(entry.path, "cmdline").read_bytes().split(b"\0")
            if b"mesoslite.runtime.reaper" in command and os.fsencode(runtime_dir) in command:
                pids.append(int(entry.name))
    return pids


def _group_members(process_group: int) -> list[int]:
    members = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(entry.path, "stat").read_text()
                if int(stat[stat.rindex(")") + 2 :].split()[2]) == process_group:
                    members.append(int(entry.name))
    return members


@pytest.fixture
def runtime_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "runtime"
    yield directory
    # Whatever a failed test left: the reaper it started and that reaper's children.
    for pid in _reaper_pids(directory):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


async def test_containers_survive_a_restart_and_exits_while_down_are_kept(
    runtime_dir: Path, make_config: MakeConfig
) -> None:
    running = make_config(shell("sleep 600"), checkpoint=True)
    ending = make_config(shell("while [ ! -e go ]; do sleep 0.02; done; exit 7"), checkpoint=True)
    # The shell stays as the parent of sleep: the orphan's process group must die whole.
    orphan = make_config(shell("sleep 600; true"), checkpoint=True)
    with anyio.fail_after(_SAFETY_SECONDS):
        async with MesosContainerizer(runtime_dir=runtime_dir) as first:
            running_pid = await first.launch("running", running)
            await first.launch("ending", ending)
            orphan_pid = await first.launch("orphan", orphan)
        records, _ = read_records(runtime_dir)
        assert {r.container_id for r in records} == {"running", "ending", "orphan"}

        # The agent is down: "ending" ends now, and only the reaper sees it.
        (ending.sandbox / "go").touch()
        while not exit_record_path(runtime_dir, "ending").exists():
            await anyio.sleep(0.02)

        async with MesosContainerizer(runtime_dir=runtime_dir) as second:
            recovered = await second.recover({"running", "ending"})
            assert recovered == {"running", "ending"}
            ended = await second.wait("ending")
            assert ended.wait_status is not None
            assert os.waitstatus_to_exitcode(ended.wait_status) == 7
            assert second.containers() == ["running"]
            assert await wait_until_gone(orphan_pid)
            assert all([await wait_until_gone(pid) for pid in _group_members(orphan_pid)])
            assert (await second.status("running")).executor_pid == running_pid

            await second.kill("running", signal.SIGTERM)
            killed = await second.wait("running")
            assert killed.wait_status is not None
            assert os.WTERMSIG(killed.wait_status) == signal.SIGTERM
            await second.destroy("running")
            await second.destroy("ending")
        assert read_records(runtime_dir) == ([], [])
        # Nothing left to supervise and nobody connected: the reaper goes away.
        while _reaper_pids(runtime_dir):
            await anyio.sleep(0.05)


async def test_a_container_that_was_not_checkpointed_is_not_recovered(
    runtime_dir: Path, make_config: MakeConfig
) -> None:
    with anyio.fail_after(_SAFETY_SECONDS):
        async with MesosContainerizer(runtime_dir=runtime_dir) as first:
            await first.launch("plain", make_config(shell("true")))
            await first.wait("plain")
        async with MesosContainerizer(runtime_dir=runtime_dir) as second:
            assert await second.recover({"plain"}) == set()


async def test_checkpointing_without_a_runtime_dir_fails_the_launch(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    with pytest.raises(Exception, match="runtime_dir"):
        await containerizer.launch("c", make_config(shell("true"), checkpoint=True))


async def test_a_recycled_pid_is_not_mistaken_for_the_container(
    runtime_dir: Path, make_config: MakeConfig
) -> None:
    from mesoslite.runtime.checkpoint import write_record

    config = make_config(shell("true"), checkpoint=True)
    # A record whose pid now belongs to someone else (ourselves) with another start time.
    write_record(runtime_dir, ContainerRecord("stale", config, os.getpid(), 1, "RUNNING"))
    with anyio.fail_after(_SAFETY_SECONDS):
        async with MesosContainerizer(runtime_dir=runtime_dir) as containerizer:
            assert await containerizer.recover({"stale"}) == {"stale"}
            termination = await containerizer.wait("stale")
    assert termination.wait_status is None
    assert termination.message == "Command terminated with unknown status"
