"""Steps a forked child takes between fork and exec, shared by the posix launcher's
fork path and the linux launcher's child. The linux child runs in the container reaper,
which must stay small (every fork copies it): nothing heavy is imported here."""

from __future__ import annotations

import fcntl
import os
import signal
import termios

from mesoslite.runtime.launch_types import ContainerStdio, UserIdentity

__all__ = ["TASK_DEFAULT_SIGNALS", "open_stdio", "reset_signals", "switch_user", "take_stdio"]

# Signals the agent may ignore or handle that must be default in a task: an ignored
# disposition survives exec (a task with SIGPIPE ignored misbehaves in pipelines).
TASK_DEFAULT_SIGNALS = (
    signal.SIGPIPE,
    signal.SIGXFSZ,
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGCHLD,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


def reset_signals() -> None:
    """Default dispositions and an empty mask, as the task expects."""
    for number in TASK_DEFAULT_SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def take_stdio(stdio: ContainerStdio) -> None:
    """The switchboard's ends become 0, 1, 2; a pseudo terminal the controlling tty
    (the child has just become a session leader)."""
    for target, fd in enumerate((stdio.stdin, stdio.stdout, stdio.stderr)):
        os.dup2(fd, target)
    if stdio.tty:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def open_stdio(stdout_path: str | os.PathLike[str], stderr_path: str | os.PathLike[str]) -> None:
    """/dev/null in, the sandbox's stdout and stderr files out (appended to)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    for target, path, mode in (
        (0, "/dev/null", os.O_RDONLY),
        (1, stdout_path, flags),
        (2, stderr_path, flags),
    ):
        fd = os.open(path, mode, 0o644)
        if fd != target:
            os.dup2(fd, target)
            os.close(fd)


def switch_user(user: UserIdentity) -> None:
    os.setgroups(list(user.groups))
    os.setgid(user.gid)
    os.setuid(user.uid)
