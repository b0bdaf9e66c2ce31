"""The linux launcher: namespaces, a pivot_root into the image, cgroup tracking.

How the process is made (all in the agent's process, no helper binary, no re-exec):

1. On the event loop's thread, `unshare(CLONE_NEWPID)`: it only changes the namespace
   *children* of this thread are born in. `fork()`; then `setns()` the thread back to
   its own pid namespace. The child is PID 1 of a fresh pid namespace and still the
   agent's direct child, so the pidfd reaping of the posix launcher applies unchanged.
   (Re-executing Python as a container init costs tens of milliseconds, and a frozen
   one-file binary unpacks itself first: far above crun's ~10 ms.)
2. The child, single-threaded after fork, follows a `ChildPlan` computed in the agent
   beforehand: join its cgroups (writes "0": it is PID 1 in its own namespace), open
   stdout/stderr in the sandbox (or take the I/O switchboard's descriptors), enter its
   parent's namespaces if it is nested, unshare the remaining namespaces, make its mounts
   slaves of the host's, build the root filesystem (proc, a minimal /dev, devpts,
   /dev/shm, sysfs, the isolators' mounts), pivot_root, set the hostname, bring `lo`
   up, switch user, set no_new_privs, exec.
3. Failures before exec travel back over a CLOEXEC pipe; a closed pipe means exec.

Every process of a container is tracked in a cgroup (v1: freezer, v2: the container's
cgroup), so kill and destroy reach processes that left the session. A nested container
that shares its parent's cgroups is tracked in a cgroup below its parent's tracking
cgroup, so that the parent's limits apply to it (v2) and it is killed on its own.

A nested container's parent namespaces are entered through /proc/<parent pid>/ns/*:
the descriptors are opened before any setns (the mount namespace last: it changes what
/proc means), and the pid namespace is entered by the forking thread, as it is made.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import anyio

from mesoslite.runtime import linux_syscalls as sys_
from mesoslite.runtime.cgroups.manager import CgroupManager
from mesoslite.runtime.cgroups.naming import DEFAULT_CGROUPS_ROOT_NAME, container_cgroup
from mesoslite.runtime.exits import ProcessHandle, WatchedProcess
from mesoslite.runtime.launcher import LaunchError, LaunchRequest, stdio_paths
from mesoslite.runtime.linux_child import ChildPlan, fork_with_plan, rootfs_scaffold, start_child

__all__ = [
    "ChildPlan",
    "LinuxLauncher",
    "build_child_plan",
    "fork_with_plan",
    "rootfs_scaffold",
    "start_child",
]

# setns order: the mount namespace last, since entering it changes what paths mean.
_ENTER_ORDER = (
    (sys_.CLONE_NEWIPC, "ipc"),
    (sys_.CLONE_NEWUTS, "uts"),
    (sys_.CLONE_NEWNET, "net"),
    (sys_.CLONE_NEWNS, "mnt"),
)


def _parent_namespaces(request: LaunchRequest) -> tuple[list[tuple[Path, int]], Path | None]:
    flags = request.launch_info.enter_namespaces
    if request.parent is None or not flags:
        return [], None
    ns_dir = Path(f"/proc/{request.parent.pid}/ns")
    entered = [(ns_dir / name, nstype) for nstype, name in _ENTER_ORDER if flags & nstype]
    pid_namespace = ns_dir / "pid" if flags & sys_.CLONE_NEWPID else None
    return entered, pid_namespace


def build_child_plan(request: LaunchRequest, no_new_privileges: bool = True) -> ChildPlan:
    """`no_new_privileges`: set the bit for every container, whatever the isolators say."""
    info = request.launch_info
    namespaces = info.namespaces
    rootfs = info.rootfs
    mounts = list(info.mounts)
    if rootfs is not None:
        namespaces |= sys_.CLONE_NEWNS
        mounts = rootfs_scaffold() + mounts
    if mounts:
        namespaces |= sys_.CLONE_NEWNS
    stdout_path, stderr_path = stdio_paths(request.sandbox)
    user = request.user
    if user is not None and user.is_current():
        user = None
    enter_namespaces, enter_pid_namespace = _parent_namespaces(request)
    late_join_files = list(dict.fromkeys(info.late_cgroup_join_files))
    return ChildPlan(
        executable=request.command.executable,
        argv=request.command.argv,
        environment=request.environment,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
        cgroup_join_files=[
            f for f in dict.fromkeys(info.cgroup_join_files) if f not in late_join_files
        ],
        late_cgroup_join_files=late_join_files,
        namespaces=namespaces & ~sys_.CLONE_NEWPID,
        new_pid_namespace=bool(namespaces & sys_.CLONE_NEWPID) and enter_pid_namespace is None,
        rootfs=rootfs,
        mounts=mounts,
        hostname=info.hostname,
        working_directory=info.working_directory or str(request.sandbox),
        user=user,
        no_new_privileges=no_new_privileges or info.no_new_privileges,
        enter_namespaces=enter_namespaces,
        enter_pid_namespace=enter_pid_namespace,
        stdio=request.stdio,
    )


class LinuxLauncher:
    """Containers in namespaces, tracked in a cgroup; needs root."""

    forks_through_reaper = True

    def __init__(
        self,
        cgroups: CgroupManager | None,
        cgroups_root_name: str = DEFAULT_CGROUPS_ROOT_NAME,
        no_new_privileges: bool = True,
    ) -> None:
        self._cgroups = cgroups
        self._no_new_privileges = no_new_privileges
        self._root_name = cgroups_root_name
        self._tracking = self._tracking_controller()
        # Tracking cgroups that are not the flat default: nested containers that share
        # their parent's cgroups are tracked below the parent's.
        self._nested_cgroups: dict[str, str] = {}
        # Where this thread's future children go back to after each launch.
        self._own_pid_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self._own_pid_namespace)

    def _tracking_controller(self) -> str | None:
        if self._cgroups is None:
            return None
        # pids first: with the cgroups/pids isolator the container is in a pids cgroup
        # anyway, and tracking costs no cgroup of its own. (A container in its own pid
        # namespace dies whole with its PID 1, so freezing before the kill is moot.)
        for controller in ("pids", "freezer", "memory", "cpu"):
            if self._cgroups.available(controller):
                return controller
        return None

    def _cgroup(self, container_id: str) -> str:
        """The container's tracking cgroup."""
        nested = self._nested_cgroups.get(container_id)
        return nested if nested is not None else container_cgroup(container_id, self._root_name)

    async def launch(self, request: LaunchRequest) -> WatchedProcess:
        if os.geteuid() != 0:
            raise LaunchError("the linux launcher needs root")
        plan = build_child_plan(request, self._no_new_privileges)
        if self._cgroups is not None and self._tracking is not None:
            cgroups, controller = self._cgroups, self._tracking
            if request.parent is not None and request.launch_info.shares_parent_cgroups:
                cgroup = f"{self._cgroup(request.parent.container_id)}/{request.container_id}"
                self._nested_cgroups[request.container_id] = cgroup
            else:
                cgroup = self._cgroup(request.container_id)
            tracking_files = cgroups.join_files(cgroup, [controller])
            joined = plan.cgroup_join_files + plan.late_cgroup_join_files
            extra = [f for f in tracking_files if f not in joined]
            if extra:
                # Not one an isolator made already. A mkdir in cgroupfs: in memory,
                # microseconds, done on the loop.
                cgroups.create(cgroup, [controller])
                plan = _with_join_files(plan, plan.cgroup_join_files + extra)
        if request.supervisor is not None:
            return await request.supervisor.launch_linux(request.container_id, plan)
        return await self._fork(plan)

    async def recover(self, recovered_ids: set[str]) -> set[str]:
        """Every container cgroup under our root that is not recovered is an orphan (a
        container of the previous agent that was not checkpointed): kill it."""
        if self._cgroups is None or self._tracking is None:
            return set()
        cgroups, controller = self._cgroups, self._tracking
        root = cgroups.directory(self._root_name, controller)

        def find_orphans() -> set[str]:
            try:
                names = {entry.name for entry in os.scandir(root) if entry.is_dir()}
            except FileNotFoundError:
                return set()
            return names - recovered_ids

        orphans = await anyio.to_thread.run_sync(find_orphans)
        for orphan in orphans:
            await self.destroy(orphan, None)
        return orphans

    async def _fork(self, plan: ChildPlan) -> ProcessHandle:
        pid, report_pipe = start_child(plan, self._own_pid_namespace)
        try:
            handle = ProcessHandle(pid)
            await anyio.wait_readable(report_pipe)
            report = os.read(report_pipe, 4096)
        finally:
            os.close(report_pipe)
        if report:
            await handle.wait()
            handle.close()
            raise LaunchError(report.decode(errors="replace"))
        return handle

    def release(self, container_id: str) -> None:
        # The child joins its cgroups itself before exec: nothing to hold.
        return None

    def kill(self, container_id: str, pid: int, signal_number: int) -> None:
        targets = {pid}
        if self._cgroups is not None and self._tracking is not None:
            targets.update(self._cgroups.pids(self._cgroup(container_id), self._tracking))
        for target in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal_number)

    async def destroy(self, container_id: str, pid: int | None) -> None:
        # `pid` may be reaped (and recycled) by now: only the cgroup is trusted here. The
        # containerizer SIGKILLs the main process itself while it is still unreaped, and
        # as PID 1 of its namespace that takes every process of the namespace along.
        if self._cgroups is None or self._tracking is None:
            return
        cgroups, controller = self._cgroups, self._tracking
        cgroup = self._cgroup(container_id)
        self._nested_cgroups.pop(container_id, None)
        # Usually its processes are gone already: then one rmdir on the loop does.
        if not cgroups.pids(cgroup, controller) and cgroups.try_remove(cgroup, [controller]):
            return

        def kill_and_remove() -> None:
            # Nested containers' cgroups first (bottom up): a cgroup with children
            # cannot be removed. Usually they are gone already.
            for nested in _nested_cgroups_below(cgroups.directory(cgroup, controller)):
                below = f"{cgroup}/{nested}"
                cgroups.kill_all(below)
                cgroups.remove(below, [controller])
            cgroups.kill_all(cgroup)
            cgroups.remove(cgroup, [controller])

        await anyio.to_thread.run_sync(kill_and_remove)


def _nested_cgroups_below(directory: Path) -> list[str]:
    """Child cgroup directories, deepest first, relative to `directory`."""
    found: list[str] = []
    for parent, children, _ in os.walk(directory, topdown=False):
        for child in children:
            found.append(os.path.relpath(os.path.join(parent, child), directory))
    return found


def _with_join_files(plan: ChildPlan, files: list[Path]) -> ChildPlan:
    from dataclasses import replace

    return replace(plan, cgroup_join_files=files)
