"""The Launcher seam and the posix launcher (plain processes, no root needed).

A launcher starts a container's main process and signals or kills everything the
container started. The posix launcher puts the process in its own session (so its
process group and session id are its pid), cwd = sandbox, stdout/stderr appended to
`<sandbox>/stdout` and `<sandbox>/stderr`, the environment exactly as given.

The common case is one `posix_spawn` (no fork of the agent, no thread, no helper
process). Switching user needs setgroups/setgid/setuid between fork and exec, which
posix_spawn cannot do, so that case forks (from the event loop's thread).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio

from mesoslite.runtime import procfs
from mesoslite.runtime.child_steps import open_stdio, reset_signals, switch_user, take_stdio
from mesoslite.runtime.command import ResolvedCommand
from mesoslite.runtime.exits import ProcessHandle, WatchedProcess
from mesoslite.runtime.isolator import LaunchInfo
from mesoslite.runtime.launch_types import ContainerStdio, LaunchError, UserIdentity
from mesoslite.runtime.spawn import SpawnError, SpawnSpec, posix_spawn_off_loop

__all__ = [
    "LaunchError",
    "LaunchRequest",
    "Launcher",
    "ParentLink",
    "PosixLauncher",
    "Supervisor",
    "UserIdentity",
    "stdio_paths",
]

STDOUT_FILE = "stdout"
STDERR_FILE = "stderr"


def stdio_paths(sandbox: Path) -> tuple[Path, Path]:
    return sandbox / STDOUT_FILE, sandbox / STDERR_FILE


class Supervisor(Protocol):
    """Starts processes that must outlive the agent (the container reaper's client)."""

    async def launch_posix(self, container_id: str, spec: SpawnSpec) -> WatchedProcess: ...

    async def launch_linux(self, container_id: str, plan: Any) -> WatchedProcess:
        """`plan`: a linux_launcher.ChildPlan."""
        ...


@dataclass(frozen=True)
class ParentLink:
    """A nested container's parent: whose namespaces it enters, below whose tracking
    cgroup it is kept when it shares the parent's cgroups."""

    container_id: str
    pid: int


@dataclass(frozen=True)
class LaunchRequest:
    container_id: str
    command: ResolvedCommand
    environment: dict[str, str]
    sandbox: Path
    user: UserIdentity | None = None
    launch_info: LaunchInfo = field(default_factory=LaunchInfo)
    # Set for checkpointed containers: they are started by (and survive with) it.
    supervisor: Supervisor | None = None
    parent: ParentLink | None = None
    # The I/O switchboard's ends as stdin/stdout/stderr (instead of /dev/null and the
    # sandbox's files).
    stdio: ContainerStdio | None = None


class Launcher(Protocol):
    # True when forking through the container reaper is cheaper than launching in the
    # agent (a fork of the agent's heap); posix_spawn is cheap either way.
    forks_through_reaper: bool

    async def launch(self, request: LaunchRequest) -> WatchedProcess:
        """Start the process (held before exec where the launcher can hold it)."""
        ...

    async def recover(self, recovered_ids: set[str]) -> set[str]:
        """After a restart: the ids of containers it finds that are not `recovered_ids`
        (orphans); it has killed their processes. The caller cleans up the rest."""
        ...

    def release(self, container_id: str) -> None:
        """Let a held process exec (after isolation and fetching)."""
        ...

    def kill(self, container_id: str, pid: int, signal_number: int) -> None:
        """Signal every process of the container."""
        ...

    async def destroy(self, container_id: str, pid: int | None) -> None:
        """SIGKILL whatever the container still runs; forget it."""
        ...


def _exec_in_child(request: LaunchRequest, error_pipe: int) -> None:
    """Runs in the forked child; never returns."""
    try:
        os.setsid()
        reset_signals()
        if request.stdio is not None:
            take_stdio(request.stdio)
        else:
            open_stdio(*stdio_paths(request.sandbox))
        os.chdir(request.sandbox)
        if request.user is not None:
            switch_user(request.user)
        os.closerange(3, error_pipe)
        os.closerange(error_pipe + 1, os.sysconf("SC_OPEN_MAX"))
        os.execve(request.command.executable, request.command.argv, request.environment)
    except OSError as error:
        os.write(error_pipe, f"{error.errno}:{error.strerror}".encode())
    except BaseException:
        os.write(error_pipe, b"0:exec failed")
    finally:
        os._exit(127)


class PosixLauncher:
    """Plain processes: own session and process group; no namespaces, no root needed."""

    forks_through_reaper = False

    async def launch(self, request: LaunchRequest) -> WatchedProcess:
        user = request.user
        if user is not None and user.is_current():
            user = None
        if user is not None and os.geteuid() != 0:
            raise LaunchError(f"switching to user {user.name!r} needs root")
        if request.stdio is not None:
            # dup2 and TIOCSCTTY between fork and exec: posix_spawn cannot make a
            # controlling terminal.
            return await self._fork_exec(request)
        if user is not None and request.supervisor is not None:
            # The fork path with no namespaces is the linux launcher's child plan.
            from mesoslite.runtime.linux_launcher import build_child_plan

            plan = build_child_plan(request, no_new_privileges=False)
            return await request.supervisor.launch_linux(request.container_id, plan)
        if user is None:
            stdout_path, stderr_path = stdio_paths(request.sandbox)
            spec = SpawnSpec(
                executable=request.command.executable,
                argv=request.command.argv,
                environment=request.environment,
                cwd=request.sandbox,
                stdout_path=stdout_path,
                stderr_path=stderr_path,
            )
            if request.supervisor is not None:
                return await request.supervisor.launch_posix(request.container_id, spec)
            try:
                pid = await posix_spawn_off_loop(spec)
            except SpawnError as error:
                raise LaunchError(str(error)) from error
            return ProcessHandle(pid)
        return await self._fork_exec(request)

    async def _fork_exec(self, request: LaunchRequest) -> ProcessHandle:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                _exec_in_child(request, write_end)
            os.close(write_end)
            write_end = -1
            handle = ProcessHandle(pid)
            # The pipe closes at exec (CLOEXEC) or carries the error that stopped it.
            await anyio.wait_readable(read_end)
            report = os.read(read_end, 512)
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)
        if report:
            await handle.wait()
            handle.close()
            code, _, text = report.decode(errors="replace").partition(":")
            raise LaunchError(
                f"{text} ({errno.errorcode.get(int(code), code)}): {request.command.executable}"
            )
        return handle

    def release(self, container_id: str) -> None:
        # posix_spawn execs at once: nothing is held.
        return None

    async def recover(self, recovered_ids: set[str]) -> set[str]:
        # Plain processes leave no trace to find orphans by (cgroups do).
        return set()

    def kill(self, container_id: str, pid: int, signal_number: int) -> None:
        self._signal_group(pid, signal_number)

    @staticmethod
    def _signal_group(pid: int, signal_number: int) -> bool:
        try:
            os.killpg(pid, signal_number)
        except ProcessLookupError:
            return False
        return True

    async def destroy(self, container_id: str, pid: int | None) -> None:
        if pid is None:
            return
        # Usually the group is empty by now and that is one syscall. Only when something
        # was left is the session swept for members that moved to another group (a /proc
        # scan: too costly to do for every exit).
        if self._signal_group(pid, signal.SIGKILL):
            for member in await anyio.to_thread.run_sync(procfs.session_members, pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member.pid, signal.SIGKILL)
