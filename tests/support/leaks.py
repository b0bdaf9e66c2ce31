"""What a node started for one data directory may leave behind once it has stopped:
processes in its agent's cgroups or running from its directory, its cgroups, mounts
under its directory. Tests assert the list is empty, after killing what they find."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from mesoslite.agent.config import AgentConfig
from mesoslite.node import cgroups_root_name
from mesoslite.runtime.cgroups.layout import DEFAULT_CGROUP_ROOT

__all__ = ["assert_nothing_left", "leftovers"]


def _agent_cgroup_name(data_dir: Path) -> str:
    return cgroups_root_name(AgentConfig(work_dir=data_dir / "agent"))


def _processes(data_dir: Path, cgroup_name: str) -> list[tuple[int, str]]:
    found = []
    prefix = str(data_dir)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            cgroups = Path(entry.path, "cgroup").read_text()
            command = (
                Path(entry.path, "cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
            cwd = os.readlink(Path(entry.path, "cwd"))
        except OSError:
            continue
        if cgroup_name in cgroups or cwd.startswith(prefix) or prefix in command:
            found.append((pid, command.strip()))
    return found


def _cgroups(cgroup_name: str) -> list[str]:
    found = []
    with contextlib.suppress(FileNotFoundError):
        for hierarchy in os.scandir(DEFAULT_CGROUP_ROOT):
            candidate = Path(hierarchy.path, cgroup_name)
            if hierarchy.is_dir() and not hierarchy.is_symlink() and candidate.exists():
                found.append(str(candidate))
    return found


def _mounts(data_dir: Path) -> list[str]:
    prefix = str(data_dir)
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line for line in lines if prefix in line]


def leftovers(data_dir: Path) -> list[str]:
    cgroup_name = _agent_cgroup_name(data_dir)
    processes = [f"process {pid}: {command}" for pid, command in _processes(data_dir, cgroup_name)]
    cgroups = [f"cgroup {path}" for path in _cgroups(cgroup_name)]
    mounts = [f"mount {line}" for line in _mounts(data_dir)]
    return processes + cgroups + mounts


def assert_nothing_left(data_dir: Path, settle_s: float = 10.0) -> None:
    """Things end a moment after a node stops (a killed process is reaped later), so
    the scan is repeated for up to `settle_s`; whatever is left then is killed and
    fails the test."""
    deadline = time.monotonic() + settle_s
    while (remaining := leftovers(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if remaining:
        for pid, _ in _processes(data_dir, _agent_cgroup_name(data_dir)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert remaining == [], "left behind:\n" + "\n".join(remaining)
