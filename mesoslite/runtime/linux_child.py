"""The linux launcher's child: the launch plan, and what the forked process does
between fork and exec (see linux_launcher.py for how it is made and why).

Kept apart from the launcher so that the container reaper, which forks most
containers, imports only this and what a plan is made of: every fork copies the
reaper's memory and every exec unmaps it again.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path

from mesoslite.runtime import linux_syscalls as sys_
from mesoslite.runtime.child_steps import open_stdio, reset_signals, switch_user, take_stdio
from mesoslite.runtime.launch_types import ContainerStdio, LaunchError, Mount, UserIdentity

__all__ = ["ChildPlan", "fork_with_plan", "rootfs_scaffold", "start_child"]

_DEVICE_NODES = (  # name, major, minor: what runc and crun create
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
)
_DEV_SYMLINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
)
_DEVICES = tuple((name.encode(), os.makedev(major, minor)) for name, major, minor in _DEVICE_NODES)
_LINKS = tuple((name.encode(), target) for name, target in _DEV_SYMLINKS)


def rootfs_scaffold(read_only_sys: bool = True) -> list[Mount]:
    """The kernel filesystems every image root gets, before the isolators' mounts."""
    sys_flags = sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC
    return [
        Mount("/proc", fstype="proc", flags=sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC),
        Mount(
            "/dev",
            fstype="tmpfs",
            options="mode=755,size=65536k",
            flags=sys_.MS_NOSUID | sys_.MS_STRICTATIME,
        ),
        Mount(
            "/dev/pts",
            fstype="devpts",
            options="newinstance,ptmxmode=0666,mode=0620",
            flags=sys_.MS_NOSUID | sys_.MS_NOEXEC,
        ),
        Mount(
            "/dev/shm",
            fstype="tmpfs",
            options="mode=1777,size=65536k",
            flags=sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC,
        ),
        Mount("/sys", fstype="sysfs", flags=sys_flags | (sys_.MS_RDONLY if read_only_sys else 0)),
    ]


@dataclass(frozen=True)
class ChildPlan:
    """Everything the forked child does, decided in the agent (no lookups after fork)."""

    executable: str
    argv: list[str]
    environment: dict[str, str]
    stdout_path: Path
    stderr_path: Path
    cgroup_join_files: list[Path]
    # CLONE_NEW* flags the child unshares itself (the pid namespace is the parent's job).
    namespaces: int
    new_pid_namespace: bool
    rootfs: Path | None
    mounts: list[Mount]
    hostname: str | None
    working_directory: str
    user: UserIdentity | None
    no_new_privileges: bool
    # A nested container's parent namespaces to join, in the order to enter them.
    enter_namespaces: list[tuple[Path, int]] = field(default_factory=list)
    # The parent's pid namespace, entered by the forking thread.
    enter_pid_namespace: Path | None = None
    # The I/O switchboard's descriptors for 0, 1, 2 (never through the reaper).
    stdio: ContainerStdio | None = None
    # Opened first, joined last (before the user switch): the CPU quota's cgroups.
    late_cgroup_join_files: list[Path] = field(default_factory=list)


# -- the child: runs between fork and exec ---------------------------------------------
#
# The child is a copy of the reaper: every object it touches dirties a page that the
# kernel then copies (a refcount write suffices), and pathlib's objects are made of
# many. So the parent turns the plan into plain strings, bytes and ints before the fork
# (_prepare), and the child only makes system calls with them.

# A mount: (target, source or None, fstype, flags, data, whether to make /dev's nodes)
# for a filesystem; for a bind: (target, source, None, bind flags, None, read only).
_MountStep = tuple[bytes, bytes | None, bytes | None, int, bytes | None, bool]


class _Prepared:
    """A ChildPlan as the child uses it (made by the parent, before the fork)."""

    __slots__ = (
        "cgroup_joins",
        "dev_links",
        "dev_nodes",
        "late_cgroup_joins",
        "mounts",
        "rootfs",
        "stdio_paths",
    )

    def __init__(self, plan: ChildPlan) -> None:
        self.cgroup_joins = [os.fspath(path) for path in plan.cgroup_join_files]
        self.late_cgroup_joins = [os.fspath(path) for path in plan.late_cgroup_join_files]
        self.stdio_paths = (os.fspath(plan.stdout_path), os.fspath(plan.stderr_path))
        rootfs = None if plan.rootfs is None else os.fsencode(plan.rootfs)
        self.rootfs = rootfs
        self.mounts = [_mount_step(rootfs, mount) for mount in plan.mounts]
        self.dev_nodes: list[tuple[bytes, int]] = []
        self.dev_links: list[tuple[str, bytes]] = []
        if rootfs is not None:
            self.dev_nodes = [(rootfs + b"/dev/" + name, device) for name, device in _DEVICES]
            self.dev_links = [(target, rootfs + b"/dev/" + name) for name, target in _LINKS]


def _mount_step(rootfs: bytes | None, mount: Mount) -> _MountStep:
    target = os.fsencode(mount.target)
    if rootfs is not None:  # the path on the host, below the new root
        target = rootfs + b"/" + target.lstrip(b"/")
    if mount.source is None:
        populate_dev = rootfs is not None and mount.target == "/dev"
        fstype = None if mount.fstype is None else os.fsencode(mount.fstype)
        data = os.fsencode(mount.options) if mount.options else None
        return (target, None, fstype, mount.flags, data, populate_dev)
    bind_flags = sys_.MS_BIND | (sys_.MS_REC if mount.recursive else 0)
    return (target, os.fsencode(mount.source), None, bind_flags, None, mount.read_only)


def _make_directory(path: bytes) -> None:
    """Path.mkdir(parents=True, exist_ok=True), one mkdir where the parent is there."""
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)


def _apply_mount(step: _MountStep) -> None:
    target, source, fstype, flags, data, last = step
    if source is None:
        _make_directory(target)
        sys_.mount_bytes(fstype, target, fstype, flags, data)
        return
    if os.path.isdir(source):
        _make_directory(target)
    elif not os.path.exists(target):
        _make_directory(os.path.dirname(target))
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
    sys_.mount_bytes(source, target, None, flags, None)
    if last:  # read only
        sys_.mount_bytes(None, target, None, sys_.MS_BIND | sys_.MS_REMOUNT | sys_.MS_RDONLY, None)


def _populate_dev(prepared: _Prepared) -> None:
    mask = os.umask(0)  # the nodes are 0666 whatever the reaper's umask
    try:
        for node, device in prepared.dev_nodes:
            os.mknod(node, stat.S_IFCHR | 0o666, device)
    finally:
        os.umask(mask)
    for target, link in prepared.dev_links:
        with contextlib.suppress(FileExistsError):
            os.symlink(target, link)


def _join_cgroup(fd: int) -> None:
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)


def _child_setup(plan: ChildPlan, prepared: _Prepared) -> None:
    os.setsid()
    reset_signals()
    # "0" is the writer itself: our pid here would be 1 (of our own namespace).
    for procs_file in prepared.cgroup_joins:
        _join_cgroup(os.open(procs_file, os.O_WRONLY | os.O_CLOEXEC))
    # The CPU quota's cgroups are joined last, through descriptors opened now (the
    # host's cgroup mounts are out of sight after pivot_root): a container of 0.01 cpus
    # would otherwise spend ~100 ms throttled in its own set-up.
    late_joins = [os.open(path, os.O_WRONLY | os.O_CLOEXEC) for path in prepared.late_cgroup_joins]
    if plan.stdio is not None:
        take_stdio(plan.stdio)
    else:
        open_stdio(*prepared.stdio_paths)
    # Every descriptor first: once in the parent's mount namespace, /proc is its.
    entering = [(os.open(path, os.O_RDONLY), nstype) for path, nstype in plan.enter_namespaces]
    for fd, nstype in entering:
        sys_.setns(fd, nstype)
        os.close(fd)
    if plan.namespaces:
        sys_.unshare(plan.namespaces)
    if plan.namespaces & sys_.CLONE_NEWNS:
        # Our mounts must not reach the host; the host's may still reach us.
        sys_.mount_bytes(None, b"/", None, sys_.MS_REC | sys_.MS_SLAVE, None)
    rootfs = prepared.rootfs
    if rootfs is not None:
        sys_.mount_bytes(rootfs, rootfs, None, sys_.MS_BIND | sys_.MS_REC, None)
    for step in prepared.mounts:
        _apply_mount(step)
        if step[1] is None and step[5]:
            _populate_dev(prepared)
    if rootfs is not None:
        # pivot_root(".", ".") stacks the old root on the new one; detach it at once.
        os.chdir(rootfs)
        sys_.pivot_root(".", ".")
        sys_.umount2(".", sys_.MNT_DETACH)
        os.chdir("/")
    if plan.hostname is not None and plan.namespaces & sys_.CLONE_NEWUTS:
        socket.sethostname(plan.hostname)
    if plan.namespaces & sys_.CLONE_NEWNET:
        sys_.bring_loopback_up()
    os.chdir(plan.working_directory)
    for fd in late_joins:
        _join_cgroup(fd)
    if plan.user is not None:
        switch_user(plan.user)
    if plan.no_new_privileges:
        sys_.set_no_new_privileges()


def _child_main(plan: ChildPlan, prepared: _Prepared, error_pipe: int) -> None:
    """Never returns: exec, or report and _exit."""
    # A collection here would walk (and so copy) the reaper's objects for nothing.
    gc.disable()
    try:
        _child_setup(plan, prepared)
        os.closerange(3, error_pipe)
        os.closerange(error_pipe + 1, os.sysconf("SC_OPEN_MAX"))
        os.execve(plan.executable, plan.argv, plan.environment)
    except BaseException as error:  # everything must end in _exit here
        with contextlib.suppress(BaseException):
            os.write(error_pipe, f"{type(error).__name__}: {error}".encode()[:4000])
    finally:
        os._exit(127)


# -- the parent's side --------------------------------------------------------------------


def start_child(plan: ChildPlan, own_pid_namespace: int) -> tuple[int, int]:
    """Fork the child (PID 1 of a new pid namespace if the plan says so); returns its pid
    and the read end of its report pipe: EOF means it exec'd, bytes say why it did not.
    Call from the thread that owns the event loop (or a single-threaded process)."""
    prepared = _Prepared(plan)
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    switched = plan.new_pid_namespace or plan.enter_pid_namespace is not None
    try:
        if plan.enter_pid_namespace is not None:
            target = os.open(plan.enter_pid_namespace, os.O_RDONLY | os.O_CLOEXEC)
            try:
                sys_.setns(target, sys_.CLONE_NEWPID)
            finally:
                os.close(target)
        elif plan.new_pid_namespace:
            sys_.unshare(sys_.CLONE_NEWPID)
        try:
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                _child_main(plan, prepared, write_end)
        finally:
            # Only the parent gets here (the child never returns from _child_main).
            if switched:
                sys_.setns(own_pid_namespace, sys_.CLONE_NEWPID)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return pid, read_end


def fork_with_plan(plan: ChildPlan, own_pid_namespace: int) -> int:
    """start_child, blocking until the child has exec'd (for the single-threaded reaper)."""
    pid, report_pipe = start_child(plan, own_pid_namespace)
    try:
        report = os.read(report_pipe, 4096)
    finally:
        os.close(report_pipe)
    if report:
        os.waitpid(pid, 0)
        raise LaunchError(report.decode(errors="replace"))
    return pid
