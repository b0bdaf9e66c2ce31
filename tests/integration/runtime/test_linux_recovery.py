"""Agent restart with the linux launcher: checkpointed containers are re-attached
through the reaper; the previous agent's other containers are found by their cgroups
and destroyed."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.cgroups.layout import detect_cgroup_layout
from mesoslite.runtime.containerizer import MesosContainerizer
from mesoslite.runtime.isolation import (
    LINUX_ISOLATION,
    IsolationContext,
    isolation_from_flag,
    launcher_for,
)
from mesoslite.runtime.linux_launcher import LinuxLauncher

from .conftest import DirectoryProvisioner

pytestmark = [pytest.mark.anyio, pytest.mark.root, pytest.mark.kernel]

MakeConfig = Callable[..., ContainerConfig]
_SAFETY_SECONDS = 60


def _process_is_gone(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return text[text.rindex(")") + 2] in "ZX"


@asynccontextmanager
async def _agent(
    runtime_dir: Path, rootfs: Path, cgroups_root_name: str
) -> AsyncIterator[MesosContainerizer]:
    context = IsolationContext(
        runtime_dir=runtime_dir / "files", cgroups_root_name=cgroups_root_name
    )
    isolators = isolation_from_flag(LINUX_ISOLATION, context)
    launcher = launcher_for(isolators, context)
    try:
        async with MesosContainerizer(
            launcher=launcher,
            isolators=isolators,
            provisioner=DirectoryProvisioner(rootfs),
            runtime_dir=runtime_dir,
        ) as containerizer:
            yield containerizer
    finally:
        if isinstance(launcher, LinuxLauncher):
            launcher.close()


async def test_an_agent_restart_keeps_checkpointed_containers_and_kills_the_rest(
    tmp_path: Path, busybox_rootfs: Path, cgroups_root_name: str, make_config: MakeConfig
) -> None:
    runtime_dir = tmp_path / "agent-runtime"
    kept = make_config(
        "while [ ! -e /mnt/mesos/sandbox/go ]; do sleep 0.02; done; exit 5", checkpoint=True
    )
    dropped = make_config("sleep 600")
    reaper_pid = None
    try:
        with anyio.fail_after(_SAFETY_SECONDS):
            async with _agent(runtime_dir, busybox_rootfs, cgroups_root_name) as first:
                kept_pid = await first.launch("kept", kept)
                dropped_pid = await first.launch("dropped", dropped)
            async with _agent(runtime_dir, busybox_rootfs, cgroups_root_name) as second:
                assert await second.recover({"kept"}) == {"kept"}
                assert _process_is_gone(dropped_pid)
                assert second.containers() == ["kept"]
                assert (await second.usage("kept")).processes >= 1
                (kept.sandbox / "go").touch()
                termination = await second.wait("kept")
                assert termination.wait_status is not None
                assert os.waitstatus_to_exitcode(termination.wait_status) == 5
                await second.destroy("kept")
        assert _process_is_gone(kept_pid)
        layout = detect_cgroup_layout()
        assert layout is not None
        for hierarchy in layout.v1_hierarchies.values():
            directory = hierarchy / cgroups_root_name
            assert not directory.exists() or not any(p.is_dir() for p in directory.iterdir())
    finally:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                command = Path(entry.path, "cmdline").read_bytes()
                if b"mesoslite.runtime.reaper" in command and os.fsencode(runtime_dir) in command:
                    reaper_pid = int(entry.name)
        if reaper_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(reaper_pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(reaper_pid, 0)
