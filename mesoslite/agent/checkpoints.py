"""Writing the agent's checkpoints (the meta dir of `sandbox.SandboxLayout`).

What a restarted agent needs to find its frameworks, executors, containers and tasks
again: the messages themselves, serialized, written atomically. All blocking: call
from a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from mesoslite.agent.sandbox import (
    SandboxLayout,
    atomic_write,
    fsync_directory,
    spread_subdirectories,
)
from mesoslite.proto import mesos_pb2

__all__ = [
    "current_boot_id",
    "forget_executor",
    "forget_latest_agent",
    "forget_run",
    "prepare_work_dir",
    "write_agent_info",
    "write_executor_info",
    "write_forked_pid",
    "write_framework_info",
    "write_http_marker",
    "write_task_info",
]

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def current_boot_id() -> str:
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:
        return ""


def prepare_work_dir(layout: SandboxLayout) -> None:
    layout.work_dir.mkdir(parents=True, exist_ok=True)
    layout.meta_dir.mkdir(parents=True, exist_ok=True)
    # Before the first `slaves/<agent id>` is made: its tree goes to a block group of its
    # own (several inodes per task; see spread_subdirectories).
    layout.sandboxes_dir.mkdir(exist_ok=True)
    spread_subdirectories(layout.sandboxes_dir)
    boot_id = current_boot_id()
    if boot_id:
        atomic_write(layout.boot_id_file, boot_id.encode("ascii"))


def write_agent_info(layout: SandboxLayout, info: mesos_pb2.AgentInfo) -> None:
    """slave.info, then `latest` pointed at it: a restart recovers this agent."""
    atomic_write(layout.agent_info_file(info.id.value), info.SerializeToString())
    link = layout.latest_agent_link
    temporary = link.with_name(f".{link.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(info.id.value)
    os.replace(temporary, link)
    fsync_directory(link.parent)


def forget_latest_agent(layout: SandboxLayout) -> None:
    """The next registration is a new agent (after a reboot, or `--recover=cleanup`).
    The old agent's checkpoints stay, unreferenced, beside its sandboxes."""
    with contextlib.suppress(FileNotFoundError):
        layout.latest_agent_link.unlink()


def write_framework_info(
    layout: SandboxLayout, agent_id: str, info: mesos_pb2.FrameworkInfo
) -> None:
    atomic_write(layout.framework_info_file(agent_id, info.id.value), info.SerializeToString())


def write_executor_info(
    layout: SandboxLayout, agent_id: str, framework_id: str, info: mesos_pb2.ExecutorInfo
) -> None:
    path = layout.executor_info_file(agent_id, framework_id, info.executor_id.value)
    atomic_write(path, info.SerializeToString())


def write_task_info(
    layout: SandboxLayout,
    agent_id: str,
    framework_id: str,
    executor_id: str,
    container_id: str,
    task: mesos_pb2.TaskInfo,
) -> None:
    path = layout.task_info_file(
        agent_id, framework_id, executor_id, container_id, task.task_id.value
    )
    atomic_write(path, task.SerializeToString())


def write_forked_pid(
    layout: SandboxLayout,
    agent_id: str,
    framework_id: str,
    executor_id: str,
    container_id: str,
    pid: int,
) -> None:
    path = layout.forked_pid_file(agent_id, framework_id, executor_id, container_id)
    atomic_write(path, str(pid).encode("ascii"))


def write_http_marker(
    layout: SandboxLayout, agent_id: str, framework_id: str, executor_id: str, container_id: str
) -> None:
    """Marks an executor that speaks the HTTP executor API (all of ours do)."""
    atomic_write(layout.http_marker_file(agent_id, framework_id, executor_id, container_id), b"")


def forget_run(
    layout: SandboxLayout, agent_id: str, framework_id: str, executor_id: str, container_id: str
) -> None:
    """An executor run is over and every update of it acknowledged: a restart has
    nothing to find there any more (its sandbox stays for the user). The executor goes
    too once it has no run left."""
    shutil.rmtree(
        layout.run_meta_dir(agent_id, framework_id, executor_id, container_id),
        ignore_errors=True,
    )
    runs = layout.executor_meta_dir(agent_id, framework_id, executor_id) / "runs"
    with contextlib.suppress(OSError), os.scandir(runs) as entries:
        if next(entries, None) is None:
            forget_executor(layout, agent_id, framework_id, executor_id)


def forget_executor(
    layout: SandboxLayout, agent_id: str, framework_id: str, executor_id: str
) -> None:
    shutil.rmtree(layout.executor_meta_dir(agent_id, framework_id, executor_id), ignore_errors=True)
